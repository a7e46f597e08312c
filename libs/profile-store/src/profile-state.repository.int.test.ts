// The stored layout of a profile against the real Redis: the hot document
// without the history, the history appended and bounded, redeliveries
// recognised by messageId without reading the history, and documents of the
// earlier layout (history inline) still read whole.
import type { StoredEvent } from '@engage/engine';
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { emptyProfile, ProfileStateRepository } from './profile-state.repository';
import { unpackState } from './state-codec';

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
  const hot = unpackState((await redis.getBuffer(repo.stateKey(ref)))!);
  expect(hot).toMatchObject({ $: 3 });
  expect('events' in hot).toBe(false);

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
  expect(unpackState((await redis.getBuffer(repo.stateKey(ref)))!)).not.toHaveProperty('events');
  expect((await repo.load([ref]))[0]!.events.map((e) => e.messageId)).toEqual(['m-1', 'm-2']);
});

it('stores computations by per-space slots another process learns from Redis, and slots never move', async () => {
  const withStates = (ids: string[]) => ({
    ...emptyProfile(ref),
    incremental: { tok: 'tok', h: 5, n: ids.length, c: Object.fromEntries(ids.map((id, i) => [id, { v: 1, s: [{ n: i }] }])) },
    values: Object.fromEntries(ids.map((id, i) => [id, { value: i, version: 1 }])),
  });
  const a = 'tra_aaaaaaaaaaaaaaaaaaaaaaaaaaa';
  const b = 'tra_bbbbbbbbbbbbbbbbbbbbbbbbbbb';
  await repo.save([{ profile: withStates([a]), wakeAt: null }], []);
  // Another process (its own slot cache) adds a computation: it gets the next slot, `a` keeps its own.
  const other = new ProfileStateRepository({ keyPrefix: prefix, maxEvents: 3 }, { redis });
  const [loaded] = await other.load([ref]);
  expect(loaded!.incremental!.c[a]).toEqual({ v: 1, s: [{ n: 0 }] });
  await other.save([{ profile: withStates([a, b]), wakeAt: null }], []);
  const stored = (await redis.getBuffer(repo.stateKey(ref)))!;
  expect(stored.includes(a)).toBe(false);
  expect(unpackState(stored)).toHaveProperty('c', [
    [1, 1, [{ n: 0 }], 0],
    [2, 1, [{ n: 1 }], 1],
  ]);
  // The first process meets slot 2 for the first time: it reads the table again.
  const [again] = await repo.load([ref]);
  expect(again!.values).toEqual({ [a]: { value: 0, version: 1 }, [b]: { value: 1, version: 1 } });
  expect(await redis.hgetall(`${prefix}rt:slots:{${ref.spaceId}}`)).toEqual({ [a]: '1', [b]: '2', '#next': '2' });
});

describe('the hot-state cache (realtime loads)', () => {
  let cachedRepo: ProfileStateRepository;
  beforeEach(() => {
    cachedRepo = new ProfileStateRepository({ keyPrefix: prefix, maxEvents: 3, hotStateCacheSize: 2 }, { redis });
  });
  const loadCached = async (repository = cachedRepo) => (await repository.loadForEvents([ref], [[]], { cached: true })).profiles[0]!;

  it('hands back the object it saved while nobody else wrote, with the history appended as usual', async () => {
    const fresh = await loadCached();
    fresh.incremental = { tok: 'tok', h: 0, c: {} };
    fresh.events.push(event(1));
    fresh.traits.plan = 'pro';
    await cachedRepo.save([{ profile: fresh, wakeAt: null }], []);
    const again = await loadCached();
    expect(again).toBe(fresh);
    expect(again.events).toEqual([]); // back to the realtime shape: the history is stored
    again.events.push(event(2));
    await cachedRepo.save([{ profile: again, wakeAt: null }], []);
    const [whole] = await repo.load([ref]);
    expect(whole!.events.map((e) => e.messageId)).toEqual(['m-1', 'm-2']);
    expect(whole!.traits).toEqual({ plan: 'pro' });
    expect(cachedRepo.cacheStats()).toMatchObject({ hits: 1, misses: 1 });
  });

  it('reads the stored document when another writer saved since, and never reuses a copy a failed chunk changed', async () => {
    const mine = await loadCached();
    mine.traits.plan = 'free';
    await cachedRepo.save([{ profile: mine, wakeAt: null }], []);
    // Another writer (a merge, the expiry job, another replica) saves the profile.
    const [other] = await repo.load([ref]);
    other!.traits.plan = 'enterprise';
    await repo.save([{ profile: other!, wakeAt: null }], []);
    const afterOther = await loadCached();
    expect(afterOther).not.toBe(mine);
    expect(afterOther.traits).toEqual({ plan: 'enterprise' });
    // Changed in memory, never saved (the chunk failed): the next load reads Redis again.
    afterOther.traits.plan = 'lost';
    const afterFailure = await loadCached();
    expect(afterFailure).not.toBe(afterOther);
    expect(afterFailure.traits).toEqual({ plan: 'enterprise' });
  });

  it('forgets deleted profiles, and keeps the identifiers key right while skipping unchanged rewrites', async () => {
    const p = await loadCached();
    p.externalIds.push({ type: 'email', id: 'a@b.co' });
    await cachedRepo.save([{ profile: p, wakeAt: null }], []);
    expect(await redis.get(repo.idsKey(ref))).toBe('{"email":["a@b.co"]}');
    const q = await loadCached();
    await redis.set(repo.idsKey(ref), 'sentinel'); // not rewritten while unchanged...
    await cachedRepo.save([{ profile: q, wakeAt: null }], []);
    expect(await redis.get(repo.idsKey(ref))).toBe('sentinel');
    const r = await loadCached();
    r.externalIds.push({ type: 'user_id', id: 'u1' }); // ...rewritten once changed
    await cachedRepo.save([{ profile: r, wakeAt: null }], []);
    expect(await redis.get(repo.idsKey(ref))).toBe('{"email":["a@b.co"],"user_id":["u1"]}');
    await cachedRepo.save([], [], [ref]);
    const gone = await loadCached();
    expect(gone).not.toBe(r);
    expect(gone.externalIds).toEqual([]);
  });

  it('writes a wake-up only when it moves: set, kept while unchanged, removed when it goes', async () => {
    const member = `${ref.spaceId}|${ref.profileId}`;
    const wakeKey = repo.wakeKeyOf(ref);
    const p = await loadCached();
    await cachedRepo.save([{ profile: p, wakeAt: 5_000 }], []);
    expect(await redis.zscore(wakeKey, member)).toBe('5000');
    // A scheduler's claim moves the score without a save; an unchanged wake-up is not written over it.
    await redis.zadd(wakeKey, 9_000, member);
    await cachedRepo.save([{ profile: await loadCached(), wakeAt: 5_000 }], []);
    expect(await redis.zscore(wakeKey, member)).toBe('9000');
    await cachedRepo.save([{ profile: await loadCached(), wakeAt: 6_000 }], []);
    expect(await redis.zscore(wakeKey, member)).toBe('6000');
    await cachedRepo.save([{ profile: await loadCached(), wakeAt: null }], []);
    expect(await redis.zscore(wakeKey, member)).toBeNull();
    // A copy read from Redis (another writer saved) does not know the stored wake-up: written again.
    const [other] = await repo.load([ref]);
    await repo.save([{ profile: other!, wakeAt: 7_000 }], []);
    await redis.zadd(wakeKey, 9_000, member);
    await cachedRepo.save([{ profile: await loadCached(), wakeAt: 7_000 }], []);
    expect(await redis.zscore(wakeKey, member)).toBe('7000');
    await redis.zadd(wakeKey, 9_000, member);
    const reread = await loadCached();
    expect(cachedRepo.cacheStats().hits).toBeGreaterThan(0);
    await cachedRepo.save([{ profile: reread, wakeAt: 7_000 }], []);
    expect(await redis.zscore(wakeKey, member)).toBe('9000'); // the cached copy saved 7000 itself: unchanged, not written
  });

  it('keeps at most hotStateCacheSize profiles, least recently saved out first', async () => {
    const refs = ['pro_a', 'pro_b', 'pro_c'].map((profileId) => ({ spaceId: 'spa_1', profileId }));
    const { profiles } = await cachedRepo.loadForEvents(refs, [[], [], []], { cached: true });
    for (const p of profiles) await cachedRepo.save([{ profile: p, wakeAt: null }], []);
    expect(cachedRepo.cacheStats().size).toBe(2);
    const again = (await cachedRepo.loadForEvents(refs, [[], [], []], { cached: true })).profiles;
    expect(again.map((p, i) => p === profiles[i])).toEqual([false, true, true]);
  });
});

describe('profile write locks (withLocks)', () => {
  const refs = [ref, { spaceId: 'spa_1', profileId: 'pro_2' }];

  it('holds every lock of the chunk for one owner while fn runs, and releases them after', async () => {
    const seen = await repo.withLocks(refs, async () => Promise.all(refs.map((r) => redis.get(repo.lockKey(r)))));
    expect(seen[0]).toBeTruthy();
    expect(seen[1]).toBe(seen[0]);
    expect(await Promise.all(refs.map((r) => redis.exists(repo.lockKey(r))))).toEqual([0, 0]);
  });

  it("takes none while another owner holds one (all or none), and never releases the other owner's lock", async () => {
    await redis.set(repo.lockKey(refs[1]!), 'other', 'PX', 10_000);
    await expect(repo.withLocks(refs, async () => 'ran', { waitMs: 100 })).rejects.toMatchObject({ retriable: true });
    expect(await redis.exists(repo.lockKey(refs[0]!))).toBe(0);
    expect(await redis.get(repo.lockKey(refs[1]!))).toBe('other');
    await redis.del(repo.lockKey(refs[1]!));
    expect(await repo.withLocks(refs, async () => 'ran')).toBe('ran');
  });
});
