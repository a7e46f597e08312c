// messageId dedupe per source over 24 h (CONTRACT.md section 1), in Redis:
// per flush, one script call per source, written together (one round trip).
//
// TRICKY: a plain `SET NX EX 24h` before producing would lose events: if the
// process dies (or Kafka fails) after the SET and before the broker acks, the
// client's retry is dropped as a duplicate of an event that never landed. So an
// event's key names the flush that claimed it, and the flush has a state of its
// own, one key per source per flush:
//   claim:   SET event-key <token>|<received_at> EX <ttl> NX GET, and SET flush-key "p" PX <pendingTtl>
//   confirm: SET flush-key "d" EX <ttl>     (after the broker acked)
//   release: DEL flush-key                  (the send failed)
// An event key whose flush is "d" is a duplicate (accepted, dropped); "p" is in
// flight elsewhere (another request, another replica): the publisher repeats the
// claim every poll interval until it is "d" (a duplicate), or gone (that send
// failed, or its process died and the pending state expired) so that this claim
// takes the key over and this request writes the event; only if the wait runs
// out first is the request answered 503 (events.publisher.ts).
// Why a flush state rather than a state per event: confirming is then one write
// per flush instead of one per event, half the ingest's Redis work at batch rates.
// The flush key is confirmed after its events' keys were written, with the same
// TTL, so it outlives every key that names it.
// TRICKY: the flush a key is taken over from may still have written its
// records: a send that failed after the broker took it (a timeout), or one
// still waiting when its pending state expired (the broker stopped for longer
// than the pending TTL). The retry must then be the same event downstream,
// whose id (eventKey: source, messageId, received_at) includes the receive
// time: so an event key keeps the receive time of the claim that first wrote
// it, and the claim that takes it over hands that back for its record (the
// resolver and evaluator then drop whichever copy comes second).
// Keys written by the earlier layout hold "p" or "d" themselves; both are still understood.
// https://redis.io/docs/latest/commands/set/
import { randomBytes } from 'node:crypto';
import { luaScript, type LuaScript, type RedisClient } from '@engage/redis';

export type ClaimResult = 'new' | 'duplicate' | 'in_flight';

export interface DedupeKey {
  sourceId: string;
  messageId: string;
  /** The event's receive time (received_at), kept with the key for a takeover (0 when unknown). */
  receivedAt?: number;
}

/** The outcome of one claim() call: confirm() or release() it once its send is settled. */
export interface Claim {
  /** Per key, in order. */
  results: ClaimResult[];
  /** Names this claim's flush state (one key per source that won a key). */
  token: string;
  /** Sources in which this claim won at least one key. */
  sources: string[];
  /** Per key taken over from another flush: the receive time that flush claimed it with (its write may have landed), for this one to reuse. */
  receivedAt: Array<number | undefined>;
}

// One script call per source per flush instead of one command per event: the
// per-command protocol work in Redis was the ingest's largest cost at batch
// rates. Every key of one call shares the {source} hash tag, so they share a
// Cluster slot (the flush keys a call reads are under the same tag).
// KEYS[1] this flush's key, then the events' keys; ARGV token, event TTL (s),
// pending TTL (ms), the flush-key prefix (to find the flush a key names).
// ARGV[5..]: each event key's receive time. Replies: 0 new, 1 duplicate, 2 in
// flight, "r:<ms>" new, taken over from a flush that claimed it with receive time <ms>.
const CLAIM_LUA = `
local token, ttl, flushPrefix = ARGV[1], ARGV[2], ARGV[4]
local out, won = {}, false
for i = 2, #KEYS do
  local key = KEYS[i]
  local prev = redis.call('SET', key, token .. '|' .. ARGV[3 + i], 'EX', ttl, 'NX', 'GET')
  local state, owner, at = prev, prev, nil
  if prev and prev ~= 'd' and prev ~= 'p' then
    local bar = string.find(prev, '|', 1, true)
    if bar then owner = string.sub(prev, 1, bar - 1); at = string.sub(prev, bar + 1) end
    state = redis.call('GET', flushPrefix .. owner)
  end
  if not prev then out[i - 1] = 0; won = true
  -- The same key twice in one claim: a duplicate of the first.
  elseif state == 'd' or owner == token then out[i - 1] = 1
  elseif state == 'p' then out[i - 1] = 2
  else
    -- The flush that claimed it failed, died or outlived its pending state: this one
    -- takes it over, with the receive time that flush may have written it with.
    redis.call('SET', key, token .. '|' .. (at or ARGV[3 + i]), 'EX', ttl)
    out[i - 1] = at and ('r:' .. at) or 0; won = true
  end
end
if won then redis.call('SET', KEYS[1], 'p', 'PX', ARGV[3]) end
return out
`;
const RESULTS: ClaimResult[] = ['new', 'duplicate', 'in_flight'];

// Unique per flush across replicas: a random process part and a counter (short: every event key holds one).
const PROCESS_TOKEN = randomBytes(6).toString('base64url');
let flushes = 0;

export class DedupeRepository {
  constructor(
    private readonly config: { keyPrefix: string; ttlSeconds: number; pendingTtlMs: number },
    private readonly deps: { redis: RedisClient },
  ) {
    this.claimScript = luaScript(deps.redis, CLAIM_LUA);
  }

  /** Called by SHA (luaScript: the text only on NOSCRIPT). */
  private readonly claimScript: LuaScript;

  // NOTE: the {source} hash tag keeps one source's keys on one Cluster slot.
  private key(k: DedupeKey): string {
    return `${this.config.keyPrefix}ingest:dedupe:{${k.sourceId}}:${k.messageId}`;
  }

  private flushPrefix(sourceId: string): string {
    return `${this.config.keyPrefix}ingest:flush:{${sourceId}}:`;
  }

  /**
   * Claims every key: one script call per source, issued in the same tick.
   * NOTE: not an explicit pipeline: in a Redis Cluster a pipeline must stay on
   * one slot, and a flush spans sources (slots). The client is created with
   * enableAutoPipelining (libs/redis), which writes commands issued in one tick
   * as one pipeline per node: one round trip on a single node.
   * https://github.com/redis/ioredis#autopipelining
   */
  async claim(keys: DedupeKey[]): Promise<Claim> {
    const token = `${PROCESS_TOKEN}${(++flushes).toString(36)}`;
    const results: ClaimResult[] = new Array(keys.length);
    const receivedAt: Array<number | undefined> = new Array(keys.length);
    const sources: string[] = [];
    const { ttlSeconds, pendingTtlMs } = this.config;
    await Promise.all(
      this.bySource(keys).map(async (indexes) => {
        const sourceId = keys[indexes[0]!]!.sourceId;
        const flushPrefix = this.flushPrefix(sourceId);
        const codes = (await this.claimScript(
          indexes.length + 1,
          flushPrefix + token,
          ...indexes.map((i) => this.key(keys[i]!)),
          token,
          ttlSeconds,
          pendingTtlMs,
          flushPrefix,
          ...indexes.map((i) => String(keys[i]!.receivedAt ?? 0)),
        )) as Array<number | string>;
        indexes.forEach((keyIndex, j) => {
          const code = codes[j]!;
          // 0: the flush taken over did not say (a key of the earlier layout): this claim's own time.
          if (typeof code === 'string' && Number(code.slice(2)) > 0) receivedAt[keyIndex] = Number(code.slice(2));
          results[keyIndex] = typeof code === 'string' ? 'new' : RESULTS[code]!;
        });
        if (codes.some((c) => c === 0 || typeof c === 'string')) sources.push(sourceId);
      }),
    );
    return { results, token, sources, receivedAt };
  }

  /** Its events are in Kafka: every key it won now answers "duplicate". One write per source. */
  async confirm(claim: Claim): Promise<void> {
    await Promise.all(claim.sources.map((s) => this.deps.redis.set(this.flushPrefix(s) + claim.token, 'd', 'EX', this.config.ttlSeconds)));
  }

  /** Its send failed: every key it won may be claimed again at once (with the receive time it claimed them with). */
  async release(claim: Claim): Promise<void> {
    if (claim.sources.length === 0) return;
    await Promise.all(claim.sources.map((s) => this.deps.redis.del(this.flushPrefix(s) + claim.token)));
  }

  private bySource(keys: DedupeKey[]): Array<number[]> {
    const groups = new Map<string, number[]>();
    keys.forEach((k, i) => {
      const g = groups.get(k.sourceId);
      if (g) g.push(i);
      else groups.set(k.sourceId, [i]);
    });
    return [...groups.values()];
  }
}
