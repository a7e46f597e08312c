// Every write of a save as one script call, against the real Redis.
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { AtomicWrites } from './atomic-writes';

let redis: RedisClient;
let p: string;
beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl, connectionName: 'atomic-writes-test' });
});
beforeEach(() => {
  p = `${uniqueName('aw')}:`;
});
afterAll(() => redis.disconnect());

it('applies every kind of write in order, lists longer than one unpack included', async () => {
  await redis.set(`${p}gone`, 'x');
  await redis.rpush(`${p}list`, 'old');
  const w = new AtomicWrites();
  w.set(`${p}s`, 'value with spaces, "quotes" and ünïcode');
  w.del(`${p}gone`);
  const many = Array.from({ length: 2500 }, (_, i) => `v${i}`);
  w.rpush(`${p}list`, many);
  w.zadd(
    `${p}z`,
    many.map((v, i) => [i, v] as [number, string]),
  );
  w.keepNewest(`${p}list`, `${p}z`, 3);
  w.zadd(`${p}wake`, [
    [5, 'a'],
    [6, 'b'],
  ]);
  w.zrem(`${p}wake`, 'a');
  w.sadd(`${p}set`, 'm1');
  w.sadd(`${p}set`, 'm2');
  w.srem(`${p}set`, 'm1');
  await w.exec(redis);
  expect(await redis.get(`${p}s`)).toBe('value with spaces, "quotes" and ünïcode');
  expect(await redis.exists(`${p}gone`)).toBe(0);
  expect(await redis.lrange(`${p}list`, 0, -1)).toEqual(['v2497', 'v2498', 'v2499']);
  expect(await redis.zrange(`${p}z`, 0, -1)).toEqual(['v2497', 'v2498', 'v2499']);
  expect(await redis.zrange(`${p}wake`, 0, -1, 'WITHSCORES')).toEqual(['b', '6']);
  expect(await redis.smembers(`${p}set`)).toEqual(['m2']);
});

it('sends nothing when there is nothing to write, and throws when Redis refuses a write', async () => {
  await new AtomicWrites().exec(redis);
  await redis.set(`${p}string`, 'x');
  const w = new AtomicWrites();
  w.sadd(`${p}string`, 'member'); // wrong type
  await expect(w.exec(redis)).rejects.toThrow(/WRONGTYPE/);
});
