// The stored layout of a profile against the real Redis: the hot document
// without the history, the history appended and bounded, redeliveries
// recognised by messageId without reading the history, and documents of the
// earlier layout (history inline) still read whole.
import type { StoredEvent } from '@engage/engine';
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { emptyProfile, ProfileStateRepository } from './profile-state.repository';

let redis: RedisClient;
let prefix: string;
let repo: ProfileStateRepository;
const ref = { spaceId: 'spa_1', profileId: 'pro_1' };

const event = (n: number, inc = 'tok'): StoredEvent => ({
  type: 'track',
  event: 'Order Completed',
  timestamp: 1_000 + n,
  arrivedAt: 2_000 + n,
  sourceId: 'src_1',
  messageId: `m-${n}`,
  properties: { n },
  traits: {},
  context: {},
  inc,
});

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl, connectionName: 'profile-store-test' });
});
beforeEach(() => {
  prefix = `${uniqueName('ps')}:`;
  repo = new ProfileStateRepository({ keyPrefix: prefix, maxEvents: 3 }, { redis });
});
afterAll(() => redis.disconnect());

it('keeps the history out of the hot document, appends to it and keeps the newest maxEvents', async () => {
  const first = { ...emptyProfile(ref), incremental: { tok: 'tok', h: 0, c: {} }, events: [event(1), event(2)] };
  await repo.save([{ profile: first, wakeAt: null }], []);
  const hot = JSON.parse((await redis.get(repo.stateKey(ref)))!);
  expect(hot.events).toBeUndefined();

  // The realtime path: no history read, two redelivered ids recognised, one new.
  const { profiles, seen } = await repo.loadForEvents([ref], [['m-2', 'm-3']]);
  expect(profiles[0]!.events).toEqual([]);
  expect([...seen[0]!]).toEqual(['m-2']);
  profiles[0]!.events.push(event(3), event(4));
  await repo.save([{ profile: profiles[0]!, wakeAt: null }], []);
  // Saving the same object again appends nothing twice.
  await repo.save([{ profile: profiles[0]!, wakeAt: null }], []);

  const [whole] = await repo.load([ref]);
  expect(whole!.events.map((e) => e.messageId)).toEqual(['m-2', 'm-3', 'm-4']);
  expect(await redis.zrange(repo.seenKey(ref), 0, -1)).toEqual(['m-2', 'm-3', 'm-4']);
  expect(whole!.unseenEvents).toBeUndefined();
});

it('rewrites the whole history when it was loaded whole, and flags events the states have not seen', async () => {
  await repo.save([{ profile: { ...emptyProfile(ref), incremental: { tok: 'tok', h: 0, c: {} }, events: [event(1)] }, wakeAt: null }], []);
  const [whole] = await repo.load([ref]);
  // A merge brings another profile's event the states have not applied yet.
  whole!.events.push(event(0, 'other'));
  await repo.save([{ profile: whole!, wakeAt: null }], []);
  const { profiles } = await repo.loadForEvents([ref], [[]]);
  expect(profiles[0]!.unseenEvents).toBe(true);
  await repo.loadHistory(profiles);
  expect(profiles[0]!.events.map((e) => e.messageId)).toEqual(['m-0', 'm-1']);
});

it('reads a document of the earlier layout (history inline) whole, and moves its history out on save', async () => {
  const old = { ...emptyProfile(ref), incremental: { tok: 'tok', h: 0, c: {} }, events: [event(1), event(2)] };
  await redis.set(repo.stateKey(ref), JSON.stringify(old));
  const { profiles } = await repo.loadForEvents([ref], [['m-1']]);
  expect(profiles[0]!.events.map((e) => e.messageId)).toEqual(['m-1', 'm-2']);
  await repo.save([{ profile: profiles[0]!, wakeAt: null }], []);
  expect(JSON.parse((await redis.get(repo.stateKey(ref)))!).events).toBeUndefined();
  expect((await repo.load([ref]))[0]!.events.map((e) => e.messageId)).toEqual(['m-1', 'm-2']);
});
