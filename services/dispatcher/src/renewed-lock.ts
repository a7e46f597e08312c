// One replica at a time for long work (a list flush, an initial sync): a Redis
// lock that is renewed on a timer while the work runs, so work that retries
// for hours keeps it, and that expires by itself if its holder dies.
import type { RedisClient } from '@engage/redis';

const RELEASE_LOCK_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** Runs `work` under the lock `key`; `{ acquired: false }` when another holder has it. */
export async function withRenewedLock<T>(
  redis: RedisClient,
  key: string,
  ttlMs: number,
  work: () => Promise<T>,
): Promise<{ acquired: true; value: T } | { acquired: false }> {
  const owner = `${process.pid}:${Math.random().toString(36).slice(2)}`;
  if ((await redis.set(key, owner, 'PX', ttlMs, 'NX')) !== 'OK') return { acquired: false };
  const renew = setInterval(() => void redis.pexpire(key, ttlMs).catch(() => undefined), ttlMs / 3);
  renew.unref();
  try {
    return { acquired: true, value: await work() };
  } finally {
    clearInterval(renew);
    // Only our own lock: had it expired (process paused), another holder's is not ours to drop.
    await redis.eval(RELEASE_LOCK_LUA, 1, key, owner);
  }
}
