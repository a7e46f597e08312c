// The initial sync / live path handover against real Redis: who may send
// a (connection, profile), and with which timestamp.
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { Handover, type Claim } from './handover';

let redis: RedisClient;
let handover: Handover;

const claim = (over: Partial<Claim>): Claim => ({ connectionId: 'con_1', profileId: 'p-1', id: 'x', valueText: 'true', at: 0, ...over });

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
beforeEach(() => {
  handover = new Handover({ keyPrefix: `${uniqueName('ho')}:` }, { redis });
});
afterAll(() => redis.disconnect());

it('a transition the sync sent is not sent again by the live path, and the other way round', async () => {
  // The sync read member p-1 first; the live entry of p-1 (same value) arrives after.
  expect(await handover.claim('sync', [claim({ id: 'sync_p1', at: 100 })])).toEqual([100]);
  expect(await handover.claim('live', [claim({ id: 'chg_entry', at: 200 })])).toEqual([null]);
  // The live entry of p-2 came first: the sync leaves p-2 to the live path.
  expect(await handover.claim('live', [claim({ profileId: 'p-2', id: 'chg_entry2', at: 200 })])).toEqual([200]);
  expect(await handover.claim('sync', [claim({ profileId: 'p-2', id: 'sync_p2', at: 300 })])).toEqual([null]);
  expect(await handover.owners('con_1', ['p-1', 'p-2', 'p-3'])).toEqual(['sync_p1', 'chg_entry2', null]);
});

it('a later transition is sent whoever claimed the profile before', async () => {
  await handover.claim('sync', [claim({ id: 'sync_p1', at: 100 })]);
  expect(await handover.claim('live', [claim({ id: 'chg_exit', valueText: 'false', at: 200 })])).toEqual([200]);
  expect(await handover.claim('live', [claim({ id: 'chg_reentry', valueText: 'true', at: 300 })])).toEqual([300]);
  expect(await handover.owners('con_1', ['p-1'])).toEqual(['chg_reentry']);
});

it('grants the same claim again with its first timestamp (a restarted sync, a redelivered chunk), so the call keeps its body', async () => {
  expect(await handover.claim('sync', [claim({ id: 'sync_p1', at: 100 })])).toEqual([100]);
  expect(await handover.claim('sync', [claim({ id: 'sync_p1', at: 999 })])).toEqual([100]);
  expect(await handover.claim('live', [claim({ profileId: 'p-2', id: 'chg', at: 5 })])).toEqual([5]);
  expect(await handover.claim('live', [claim({ profileId: 'p-2', id: 'chg', at: 5 })])).toEqual([5]);
});

it("a live record the sync's read already held is not sent after the sync's newer value (its changeSeq at most the read's)", async () => {
  // The sync read p-1 at changeSeq 3 (member); records 2 (exit) and 3 (re-entry) are still behind it in the topic.
  expect(await handover.claim('sync', [claim({ id: 'sync_p1', at: 100, seq: 3 })])).toEqual([100]);
  expect(await handover.claim('live', [claim({ id: 'chg_2', valueText: 'false', at: 90, seq: 2 })])).toEqual([null]);
  expect(await handover.claim('live', [claim({ id: 'chg_3', valueText: 'true', at: 95, seq: 3 })])).toEqual([null]);
  // Made after the read: sent.
  expect(await handover.claim('live', [claim({ id: 'chg_4', valueText: 'false', at: 200, seq: 4 })])).toEqual([200]);
  // A record without a changeSeq (made before it existed) follows the value rule alone.
  expect(await handover.claim('live', [claim({ profileId: 'p-2', id: 'chg_x', valueText: 'false', at: 5 })])).toEqual([5]);
});

it('a correction is always granted; claims of one connection never affect another', async () => {
  await handover.claim('live', [claim({ id: 'chg_exit', valueText: 'false', at: 200 })]);
  expect(await handover.claim('correct', [claim({ id: 'fix', valueText: 'false', at: 300 })])).toEqual([300]);
  expect(await handover.claim('sync', [claim({ connectionId: 'con_2', id: 'sync_p1', at: 400 })])).toEqual([400]);
});

it('claims expire after the grace period once the sync is done; until then the connection is active', async () => {
  await handover.claim('sync', [claim({ id: 'sync_p1', at: 100 })]);
  expect(await handover.active(['con_1', 'con_2'])).toEqual([true, false]);
  expect(await redis.pttl(handover.key('con_1'))).toBeGreaterThan(24 * 3600 * 1000);
  await handover.finish('con_1', 60_000);
  const ttl = await redis.pttl(handover.key('con_1'));
  expect(ttl).toBeGreaterThan(0);
  expect(ttl).toBeLessThanOrEqual(60_000);
});
