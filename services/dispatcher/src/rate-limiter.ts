// A token bucket per destination shared by every replica of its dispatcher,
// in Lua on Redis' clock (so replicas agree). Two steps per request:
// - reserve: GCRA pacing, one slot every (1 s + margin) / perSecond, burst
//   slots ahead at most. The caller is told when its slot comes and sleeps;
//   slots are reserved ahead, so a caller that wakes late does not push the
//   later ones back (the achieved rate stays at the limit while a backlog exists).
// - confirm, when about to send: a sliding log of the sends of the last
//   1 s + margin (ZSET); at most `perSecond` in it, else wait for the oldest to
//   leave. This is the hard guarantee: late callers catching up cannot squeeze
//   more than the limit into any window. The margin absorbs the jitter between
//   our send and the destination's arrival clock.
// Keys (hash-tagged per destination so a cluster keeps them on one slot):
//   <prefix>dispatch:bucket:{<destinationId>}:log  ZSET send time -> unique member
//   <prefix>dispatch:bucket:{<destinationId>}:tat  theoretical arrival time (ms)
import { randomUUID } from 'node:crypto';
import { luaScript, type LuaScript, type RedisClient } from '@engage/redis';

const RESERVE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[2]) / tonumber(ARGV[1])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allowAt = tat - (burst - 1) * interval
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil(tat + interval - now + 1000))
return tostring(math.max(0, allowAt - now))
`;

const CONFIRM_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(math.max(0.5, tonumber(oldest[2]) + window - now))
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window) + 1000)
-- Granted: the grant time (Redis clock, ms), negated so that a positive answer always means "wait".
return tostring(-now)
`;

// Moves a granted send's entry in the sliding log to now, when it is about to
// go out (1), or answers 0 when the entry has already left the window.
const RESTAMP_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
return 1
`;

/** A granted send: how long it waited, and its entry in the sliding log. */
export interface Grant {
  waitedMs: number;
  member: string;
}

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
    deps: { redis: RedisClient },
  ) {
    // Called by SHA (luaScript: the text only on NOSCRIPT); one key each.
    this.reserve = luaScript(deps.redis, RESERVE_LUA, { keys: 1 });
    this.confirm = luaScript(deps.redis, CONFIRM_LUA, { keys: 1 });
    this.restampScript = luaScript(deps.redis, RESTAMP_LUA, { keys: 1 });
  }

  private readonly reserve: LuaScript;
  private readonly confirm: LuaScript;
  private readonly restampScript: LuaScript;

  private keys(destinationId: string) {
    const base = `${this.config.keyPrefix}dispatch:bucket:{${destinationId}}`;
    return [`${base}:log`, `${base}:tat`];
  }

  /**
   * Waits until a slot is taken; resolves with how long it waited (ms).
   * `onGranted` receives the grant's time on Redis' clock, the clock the
   * sliding log enforces the limit on.
   * Callers of one process queue locally, so only one of them polls Redis at a
   * time: a herd of waiters waking together would delay the winner's request
   * behind the losers' replies (jitter at the destination) and load Redis.
   */
  async acquire(
    destinationId: string,
    limit: RateLimit,
    sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
    onGranted?: (redisTimeMs: number) => void,
  ): Promise<Grant> {
    const started = Date.now();
    const previous = this.queues.get(destinationId) ?? Promise.resolve();
    const [log, tat] = this.keys(destinationId);
    const window = 1000 + this.config.marginMs;
    let member = '';
    const mine = previous.then(async () => {
      const slot = Number(await this.reserve(tat!, limit.perSecond, window, limit.burst));
      if (slot > 0) await sleep(slot);
      member = `${this.instance}:${++this.seq}`;
      let answer = Number(await this.confirm(log!, limit.perSecond, window, member));
      while (answer > 0) {
        await sleep(answer);
        answer = Number(await this.confirm(log!, limit.perSecond, window, member));
      }
      onGranted?.(-answer);
    });
    const tail = mine.catch(() => undefined);
    this.queues.set(destinationId, tail);
    try {
      await mine;
    } finally {
      if (this.queues.get(destinationId) === tail) this.queues.delete(destinationId);
    }
    return { waitedMs: Date.now() - started, member };
  }

  /**
   * Call right before the granted request goes out: its entry in the sliding
   * log moves from the grant's time to now (Redis' clock), so the log holds
   * when sends left. A process that stalls between grant and send (GC, a busy
   * event loop on a loaded machine) otherwise sends late while a later grant,
   * spaced from the early timestamp, goes out on time: the two then land
   * closer than the window at the destination (seen in CI: 6 in one second at
   * a limit of 5). False when the entry already left the window (a stall
   * longer than it): acquire again.
   */
  async restamp(destinationId: string, grant: Grant): Promise<boolean> {
    const [log] = this.keys(destinationId);
    return Number(await this.restampScript(log!, grant.member)) === 1;
  }
}
