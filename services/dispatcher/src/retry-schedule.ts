// A destination's retry schedule: calls that failed with a retriable answer
// wait here for their due time instead of sleeping inside the consumer's batch
// (DESIGN.md delivery model), so the partition keeps flowing and its offsets
// commit once a call is delivered, dead-lettered or scheduled here.
//
// Per-profile order: a profile's calls form a queue; only its head is in the
// due set. A later call of a profile that has a call waiting is queued behind
// it (never sent ahead of it), and becomes due when the head is done
// (delivered or dead-lettered). We queue rather than supersede: every
// transition (an entry and the exit after it) reaches the destination, in
// order, so the latest value is the last to arrive.
//
// The owner of this keyspace; every key of a destination shares the hash tag
// `{<destinationId>}`, so each script touches one Redis Cluster slot:
//   <prefix>dispatch:retry:{<dst>}:due            ZSET  messageId -> due time (ms); queue heads only
//   <prefix>dispatch:retry:{<dst>}:calls          HASH  messageId -> ScheduledCall (JSON)
//   <prefix>dispatch:retry:{<dst>}:q:<profileId>  LIST  the profile's waiting messageIds, head first
import { luaScript, type RedisClient } from '@engage/redis';

/** The original record of a call, for the DLQ when its retry window is spent (bytes kept as base64). */
export interface StoredLetter {
  key: string | null;
  value: string;
  headers?: Record<string, string>;
  step: string;
  source?: { topic: string; partition: number; offset: string };
}

export interface ScheduledCall {
  messageId: string;
  profileId: string;
  connectionId: string;
  /** The call exactly as first built: every attempt sends this body. URL and headers are read from the destination's current config. */
  body: unknown;
  /** Actions destinations: the mapping that runs the call (`body` is its event); the mapping's current version is used. */
  mappingId?: string;
  /** When the call was first tried (or queued behind another): its retry window counts from here (ms). */
  since: number;
  /** Attempts made so far. */
  attempts: number;
  lastReason?: string;
  letter: StoredLetter;
}

// Adds a call at the tail of its profile's queue; due at ARGV[3] if it is the
// head. A call already scheduled (a redelivered chunk) is left as it is.
const ENQUEUE_LUA = `
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if redis.call('RPUSH', KEYS[3], ARGV[1]) == 1 then redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
return 1
`;

// Takes up to ARGV[2] heads due by ARGV[1] and leases them until ARGV[3]: if
// the taker dies mid-attempt, the call is due again when the lease ends.
const CLAIM_LUA = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local call = redis.call('HGET', KEYS[2], id)
  if call then
    redis.call('ZADD', KEYS[1], ARGV[3], id)
    out[#out + 1] = call
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
`;

// The call stays the head of its queue, due again at ARGV[3], with its
// attempts updated. Not revived if it was completed meanwhile.
const RESCHEDULE_LUA = `
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
`;

// Done (delivered or dead-lettered): out of the schedule; the profile's next
// call becomes due at ARGV[2].
const COMPLETE_LUA = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('LREM', KEYS[3], 1, ARGV[1])
local nextId = redis.call('LINDEX', KEYS[3], 0)
if nextId then redis.call('ZADD', KEYS[1], ARGV[2], nextId) end
return 1
`;

type ScheduleClient = {
  retryEnqueue(due: string, calls: string, queue: string, id: string, json: string, dueAt: number): Promise<number>;
  retryClaim(due: string, calls: string, now: number, limit: number, leaseUntil: number): Promise<string[]>;
  retryReschedule(due: string, calls: string, id: string, json: string, dueAt: number): Promise<number>;
  retryComplete(due: string, calls: string, queue: string, id: string, now: number): Promise<number>;
};

export class RetrySchedule {
  private readonly base: string;

  constructor(
    config: { keyPrefix: string; destinationId: string },
    private readonly deps: { redis: RedisClient },
  ) {
    this.base = `${config.keyPrefix}dispatch:retry:{${config.destinationId}}`;
    // Called by SHA (luaScript: the text only on NOSCRIPT).
    const redis = deps.redis;
    this.client = {
      retryEnqueue: luaScript<number>(redis, ENQUEUE_LUA, { keys: 3 }),
      retryClaim: luaScript<string[]>(redis, CLAIM_LUA, { keys: 2 }),
      retryReschedule: luaScript<number>(redis, RESCHEDULE_LUA, { keys: 2 }),
      retryComplete: luaScript<number>(redis, COMPLETE_LUA, { keys: 3 }),
    };
  }

  private readonly client: ScheduleClient;

  private get dueKey() {
    return `${this.base}:due`;
  }
  private get callsKey() {
    return `${this.base}:calls`;
  }
  private queueKey(profileId: string) {
    return `${this.base}:q:${profileId}`;
  }

  /** Schedules calls (each behind its profile's waiting calls); resolves once all are stored. */
  async enqueue(entries: Array<{ call: ScheduledCall; dueAt: number }>): Promise<void> {
    // Not awaited one by one: ioredis pipelines them (auto-pipelining); a profile's calls keep their order.
    await Promise.all(
      entries.map(({ call, dueAt }) =>
        this.client.retryEnqueue(this.dueKey, this.callsKey, this.queueKey(call.profileId), call.messageId, JSON.stringify(call), dueAt),
      ),
    );
  }

  /** The profiles among `profileIds` that have a call waiting: their later calls must queue behind it. */
  async waiting(profileIds: string[]): Promise<Set<string>> {
    const unique = [...new Set(profileIds)];
    if (unique.length === 0) return new Set();
    const replies = await this.deps.redis.pipeline(unique.map((p) => ['exists', this.queueKey(p)])).exec();
    return new Set(unique.filter((_, i) => replies?.[i]?.[1] === 1));
  }

  /** Up to `limit` calls due by `now` (one per profile: only heads are due), leased until `leaseUntil`. */
  async claimDue(now: number, limit: number, leaseUntil: number): Promise<ScheduledCall[]> {
    const replies = await this.client.retryClaim(this.dueKey, this.callsKey, now, limit, leaseUntil);
    return replies.map((json) => JSON.parse(json) as ScheduledCall);
  }

  async reschedule(call: ScheduledCall, dueAt: number): Promise<void> {
    await this.client.retryReschedule(this.dueKey, this.callsKey, call.messageId, JSON.stringify(call), dueAt);
  }

  /** The call is done (delivered or dead-lettered); its profile's next call is due at `now`. */
  async complete(call: Pick<ScheduledCall, 'messageId' | 'profileId'>, now: number): Promise<void> {
    await this.client.retryComplete(this.dueKey, this.callsKey, this.queueKey(call.profileId), call.messageId, now);
  }

  /** Calls waiting (heads and those queued behind them). */
  async size(): Promise<number> {
    return this.deps.redis.hlen(this.callsKey);
  }
}
