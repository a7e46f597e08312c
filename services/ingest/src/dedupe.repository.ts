// messageId dedupe per source over 24 h (CONTRACT.md section 1), in Redis:
// per flush, one script call per source, written together (one round trip).
//
// TRICKY: a plain `SET NX EX 24h` before producing would lose events: if the
// process dies (or Kafka fails) after the SET and before the broker acks, the
// client's retry is dropped as a duplicate of an event that never landed. So a
// key goes through two states:
//   claim:   SET key "p" NX PX <pendingTtl> GET   (Redis >= 7.0: NX with GET)
//   confirm: SET key "d" EX <ttl>                  (after the broker acked)
//   release: DEL key                               (the send failed)
// A call that finds "d" is a duplicate (accepted, dropped). One that finds "p"
// is in flight elsewhere (another request, another replica): the publisher
// repeats the claim every poll interval until the key is "d" (a duplicate), or
// gone (that send failed, or its process died and the claim expired) so that
// this claim wins and this request writes the event; only if the wait runs out
// first is the request answered 503 (events.publisher.ts).
// https://redis.io/docs/latest/commands/set/
import type { RedisClient } from '@engage/redis';

export type ClaimResult = 'new' | 'duplicate' | 'in_flight';

export interface DedupeKey {
  sourceId: string;
  messageId: string;
}

// One script call per source per flush instead of one command per event: the
// per-command protocol work in Redis was the ingest's largest cost at batch
// rates. KEYS of one call share the {source} hash tag, so they share a Cluster slot.
// Replies: 0 new, 1 duplicate, 2 in flight.
const CLAIM_LUA = `
local out = {}
for i, key in ipairs(KEYS) do
  local prev = redis.call('SET', key, 'p', 'PX', ARGV[1], 'NX', 'GET')
  if not prev then out[i] = 0 elseif prev == 'd' then out[i] = 1 else out[i] = 2 end
end
return out
`;
const CONFIRM_LUA = `
for _, key in ipairs(KEYS) do redis.call('SET', key, 'd', 'EX', ARGV[1]) end
return #KEYS
`;
const RESULTS: ClaimResult[] = ['new', 'duplicate', 'in_flight'];

export class DedupeRepository {
  constructor(
    private readonly config: { keyPrefix: string; ttlSeconds: number; pendingTtlMs: number },
    private readonly deps: { redis: RedisClient },
  ) {}

  // NOTE: the {source} hash tag keeps one source's keys on one Cluster slot.
  private key(k: DedupeKey): string {
    return `${this.config.keyPrefix}ingest:dedupe:{${k.sourceId}}:${k.messageId}`;
  }

  /** Claims every key: one script call per source, sent together. */
  async claim(keys: DedupeKey[]): Promise<ClaimResult[]> {
    const out: ClaimResult[] = new Array(keys.length);
    const groups = this.bySource(keys);
    const replies = await this.run(keys, groups, CLAIM_LUA, String(this.config.pendingTtlMs));
    groups.forEach((indexes, g) => {
      const codes = replies[g] as number[];
      indexes.forEach((keyIndex, j) => (out[keyIndex] = RESULTS[codes[j]!]!));
    });
    return out;
  }

  async confirm(keys: DedupeKey[]): Promise<void> {
    await this.run(keys, this.bySource(keys), CONFIRM_LUA, String(this.config.ttlSeconds));
  }

  async release(keys: DedupeKey[]): Promise<void> {
    // One multi-key DEL per source (one slot each).
    await Promise.all(this.bySource(keys).map((indexes) => this.deps.redis.del(...indexes.map((i) => this.key(keys[i]!)))));
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

  /**
   * One EVAL per source, issued in the same tick.
   * NOTE: not an explicit pipeline: in a Redis Cluster a pipeline must stay on
   * one slot, and a flush spans sources (slots). The client is created with
   * enableAutoPipelining (libs/redis), which writes commands issued in one tick
   * as one pipeline per node: one round trip on a single node, as before.
   * https://github.com/redis/ioredis#autopipelining
   */
  private run(keys: DedupeKey[], groups: Array<number[]>, script: string, arg: string): Promise<unknown[]> {
    return Promise.all(
      groups.map((indexes) => this.deps.redis.eval(script, indexes.length, ...indexes.map((i) => this.key(keys[i]!)), arg)),
    );
  }
}
