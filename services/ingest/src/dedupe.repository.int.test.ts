// The messageId dedupe against the real Redis: event keys name the flush that
// claimed them, and the flush's own state ("p" pending, "d" confirmed, gone)
// decides what a later claim of the same messageId finds.
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { DedupeRepository, type DedupeKey } from './dedupe.repository';

let redis: RedisClient;
let prefix: string;
let dedupe: DedupeRepository;
const key = (messageId: string, sourceId = 'src_1'): DedupeKey => ({ sourceId, messageId });

beforeAll(() => (redis = createRedis({ url: testInfrastructure().redisUrl })));
beforeEach(() => {
  prefix = `${uniqueName('dedupe')}:`;
  dedupe = new DedupeRepository({ keyPrefix: prefix, ttlSeconds: 600, pendingTtlMs: 30_000 }, { redis });
});
afterAll(() => redis.disconnect());

const keysUnder = async (pattern: string) => (await redis.keys(`${prefix}${pattern}`)).sort();

it('a claimed messageId is in flight until its flush is confirmed, then a duplicate; repeats within one claim are duplicates', async () => {
  const first = await dedupe.claim([key('m1'), key('m2'), key('m1')]);
  expect(first.results).toEqual(['new', 'new', 'duplicate']);
  expect((await dedupe.claim([key('m1'), key('m3')])).results).toEqual(['in_flight', 'new']);

  await dedupe.confirm(first);
  expect((await dedupe.claim([key('m1'), key('m2')])).results).toEqual(['duplicate', 'duplicate']);
  // m3's flush was never confirmed: still in flight.
  expect((await dedupe.claim([key('m3')])).results).toEqual(['in_flight']);
});

it('confirms a flush with one write per source, however many events it won', async () => {
  const claim = await dedupe.claim([...Array.from({ length: 50 }, (_, i) => key(`a${i}`)), key('b1', 'src_2')]);
  expect(claim.sources.sort()).toEqual(['src_1', 'src_2']);
  await dedupe.confirm(claim);
  // One flush key per source, each confirmed, with the event keys' TTL.
  const flushKeys = await keysUnder('ingest:flush:*');
  expect(flushKeys).toEqual([`${prefix}ingest:flush:{src_1}:${claim.token}`, `${prefix}ingest:flush:{src_2}:${claim.token}`]);
  expect(await redis.mget(flushKeys)).toEqual(['d', 'd']);
  expect(await redis.ttl(flushKeys[0]!)).toBeGreaterThan(590);
  // The event keys name the flush (and the receive time they were claimed with: 0, unknown here) and keep the full dedupe TTL.
  expect(await redis.get(`${prefix}ingest:dedupe:{src_1}:a7`)).toBe(`${claim.token}|0`);
  expect(await redis.ttl(`${prefix}ingest:dedupe:{src_1}:a7`)).toBeGreaterThan(590);
  // A claim that won nothing leaves no flush state behind.
  const repeat = await dedupe.claim([key('a1')]);
  expect(repeat).toEqual(expect.objectContaining({ results: ['duplicate'], sources: [] }));
  await dedupe.confirm(repeat);
  expect(await keysUnder('ingest:flush:*')).toEqual(flushKeys);
});

it("a released flush frees its messageIds at once; the next claim takes them over, with the failed write's receive time, and can be confirmed", async () => {
  const failed = await dedupe.claim([
    { ...key('r1'), receivedAt: 1111 },
    { ...key('r2'), receivedAt: 2222 },
  ]);
  // Its send failed (it may still have landed): the retry must be the same event, received at the same time.
  await dedupe.release(failed);
  const retry = await dedupe.claim([
    { ...key('r1'), receivedAt: 5555 },
    { ...key('r2'), receivedAt: 5555 },
    { ...key('r3'), receivedAt: 5555 },
  ]);
  expect(retry.results).toEqual(['new', 'new', 'new']);
  expect(retry.receivedAt).toEqual([1111, 2222, undefined]);
  expect(await redis.get(`${prefix}ingest:dedupe:{src_1}:r1`)).toBe(`${retry.token}|1111`);
  await dedupe.confirm(retry);
  expect((await dedupe.claim([key('r1')])).results).toEqual(['duplicate']);
});

it('a flush whose process died (or outlived its pending state) is taken over once its pending state expires, with its receive time', async () => {
  const crashed = new DedupeRepository({ keyPrefix: prefix, ttlSeconds: 600, pendingTtlMs: 200 }, { redis });
  await crashed.claim([{ ...key('orphan'), receivedAt: 4242 }]);
  expect((await dedupe.claim([key('orphan')])).results).toEqual(['in_flight']);
  const taken = await waitFor(
    async () => {
      const claim = await dedupe.claim([{ ...key('orphan'), receivedAt: 9999 }]);
      return claim.results[0] === 'new' ? claim : null;
    },
    { timeoutMs: 5000, description: 'pending state expired' },
  );
  // Its write may have landed (a send still waiting on a stopped broker): the same event, received at the same time.
  expect(taken.receivedAt).toEqual([4242]);
  await dedupe.confirm(taken);
  expect((await dedupe.claim([key('orphan')])).results).toEqual(['duplicate']);
});

it('understands keys of the earlier layout, which held "p" or "d" themselves', async () => {
  await redis.set(`${prefix}ingest:dedupe:{src_1}:old-done`, 'd', 'EX', 600);
  await redis.set(`${prefix}ingest:dedupe:{src_1}:old-pending`, 'p', 'PX', 30_000);
  expect((await dedupe.claim([key('old-done'), key('old-pending'), key('fresh')])).results).toEqual(['duplicate', 'in_flight', 'new']);
});
