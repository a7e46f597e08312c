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
  // One hash tag: these tests pin the script's semantics, which a Cluster runs per slot (the last test spreads over slots).
  p = `{${uniqueName('aw')}}:`;
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

it('coalesces writes without changing the outcome: random interleavings end as the same writes sent one by one', async () => {
  // Writes are merged before they are sent (one MSET, one ZADD/ZREM per sorted set,
  // one SADD/SREM per set): the result must be what the writes give in their order.
  let seed = 11;
  const rand = (n: number) => (seed = (seed * 48271) % 2147483647) % n;
  for (let round = 0; round < 25; round++) {
    const coalesced = `${p}c${round}:`;
    const inOrder = `${p}o${round}:`;
    const w = new AtomicWrites();
    const reference = redis.multi();
    const strings = ['s0', 's1', 's2'];
    const lists = ['l0', 'l1'];
    for (let i = 0; i < 60; i++) {
      const member = `m${rand(4)}`;
      switch (rand(8)) {
        case 0: {
          const key = strings[rand(3)]!;
          const value = `v${i}`;
          w.set(coalesced + key, value);
          reference.set(inOrder + key, value);
          break;
        }
        case 1: {
          const key = rand(2) ? strings[rand(3)]! : lists[rand(2)]!;
          w.del(coalesced + key);
          reference.del(inOrder + key);
          break;
        }
        case 2: {
          const key = lists[rand(2)]!;
          w.rpush(coalesced + key, [`e${i}`, `f${i}`]);
          reference.rpush(inOrder + key, `e${i}`, `f${i}`);
          break;
        }
        case 3:
          w.zadd(`${coalesced}z`, [[i, member]]);
          reference.zadd(`${inOrder}z`, i, member);
          break;
        case 4:
          w.zrem(`${coalesced}z`, member);
          reference.zrem(`${inOrder}z`, member);
          break;
        case 5:
          w.sadd(`${coalesced}set`, member);
          reference.sadd(`${inOrder}set`, member);
          break;
        case 6:
          w.srem(`${coalesced}set`, member);
          reference.srem(`${inOrder}set`, member);
          break;
        default: {
          const key = lists[rand(2)]!;
          w.keepNewest(coalesced + key, `${coalesced}z`, 2);
          reference.ltrim(inOrder + key, -2, -1).zremrangebyrank(`${inOrder}z`, 0, -3);
        }
      }
    }
    await w.exec(redis);
    await reference.exec();
    for (const key of strings) expect([round, key, await redis.get(coalesced + key)]).toEqual([round, key, await redis.get(inOrder + key)]);
    for (const key of lists)
      expect([round, key, await redis.lrange(coalesced + key, 0, -1)]).toEqual([round, key, await redis.lrange(inOrder + key, 0, -1)]);
    expect(await redis.zrange(`${coalesced}z`, 0, -1, 'WITHSCORES')).toEqual(await redis.zrange(`${inOrder}z`, 0, -1, 'WITHSCORES'));
    expect((await redis.smembers(`${coalesced}set`)).sort()).toEqual((await redis.smembers(`${inOrder}set`)).sort());
  }
});

it('sends a chunk of many strings as MSETs of at most 500 pairs', async () => {
  const w = new AtomicWrites();
  for (let i = 0; i < 1234; i++) w.set(`${p}k${i}`, `v${i}`);
  await w.exec(redis);
  const values = await redis.mget(...Array.from({ length: 1234 }, (_, i) => `${p}k${i}`));
  expect(values).toEqual(Array.from({ length: 1234 }, (_, i) => `v${i}`));
});

it('writes keys of many hash slots (on a Cluster: one MULTI per slot, the commitLast slots after the others)', async () => {
  const base = uniqueName('aw-slots');
  const state = (i: number) => `${base}:{p${i}}:state`;
  const hist = (i: number) => `${base}:{p${i}}:hist`;
  const seen = (i: number) => `${base}:{p${i}}:seen`;
  const members = (c: number) => `${base}:{c${c}}:members`;
  const w = new AtomicWrites({ commitLast: (key) => key.endsWith(':state') });
  for (let i = 0; i < 40; i++) {
    w.set(state(i), `s${i}`);
    w.rpush(hist(i), ['e1', 'e2', 'e3']);
    w.keepNewest(hist(i), seen(i), 2);
    w.sadd(members(i % 7), `p${i}`);
  }
  w.del(state(39), hist(38));
  await w.exec(redis);
  for (let i = 0; i < 39; i++) expect(await redis.get(state(i))).toBe(`s${i}`);
  expect(await redis.get(state(39))).toBeNull();
  expect(await redis.lrange(hist(0), 0, -1)).toEqual(['e2', 'e3']);
  expect(await redis.exists(hist(38))).toBe(0);
  expect((await redis.smembers(members(3))).sort()).toEqual(['p10', 'p17', 'p24', 'p3', 'p31', 'p38']);
  for (let i = 0; i < 40; i++) await redis.del(state(i), hist(i), seen(i));
  for (let c = 0; c < 7; c++) await redis.del(members(c));
});
