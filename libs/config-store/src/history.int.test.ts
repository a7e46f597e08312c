// The history keyspace against real Redis: what a writer records is what a
// reader gets, two writers of one interval leave one point, counts of two
// writers add up, every chunk expires, and a series' keys share one slot.
import { createRedis, isCluster, keySlot, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { chunkExpiresAt, HistoryStore } from './history';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
// Today, 06:00 UTC: chunks must not have expired already (PEXPIREAT in the past deletes), and the hours used stay in one day.
const T0 = Math.floor(Date.now() / DAY) * DAY + 6 * HOUR;

let redis: RedisClient;
let prefix: string;
let store: HistoryStore;

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
beforeEach(() => {
  prefix = `${uniqueName('hist')}:`;
  store = new HistoryStore({ keyPrefix: prefix, sizeIntervalMs: MIN }, { redis });
});
afterAll(() => redis.disconnect());

/** Every key under the test's prefix matching `pattern` (SCAN on each master of a Cluster). */
async function keysOf(pattern: string): Promise<string[]> {
  const out: string[] = [];
  for (const node of isCluster(redis) ? redis.nodes('master') : [redis]) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}${pattern}`, 'COUNT', 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
  }
  return out.sort();
}

it('reads back the sizes sampled, per interval at minutes and per hour (the last sample of each), in time order', async () => {
  // Three samples in the first minute (the last one wins), one in the second, one in the next hour.
  await store.recordSizes([{ computationId: 'aud_1', size: 1 }], T0 + 1000);
  await store.recordSizes(
    [
      { computationId: 'aud_1', size: 2 },
      { computationId: 'aud_2', size: 40 },
    ],
    T0 + 20_000,
  );
  await store.recordSizes([{ computationId: 'aud_1', size: 3 }], T0 + 50_000);
  await store.recordSizes([{ computationId: 'aud_1', size: 4 }], T0 + MIN + 5000);
  await store.recordSizes([{ computationId: 'aud_1', size: 5 }], T0 + HOUR + 1);
  const now = T0 + HOUR + MIN;
  expect(await store.sizes('aud_1', { since: T0 - HOUR, until: now, now })).toEqual({
    tier: 'm',
    points: [
      { at: T0, size: 3 },
      { at: T0 + MIN, size: 4 },
      { at: T0 + HOUR, size: 5 },
    ],
  });
  // A week back: the hourly tier.
  expect(await store.sizes('aud_1', { since: now - 7 * DAY, until: now, now })).toEqual({
    tier: 'h',
    points: [
      { at: T0, size: 4 },
      { at: T0 + HOUR, size: 5 },
    ],
  });
  expect((await store.sizes('aud_2', { since: T0, until: now, now })).points).toEqual([{ at: T0, size: 40 }]);
  expect((await store.sizes('aud_none', { since: T0, until: now, now })).points).toEqual([]);
});

it('keeps one point when two replicas sample the same interval', async () => {
  const other = new HistoryStore({ keyPrefix: prefix, sizeIntervalMs: MIN }, { redis });
  await Promise.all([
    store.recordSizes([{ computationId: 'aud_1', size: 7 }], T0 + 10_000),
    other.recordSizes([{ computationId: 'aud_1', size: 7 }], T0 + 11_000),
  ]);
  await other.recordSizes([{ computationId: 'aud_1', size: 7 }], T0 + 12_000);
  expect((await store.sizes('aud_1', { since: T0, until: T0 + MIN, now: T0 + MIN })).points).toEqual([{ at: T0, size: 7 }]);
});

it('adds up the delivery counts of several writers per minute and per hour, with every bucket of the range', async () => {
  const other = new HistoryStore({ keyPrefix: prefix }, { redis });
  await store.addDeliveries('dst_1', [
    { at: T0 + 1000, outcome: 'sent', n: 3 },
    { at: T0 + 2000, outcome: 'throttled', n: 1 },
    { at: T0 + 2 * MIN, outcome: 'failed', n: 2 },
  ]);
  await other.addDeliveries('dst_1', [
    { at: T0 + 59_000, outcome: 'sent', n: 2 },
    { at: T0 + 2 * MIN + 1, outcome: 'dead_lettered', n: 1 },
  ]);
  const now = T0 + 3 * MIN;
  const recent = await store.deliveries('dst_1', { since: T0, until: now, now });
  expect(recent).toEqual({
    tier: 'm',
    bucketMs: MIN,
    buckets: [
      { at: T0, sent: 5, failed: 0, throttled: 1, deadLettered: 0 },
      { at: T0 + MIN, sent: 0, failed: 0, throttled: 0, deadLettered: 0 },
      { at: T0 + 2 * MIN, sent: 0, failed: 2, throttled: 0, deadLettered: 1 },
    ],
  });
  const hourly = await store.deliveries('dst_1', { since: T0 - 3 * DAY, until: T0 + HOUR, now });
  expect(hourly.bucketMs).toBe(HOUR);
  expect(hourly.buckets).toHaveLength(3 * 24 + 1);
  expect(hourly.buckets.filter((b) => b.sent + b.failed + b.throttled + b.deadLettered > 0)).toEqual([
    { at: T0, sent: 5, failed: 2, throttled: 1, deadLettered: 1 },
  ]);
  // Another destination's counts are its own.
  expect((await store.deliveries('dst_2', { since: T0, until: now, now })).buckets.every((b) => b.sent === 0)).toBe(true);
});

it('expires every chunk after its retention, and keeps each series in one hash slot', async () => {
  await store.recordSizes([{ computationId: 'aud_1', size: 1 }], T0 + 1000);
  await store.recordSizes([{ computationId: 'aud_1', size: 1 }], T0 + HOUR + 1000);
  await store.addDeliveries('dst_1', [
    { at: T0 + 1000, outcome: 'sent', n: 1 },
    { at: T0 + HOUR + 1000, outcome: 'sent', n: 1 },
  ]);
  const sizeKeys = await keysOf('hist:size:*');
  const deliveryKeys = await keysOf('hist:delivery:*');
  const dayStart = T0 - (T0 % DAY);
  expect(sizeKeys).toEqual([
    `${prefix}hist:size:{aud_1}:h:${dayStart}`,
    `${prefix}hist:size:{aud_1}:m:${T0}`,
    `${prefix}hist:size:{aud_1}:m:${T0 + HOUR}`,
  ]);
  expect(deliveryKeys.map((k) => k.replace(prefix, ''))).toEqual(
    sizeKeys.map((k) => k.replace(prefix, '').replace('size:{aud_1}', 'delivery:{dst_1}')),
  );
  for (const key of [...sizeKeys, ...deliveryKeys]) {
    const [tier, chunk] = key.split(':').slice(-2) as ['m' | 'h', string];
    expect(await redis.pexpiretime(key)).toBe(chunkExpiresAt(Number(chunk), tier));
  }
  expect(new Set(sizeKeys.map(keySlot)).size).toBe(1);
  expect(new Set(deliveryKeys.map(keySlot)).size).toBe(1);
});
