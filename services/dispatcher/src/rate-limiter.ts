// A token bucket per destination shared by every replica of its dispatcher,
// in one Lua script on Redis' clock (so replicas agree). Two checks, both
// taken at the moment a request is about to go out (not reserved ahead, so a
// caller that wakes late cannot squeeze the next ones together):
// - a sliding log of the last window's sends (ZSET): at most `perSecond` in
//   any window of 1 s + margin. This is the hard guarantee; the margin absorbs
//   the jitter between our send and the destination's arrival clock.
// - GCRA pacing at window/perSecond per request, with a tolerance of
//   (burst - 1) intervals plus half an interval, so requests are spread over
//   the second instead of arriving in bursts, and a caller that wakes a little
//   late does not push every later request back.
// Keys (hash-tagged per destination so a cluster keeps them on one slot):
//   <prefix>dispatch:bucket:{<destinationId>}:log  ZSET send time -> unique member
//   <prefix>dispatch:bucket:{<destinationId>}:tat  theoretical arrival time (ms)
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '@engage/redis';

const ACQUIRE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local interval = window / limit
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(math.max(1, tonumber(oldest[2]) + window - now))
end
local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
if tat < now then tat = now end
local allowAt = tat - (burst - 1) * interval - interval / 2
if now < allowAt then return tostring(math.max(1, allowAt - now)) end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window) + 1000)
redis.call('SET', KEYS[2], tostring(tat + interval), 'PX', math.ceil(tat + interval - now + window))
return '0'
`;

export interface RateLimit {
  perSecond: number;
  burst: number;
}

export class RateLimiter {
  private seq = 0;
  private readonly queues = new Map<string, Promise<void>>();
  private readonly instance = randomUUID().slice(0, 8);

  constructor(
    private readonly config: { keyPrefix: string; marginMs: number },
    private readonly deps: { redis: RedisClient },
  ) {}

  private keys(destinationId: string) {
    const base = `${this.config.keyPrefix}dispatch:bucket:{${destinationId}}`;
    return [`${base}:log`, `${base}:tat`];
  }

  /** Tries to take a slot now: 0 when taken, else the milliseconds to wait before trying again. */
  async tryAcquire(destinationId: string, limit: RateLimit): Promise<number> {
    const [log, tat] = this.keys(destinationId);
    const member = `${this.instance}:${++this.seq}`;
    const wait = (await this.deps.redis.eval(ACQUIRE_LUA, 2, log!, tat!, limit.perSecond, 1000 + this.config.marginMs, limit.burst, member)) as string;
    return Number(wait);
  }

  /**
   * Waits until a slot is taken; resolves with how long it waited (ms).
   * Callers of one process queue locally, so only one of them polls Redis at a
   * time: a herd of waiters waking together would delay the winner's request
   * behind the losers' replies (jitter at the destination) and load Redis.
   */
  async acquire(destinationId: string, limit: RateLimit, sleep: (ms: number) => Promise<void>): Promise<number> {
    const started = Date.now();
    const previous = this.queues.get(destinationId) ?? Promise.resolve();
    const mine = previous.then(async () => {
      for (let wait = await this.tryAcquire(destinationId, limit); wait > 0; wait = await this.tryAcquire(destinationId, limit)) await sleep(wait);
    });
    const tail = mine.catch(() => undefined);
    this.queues.set(destinationId, tail);
    try {
      await mine;
    } finally {
      if (this.queues.get(destinationId) === tail) this.queues.delete(destinationId);
    }
    return Date.now() - started;
  }
}
