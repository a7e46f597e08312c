// RedisLock against the real Redis (a Cluster too when REDIS_URL says so).
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { createRedis, RedisLock, type RedisClient } from './index';

let redis: RedisClient;
let locks: RedisLock;
const key = () => `${uniqueName('locktest')}:lock`;

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl, connectionName: 'lock-test' });
  locks = new RedisLock(redis);
});
afterAll(() => redis.disconnect());

it('gives a free lock to one of two contenders, and again once released', async () => {
  const k = key();
  const [a, b] = await Promise.all([locks.acquire(k, 10_000, 'a'), locks.acquire(k, 10_000, 'b')]);
  const won = [a, b].filter((l) => l !== null);
  expect(won).toHaveLength(1);
  expect(await redis.get(k)).toBe(won[0]!.owner);
  expect(await locks.acquire(k, 10_000, 'c')).toBeNull();
  expect(await won[0]!.release()).toBe(true);
  expect(await redis.exists(k)).toBe(0);
  expect((await locks.acquire(k, 10_000, 'c'))?.owner).toBe('c');
  await redis.del(k);
});

it('renews only for the owner', async () => {
  const k = key();
  const held = (await locks.acquire(k, 1_000, 'owner'))!;
  expect(await locks.renew(k, 'other', 60_000)).toBe(false);
  expect(await redis.pttl(k)).toBeLessThanOrEqual(1_000);
  expect(await locks.renew(k, 'owner', 60_000)).toBe(true);
  expect(await redis.pttl(k)).toBeGreaterThan(1_000);
  expect(await held.release()).toBe(true);
});

it('releases only for the owner', async () => {
  const k = key();
  await locks.acquire(k, 10_000, 'owner');
  expect(await locks.release([k], 'other')).toBe(0);
  expect(await redis.get(k)).toBe('owner');
  expect(await locks.release([k], 'owner')).toBe(1);
  expect(await redis.exists(k)).toBe(0);
});

it('frees itself when the TTL runs out, and the old holder can neither renew nor release the new one', async () => {
  const k = key();
  const old = (await locks.acquire(k, 100, 'old'))!;
  await waitFor(async () => (await redis.exists(k)) === 0, { timeoutMs: 5_000 });
  const next = (await locks.acquire(k, 10_000, 'new'))!;
  expect(next).not.toBeNull();
  expect(await old.renew()).toBe(false);
  expect(await old.release()).toBe(false);
  expect(await redis.get(k)).toBe('new');
  await next.release();
});

it('withLock: refused while held, renewed while the work runs, released after', async () => {
  const k = key();
  const seen: Array<number> = [];
  const result = await locks.withLock(
    k,
    300,
    async () => {
      // The work outlives the TTL several times over: only the renewals keep the lock.
      // Checked again and again until the work has held it for 1 s (a polled condition with a deadline).
      const until = Date.now() + 1_000;
      await waitFor(
        async () => {
          seen.push(await redis.exists(k));
          expect(await locks.withLock(k, 300, async () => 'other')).toEqual({ acquired: false });
          return Date.now() >= until;
        },
        { timeoutMs: 10_000, description: 'the work held the lock 1 s' },
      );
      return 'done';
    },
    { autoRenew: true },
  );
  expect(result).toEqual({ acquired: true, value: 'done' });
  expect(seen.every((e) => e === 1)).toBe(true);
  expect(await redis.exists(k)).toBe(0);
});

it('takes many locks all or none, and gives back the ones it took when one is held', async () => {
  const tag = uniqueName('many');
  // Three hash tags: one script on one node, one call per slot on a Cluster.
  const keys = [1, 2, 3].map((i) => `${tag}:{${i}}:lock`);
  await redis.set(keys[2]!, 'other', 'PX', 10_000);
  expect(await locks.acquireAll(keys, 'me', 10_000)).toBe(3);
  expect(await Promise.all(keys.map((k) => redis.get(k)))).toEqual([null, null, 'other']);
  await redis.del(keys[2]!);
  expect(await locks.acquireAll(keys, 'me', 10_000)).toBe(0);
  expect(await Promise.all(keys.map((k) => redis.get(k)))).toEqual(['me', 'me', 'me']);
  expect(await redis.pttl(keys[0]!)).toBeGreaterThan(0);
  await locks.releaseAll(keys, 'someone else');
  expect(await Promise.all(keys.map((k) => redis.exists(k)))).toEqual([1, 1, 1]);
  await locks.releaseAll(keys, 'me');
  expect(await Promise.all(keys.map((k) => redis.exists(k)))).toEqual([0, 0, 0]);
});
