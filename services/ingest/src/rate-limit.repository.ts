// The shared token bucket of each source, in Redis, for every replica of the
// ingest: one script call takes a lease of tokens (token-bucket.ts's
// takeTokens, step for step, in Lua: the read, refill and take must be atomic
// across replicas).
// Key: <prefix>ingest:ratelimit:{<sourceId>}, a hash {t: tokens, at: epoch ms}
// (hash-tagged per source like the dedupe keys).
// NOTE: the time is the caller's (the request's receive time), not Redis' TIME:
// the limiter, its tests and the pure function then agree on one clock. Replica
// clocks (NTP) differ by milliseconds, worth rate x skew tokens at most, and the
// script never lets time run backwards.
// https://redis.io/docs/latest/develop/interact/programmability/eval-intro/
import { luaScript, type LuaScript, type RedisClient } from '@engage/redis';
import type { RateLimitSettings } from './token-bucket';

// ARGV: rate (tokens/s), burst, now (epoch ms), want. Reply: {granted, retryAfterMs}.
// NOTE: %.17g keeps the fractional tokens exact (tostring would round to 14 digits).
// The key expires once the bucket would be full again: a missing bucket is a full one.
const LEASE_LUA = `
local rate = tonumber(ARGV[1])
local burst = math.max(1, tonumber(ARGV[2]))
local now = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local saved = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(saved[1]) or burst
local at = tonumber(saved[2]) or now
if now > at then
  tokens = tokens + (now - at) * rate / 1000
  at = now
end
tokens = math.min(burst, tokens)
local granted = math.max(0, math.min(want, math.floor(tokens)))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'at', string.format('%.17g', at))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
local retry = 0
if granted == 0 then retry = math.ceil(at - now + (1 - tokens) * 1000 / rate) end
return {granted, retry}
`;

export interface Lease {
  granted: number;
  retryAfterMs: number;
}

export class RateLimitRepository {
  constructor(
    private readonly config: { keyPrefix: string },
    deps: { redis: RedisClient },
  ) {
    this.leaseScript = luaScript<[number, number]>(deps.redis, LEASE_LUA, { keys: 1 });
  }

  /** Called by SHA (luaScript: the text only on NOSCRIPT). */
  private readonly leaseScript: LuaScript<[number, number]>;

  key(sourceId: string): string {
    return `${this.config.keyPrefix}ingest:ratelimit:{${sourceId}}`;
  }

  /** Takes up to `want` tokens of `sourceId`'s shared bucket at `now` (epoch ms). */
  async lease(sourceId: string, limit: RateLimitSettings, now: number, want: number): Promise<Lease> {
    const [granted, retryAfterMs] = (await this.leaseScript(
      this.key(sourceId),
      String(limit.requestsPerSecond),
      String(limit.burst),
      String(now),
      String(want),
    )) as [number, number];
    return { granted, retryAfterMs };
  }
}
