// The shared bucket against real Redis: two limiters (two replicas) with
// several concurrent callers each, one destination. Times are the grants on
// Redis' clock, the clock the limiter enforces on; that the destination sees
// the same (arrival jitter included) is test/delivery.test.ts's job.
import { createRedis } from '@engage/redis';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { RateLimiter } from './rate-limiter';

function maxInWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

it('two replicas sharing a 10/s bucket never grant more than 10 in any second, and grant close to 10/s under a backlog', async () => {
  const redis = createRedis({ url: testInfrastructure().redisUrl });
  const keyPrefix = `${uniqueName('rl')}:`;
  const replicas = [new RateLimiter({ keyPrefix, marginMs: 40 }, { redis }), new RateLimiter({ keyPrefix, marginMs: 40 }, { redis })];
  const granted: number[] = [];
  let left = 60;
  // Four callers per replica, like a dispatcher's concurrent profiles.
  const caller = async (limiter: RateLimiter) => {
    while (left-- > 0) {
      // The limiter's own wait for its slot (the default), as a dispatcher without keep-alives waits.
      await limiter.acquire('dst_1', { perSecond: 10, burst: 1 }, undefined, (at) => granted.push(at));
    }
  };
  await Promise.all(replicas.flatMap((r) => [caller(r), caller(r), caller(r), caller(r)]));
  redis.disconnect();

  expect(granted).toHaveLength(60);
  expect(maxInWindow(granted, 1000)).toBeLessThanOrEqual(10);
  const sorted = [...granted].sort((a, b) => a - b);
  const achieved = (sorted.length - 1) / ((sorted[sorted.length - 1]! - sorted[0]!) / 1000);
  expect(achieved).toBeGreaterThanOrEqual(9.5);
  expect(achieved).toBeLessThanOrEqual(10);
});

it('a sender that stalls between its grant and its send still keeps the limit at the destination, once it restamps', async () => {
  const redis = createRedis({ url: testInfrastructure().redisUrl });
  const keyPrefix = `${uniqueName('rl-stall')}:`;
  const [a, b] = [new RateLimiter({ keyPrefix, marginMs: 40 }, { redis }), new RateLimiter({ keyPrefix, marginMs: 40 }, { redis })];
  const limit = { perSecond: 2, burst: 1 };
  const sentAt: number[] = [];
  const send = async (limiter: RateLimiter, stalledUntil?: () => boolean) => {
    const grant = await limiter.acquire('dst_stall', limit);
    // The stalled replica: held after its grant (a GC pause, a loaded event loop) until the condition holds.
    if (stalledUntil) await waitFor(stalledUntil, { timeoutMs: 10_000, intervalMs: 5, description: 'the other replica to send' });
    expect(await limiter.restamp('dst_stall', grant)).toBe(true);
    sentAt.push(Date.now());
  };
  // Replica a's grant comes first; it stays stalled until replica b has sent once (its slot is ~520 ms later).
  const stalled = send(a, () => sentAt.length >= 1);
  await send(b);
  await stalled;
  await send(b);
  redis.disconnect();
  // Granted at 0, 520 and 1040 ms; without the restamp sent at ~520, ~520 and 1040: three within one second.
  expect(sentAt).toHaveLength(3);
  expect(maxInWindow(sentAt, 1000)).toBeLessThanOrEqual(2);
});

it('restamp answers false once the grant has left the window, so the sender asks again', async () => {
  const redis = createRedis({ url: testInfrastructure().redisUrl });
  const keyPrefix = `${uniqueName('rl-late')}:`;
  const limiter = new RateLimiter({ keyPrefix, marginMs: 40 }, { redis });
  const grant = await limiter.acquire('dst_late', { perSecond: 5, burst: 1 });
  await redis.del(`${keyPrefix}dispatch:bucket:{dst_late}:log`); // what trimming does to an entry older than the window
  expect(await limiter.restamp('dst_late', grant)).toBe(false);
  redis.disconnect();
});
