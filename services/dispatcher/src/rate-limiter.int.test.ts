// The shared bucket against real Redis: two limiters (two replicas) with
// several concurrent callers each, one destination. Times are the grants on
// Redis' clock, the clock the limiter enforces on; that the destination sees
// the same (arrival jitter included) is test/delivery.test.ts's job.
import { createRedis } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
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
