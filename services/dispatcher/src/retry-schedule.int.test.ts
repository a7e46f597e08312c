// The retry schedule against real Redis: due times, one due call per profile
// (later ones queue behind), leases, idempotent scheduling, one slot per destination.
import { createRedis, isCluster, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { RetrySchedule, type ScheduledCall } from './retry-schedule';

// ioredis' own slot function (Redis Cluster's CRC16 of the hash tag).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const keySlot = require('cluster-key-slot') as (key: string) => number;

let redis: RedisClient;
let keyPrefix: string;
let schedule: RetrySchedule;

const call = (messageId: string, profileId: string, over: Partial<ScheduledCall> = {}): ScheduledCall => ({
  messageId,
  profileId,
  connectionId: 'con_1',
  body: { type: 'identify', messageId, traits: { vip: true } },
  since: 0,
  attempts: 1,
  letter: { key: profileId, value: Buffer.from(`record of ${messageId}`).toString('base64'), step: 'deliver' },
  ...over,
});
const ids = (calls: ScheduledCall[]) => calls.map((c) => c.messageId).sort();

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
beforeEach(() => {
  keyPrefix = `${uniqueName('rs')}:`;
  schedule = new RetrySchedule({ keyPrefix, destinationId: 'dst_1' }, { redis });
});
afterAll(() => redis.disconnect());

it('hands out a call when it is due, with the body it was stored with', async () => {
  const a = call('m-a', 'p-1');
  await schedule.enqueue([{ call: a, dueAt: 1000 }]);
  expect(await schedule.claimDue(999, 10, 60_999)).toEqual([]);
  expect(await schedule.claimDue(1000, 10, 61_000)).toEqual([a]);
});

it("keeps a profile's calls in order: a later call is due only once the one ahead of it is done", async () => {
  await schedule.enqueue([
    { call: call('m-a', 'p-1'), dueAt: 1000 },
    { call: call('m-b', 'p-1', { attempts: 0 }), dueAt: 0 },
    { call: call('m-c', 'p-2'), dueAt: 500 },
  ]);
  expect(await schedule.waiting(['p-1', 'p-2', 'p-3'])).toEqual(new Set(['p-1', 'p-2']));
  // m-b was due at 0 but waits behind m-a; p-2 is independent.
  expect(ids(await schedule.claimDue(1000, 10, 2000))).toEqual(['m-a', 'm-c']);
  await schedule.complete(call('m-a', 'p-1'), 1500);
  await schedule.complete(call('m-c', 'p-2'), 1500);
  expect(ids(await schedule.claimDue(1500, 10, 3000))).toEqual(['m-b']);
  await schedule.complete(call('m-b', 'p-1'), 1600);
  expect(await schedule.waiting(['p-1', 'p-2'])).toEqual(new Set());
  expect(await schedule.size()).toBe(0);
});

it('leases a claimed call: not handed out again until the lease ends (its taker died)', async () => {
  await schedule.enqueue([{ call: call('m-a', 'p-1'), dueAt: 100 }]);
  expect(ids(await schedule.claimDue(100, 10, 1100))).toEqual(['m-a']);
  expect(await schedule.claimDue(1099, 10, 2099)).toEqual([]);
  expect(ids(await schedule.claimDue(1100, 10, 2100))).toEqual(['m-a']);
});

it('reschedules with the attempt count, never revives a completed call, and schedules a call once however often it is enqueued', async () => {
  const a = call('m-a', 'p-1');
  await schedule.enqueue([{ call: a, dueAt: 100 }]);
  await schedule.enqueue([{ call: { ...a, attempts: 7 }, dueAt: 50 }]); // a redelivered chunk
  expect(await schedule.claimDue(100, 10, 1100)).toEqual([a]);
  await schedule.reschedule({ ...a, attempts: 2, lastReason: 'HTTP 503' }, 400);
  expect(await schedule.claimDue(399, 10, 1399)).toEqual([]);
  expect(await schedule.claimDue(400, 10, 1400)).toEqual([{ ...a, attempts: 2, lastReason: 'HTTP 503' }]);
  await schedule.complete(a, 500);
  await schedule.reschedule({ ...a, attempts: 3 }, 600);
  expect(await schedule.claimDue(10_000, 10, 20_000)).toEqual([]);
  expect(await redis.llen(`${keyPrefix}dispatch:retry:{dst_1}:q:p-1`)).toBe(0);
});

it('takes at most the batch size per claim', async () => {
  await schedule.enqueue(Array.from({ length: 5 }, (_, i) => ({ call: call(`m-${i}`, `p-${i}`), dueAt: i })));
  expect(await schedule.claimDue(10, 3, 1000)).toHaveLength(3);
  expect(await schedule.claimDue(10, 3, 1000)).toHaveLength(2);
});

it('keeps every key of a destination on one Redis Cluster slot (its scripts touch several)', async () => {
  await schedule.enqueue([
    { call: call('m-a', 'p-1'), dueAt: 1 },
    { call: call('m-b', 'p-2'), dueAt: 1 },
  ]);
  // KEYS answers for one node: on a Cluster, ask every master.
  const nodes = isCluster(redis) ? redis.nodes('master') : [redis];
  const keys = (await Promise.all(nodes.map((n) => n.keys(`${keyPrefix}*`)))).flat();
  expect(keys.sort()).toEqual(
    [
      `${keyPrefix}dispatch:retry:{dst_1}:due`,
      `${keyPrefix}dispatch:retry:{dst_1}:calls`,
      `${keyPrefix}dispatch:retry:{dst_1}:q:p-1`,
      `${keyPrefix}dispatch:retry:{dst_1}:q:p-2`,
    ].sort(),
  );
  expect(new Set(keys.map(keySlot)).size).toBe(1);
});
