// A token bucket per destination shared by every replica of its dispatcher,
// as GCRA in one Lua script (Redis' clock, so replicas agree): each call
// reserves the next slot and is told how long to wait for it. Reservations
// keep callers in order and never exceed `perSecond` in any 1 s window (with
// burst 1); a 1% margin absorbs network jitter between sender and receiver.
import type { RedisClient } from '@engage/redis';

const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allowAt = tat - (burst - 1) * interval
local newTat = tat + interval
redis.call('SET', KEYS[1], tostring(newTat), 'PX', math.ceil(newTat - now + 1000))
local wait = allowAt - now
if wait < 0 then wait = 0 end
return tostring(wait)
`;

export class RateLimiter {
  constructor(
    private readonly config: { keyPrefix: string },
    private readonly deps: { redis: RedisClient },
  ) {}

  /** Reserves one request slot; resolves with the milliseconds to wait before sending. */
  async reserve(destinationId: string, limit: { perSecond: number; burst: number }): Promise<number> {
    const interval = 1000 / (limit.perSecond * 0.99);
    const wait = (await this.deps.redis.eval(GCRA_LUA, 1, `${this.config.keyPrefix}dispatch:bucket:${destinationId}`, interval, limit.burst)) as string;
    return Number(wait);
  }
}
