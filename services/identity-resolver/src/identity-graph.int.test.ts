// The identity graph (the Lua script) against the real Redis.
import {
  DEFAULT_IDENTITY_RULES,
  MAX_IDS_PER_PROFILE,
  compileRules,
  type CompiledIdentityRules,
  type ExternalId,
  type IdentityRules,
} from '@engage/identity';
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { graphViolations, readGraph } from './graph.inspector';
import { IdentityRepository, type ResolveRequest, type ResolveResult } from './identity.repository';
import { accountProfileId, newProfileId } from './resolve.step';

let redis: RedisClient;
let otherRedis: RedisClient;
let repo: IdentityRepository;
let prefix: string;
let msg = 0;
const SPACE = 'spa_1';
const DAY = 24 * 3600 * 1000;
const T0 = Date.parse('2026-01-01T00:00:00Z');

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
  otherRedis = createRedis({ url: testInfrastructure().redisUrl });
});
beforeEach(() => {
  prefix = `${uniqueName('idn')}:`;
  repo = new IdentityRepository({ keyPrefix: prefix, resultTtlSeconds: 3600 }, { redis });
});
afterAll(() => {
  redis.disconnect();
  otherRedis.disconnect();
});

const ids = (...pairs: Array<[string, string]>): ExternalId[] => pairs.map(([type, id]) => ({ type, id }));
const defaults = compileRules(DEFAULT_IDENTITY_RULES);
const withRules = (over: Partial<IdentityRules>) => compileRules({ ...DEFAULT_IDENTITY_RULES, ...over });

interface Opts {
  rules?: CompiledIdentityRules;
  eventKey?: string;
  at?: number;
  account?: string;
}
function request(external: ExternalId[], opts: Opts = {}): ResolveRequest {
  return {
    spaceId: SPACE,
    eventKey: opts.eventKey ?? `evt_${++msg}`,
    ids: external,
    rules: opts.rules ?? defaults,
    accountId: opts.account ? accountProfileId(SPACE, opts.account) : null,
    timestamp: opts.at ?? T0,
  };
}
const resolve = (external: ExternalId[], opts: Opts & { on?: IdentityRepository } = {}): Promise<ResolveResult> =>
  (opts.on ?? repo).resolve(request(external, opts));
const sound = async () => expect(graphViolations(await readGraph(repo.graph, SPACE))).toEqual([]);

describe('identity graph (Lua in real Redis)', () => {
  it('anonymous browsing then identify: the anonymous profile gains the user id; a second anonymous profile merges in', async () => {
    const browsing = await resolve(ids(['anonymous_id', 'a1']));
    expect(browsing.created).toBe(true);
    expect(await resolve(ids(['anonymous_id', 'a1']))).toEqual({
      profileId: browsing.profileId,
      created: false,
      merged: [],
      added: [],
      gained: [],
      dropped: [],
      all: [],
      accountLinked: false,
    });
    const identify = await resolve(ids(['user_id', 'u1'], ['anonymous_id', 'a1']));
    expect(identify).toEqual(
      expect.objectContaining({ profileId: browsing.profileId, created: false, merged: [], added: ids(['user_id', 'u1']) }),
    );

    const otherDevice = await resolve(ids(['email', 'ada@example.com'], ['anonymous_id', 'a2']));
    expect(otherDevice.profileId).not.toBe(browsing.profileId);
    const login = await resolve(ids(['user_id', 'u1'], ['email', 'ada@example.com']));
    expect(login).toEqual(
      expect.objectContaining({
        profileId: browsing.profileId,
        merged: [otherDevice.profileId],
        added: [],
        gained: ids(['anonymous_id', 'a2'], ['email', 'ada@example.com']),
      }),
    );
    expect(login.all.map((x) => `${x.type}:${x.id}`).sort()).toEqual([
      'anonymous_id:a1',
      'anonymous_id:a2',
      'email:ada@example.com',
      'user_id:u1',
    ]);
    // Later events of either id land on the survivor.
    expect((await resolve(ids(['anonymous_id', 'a2']))).profileId).toBe(browsing.profileId);
    await sound();
  });

  it('names a new profile after its space and first id exactly as newProfileId does (multi-byte ids too)', async () => {
    for (const anon of [`plain-${++msg}`, `ünïcødé-\u{1F600}-${++msg}`]) {
      const created = await resolve(ids(['anonymous_id', anon], ['ios.id', `d-${anon}`]));
      expect(created).toEqual(
        expect.objectContaining({ created: true, profileId: newProfileId(SPACE, { type: 'anonymous_id', id: anon }) }),
      );
    }
  });

  it('two people never share a profile through a reused event key: a new profile is named after its id, not the event', async () => {
    // The replay cache answers only events that announced a change; a creation is recomputed, and
    // must not land on the first person's profile because it reuses an id the sender chose.
    const alice = await resolve(ids(['user_id', `alice-${++msg}`]), { eventKey: 'evt_reused' });
    const bob = await resolve(ids(['user_id', `bob-${msg}`]), { eventKey: 'evt_reused' });
    expect(alice.created && bob.created).toBe(true);
    expect(bob.profileId).not.toBe(alice.profileId);
    await sound();
  });

  it('two users sharing a device do not merge when user_id is limited to 1: the device id is dropped, the event lands on the user', async () => {
    const first = await resolve(ids(['user_id', 'u1'], ['ios.id', 'shared-ipad']));
    const second = await resolve(ids(['user_id', 'u2'], ['ios.id', 'shared-ipad']));
    expect(second).toEqual(
      expect.objectContaining({ created: true, merged: [], added: ids(['user_id', 'u2']), dropped: ids(['ios.id', 'shared-ipad']) }),
    );
    expect(second.profileId).not.toBe(first.profileId);
    // u2 is now known: the shared device is dropped again and the event stays on u2's profile.
    const third = await resolve(ids(['user_id', 'u2'], ['ios.id', 'shared-ipad']));
    expect(third).toEqual(expect.objectContaining({ profileId: second.profileId, dropped: ids(['ios.id', 'shared-ipad']) }));
    expect((await resolve(ids(['ios.id', 'shared-ipad']))).profileId).toBe(first.profileId);
    await sound();
  });

  it("Segment's priority example: a new user_id with a known email demotes the email and creates a new profile", async () => {
    const jane = await resolve(ids(['user_id', 'abc123'], ['email', 'jane@example1.com']));
    const other = await resolve(ids(['user_id', 'abc456'], ['email', 'jane@example1.com']));
    expect(other).toEqual(
      expect.objectContaining({ created: true, added: ids(['user_id', 'abc456']), dropped: ids(['email', 'jane@example1.com']) }),
    );
    expect(other.profileId).not.toBe(jane.profileId);
  });

  it('drops the lower-priority conflicting profile and still merges the rest onto the best profile', async () => {
    const u1 = await resolve(ids(['user_id', 'u1']));
    const anon = await resolve(ids(['anonymous_id', 'a7']));
    const u2 = await resolve(ids(['user_id', 'u2'], ['email', 'u2@x.co']));
    const r = await resolve(ids(['user_id', 'u1'], ['email', 'u2@x.co'], ['anonymous_id', 'a7']));
    expect(r).toEqual(expect.objectContaining({ profileId: u1.profileId, merged: [anon.profileId], dropped: ids(['email', 'u2@x.co']) }));
    expect((await resolve(ids(['email', 'u2@x.co']))).profileId).toBe(u2.profileId);
    await sound();
  });

  it('respects per-type limits: a third email stays off the profile', async () => {
    const rules = withRules({ limits: { user_id: { limit: 1, window: 'ever' }, email: { limit: 2, window: 'ever' } } });
    const p = await resolve(ids(['user_id', 'u9'], ['email', 'e1@x.co']), { rules });
    await resolve(ids(['user_id', 'u9'], ['email', 'e2@x.co']), { rules });
    const third = await resolve(ids(['user_id', 'u9'], ['email', 'e3@x.co']), { rules });
    expect(third).toEqual(expect.objectContaining({ profileId: p.profileId, added: [], dropped: ids(['email', 'e3@x.co']) }));
  });

  it('counts windowed limits by when each value was last seen (2 weekly anonymous ids)', async () => {
    const rules = withRules({ limits: { user_id: { limit: 1, window: 'ever' }, anonymous_id: { limit: 2, window: 'weekly' } } });
    const p = await resolve(ids(['user_id', 'w1'], ['anonymous_id', 'old']), { rules, at: T0 });
    await resolve(ids(['user_id', 'w1'], ['anonymous_id', 'recent']), { rules, at: T0 + 5 * DAY });
    // Day 6: both count, a third is one too many.
    expect(await resolve(ids(['user_id', 'w1'], ['anonymous_id', 'third']), { rules, at: T0 + 6 * DAY })).toEqual(
      expect.objectContaining({ dropped: ids(['anonymous_id', 'third']) }),
    );
    // Day 10: 'old' was last seen 10 days ago, out of the window: room for one more.
    expect(await resolve(ids(['user_id', 'w1'], ['anonymous_id', 'third']), { rules, at: T0 + 10 * DAY })).toEqual(
      expect.objectContaining({ profileId: p.profileId, added: ids(['anonymous_id', 'third']), dropped: [] }),
    );
    // Seeing 'recent' again (day 11) slides its window: a fourth does not fit on day 13 (unslid, 'recent' would have expired).
    await resolve(ids(['user_id', 'w1'], ['anonymous_id', 'recent']), { rules, at: T0 + 11 * DAY });
    expect(await resolve(ids(['user_id', 'w1'], ['anonymous_id', 'fourth']), { rules, at: T0 + 13 * DAY })).toEqual(
      expect.objectContaining({ dropped: ids(['anonymous_id', 'fourth']) }),
    );
  });

  it('caps merges per profile', async () => {
    const rules = withRules({ maxMergesPerProfile: 2 });
    const p = await resolve(ids(['email', 'cap@x.co']), { rules });
    for (const a of ['c1', 'c2', 'c3']) await resolve(ids(['anonymous_id', a]), { rules });
    expect((await resolve(ids(['email', 'cap@x.co'], ['anonymous_id', 'c1']), { rules })).merged).toHaveLength(1);
    expect((await resolve(ids(['email', 'cap@x.co'], ['anonymous_id', 'c2']), { rules })).merged).toHaveLength(1);
    expect(await resolve(ids(['email', 'cap@x.co'], ['anonymous_id', 'c3']), { rules })).toEqual(
      expect.objectContaining({ profileId: p.profileId, merged: [], dropped: ids(['anonymous_id', 'c3']) }),
    );
  });

  it('links accounts from group calls once, and a merge carries the merged profile accounts to the survivor', async () => {
    const anon = await resolve(ids(['anonymous_id', 'g1']), { account: 'acme' });
    expect(anon.accountLinked).toBe(true);
    expect((await resolve(ids(['anonymous_id', 'g1']), { account: 'acme' })).accountLinked).toBe(false);
    const user = await resolve(ids(['user_id', 'gu']), { account: 'globex' });
    const merge = await resolve(ids(['user_id', 'gu'], ['anonymous_id', 'g1']));
    expect(merge).toEqual(expect.objectContaining({ profileId: user.profileId, merged: [anon.profileId] }));
    const graph = await readGraph(repo.graph, SPACE);
    expect([...graph.accounts.get(user.profileId)!].sort()).toEqual(
      [accountProfileId(SPACE, 'acme'), accountProfileId(SPACE, 'globex')].sort(),
    );
  });

  it('keeps at most MAX_IDS_PER_PROFILE ids on a profile: new ids past it are dropped, events still land on it', async () => {
    const user = `many-${++msg}`;
    const first = await resolve(ids(['user_id', user]));
    let last: ResolveResult = first;
    for (let batch = 0; batch < 6; batch++) {
      // 20 invented id types per event: per-type limits alone would let the profile grow without end.
      last = await resolve(ids(['user_id', user], ...Array.from({ length: 20 }, (_, i): [string, string] => [`t${batch}_${i}`, 'x'])));
      expect(last.profileId).toBe(first.profileId);
    }
    const graph = await readGraph(repo.graph, SPACE);
    expect(graph.profiles.get(first.profileId)!.size).toBe(MAX_IDS_PER_PROFILE);
    expect(last.dropped).toHaveLength(20);
    await sound();
  });

  it('answers a redelivered event exactly as the first time (restart mid-stream)', async () => {
    await resolve(ids(['anonymous_id', 'x1']));
    const first = await resolve(ids(['user_id', 'ux'], ['anonymous_id', 'x1']), { eventKey: 'evt_replayed' });
    const again = await resolve(ids(['user_id', 'ux'], ['anonymous_id', 'x1']), { eventKey: 'evt_replayed' });
    expect(again).toEqual(first);
    expect(first.added).toEqual(ids(['user_id', 'ux']));
  });

  it('resolves a chunk of one space in order in one call: later events see earlier ones', async () => {
    const results = await repo.resolveAll([
      request(ids(['anonymous_id', 'q1'])),
      request(ids(['user_id', 'qu'], ['anonymous_id', 'q1'])),
      request(ids(['anonymous_id', 'q2'])),
      request(ids(['user_id', 'qu'], ['anonymous_id', 'q2'])),
    ]);
    expect(results.map((r) => r.profileId)).toEqual([
      results[0]!.profileId,
      results[0]!.profileId,
      results[2]!.profileId,
      results[0]!.profileId,
    ]);
    expect(results[3]!.merged).toEqual([results[2]!.profileId]);
  });
});

describe('merge log (p:<pid>:merges)', () => {
  const mergesOf = (pid: string, page = { offset: 0, limit: 100 }) => repo.graph.mergesOf(SPACE, pid, { ...page, maxHops: 64 });

  it('a merge logs the merged profile on the survivor, with the event time and the event that caused it', async () => {
    const anon = await resolve(ids(['anonymous_id', 'ml-a']), { at: T0 });
    const user = await resolve(ids(['user_id', 'ml-u']), { at: T0 + 1000 });
    expect(await mergesOf(user.profileId)).toEqual({ profileId: user.profileId, total: 0, merges: [] });
    const join = await resolve(ids(['user_id', 'ml-u'], ['anonymous_id', 'ml-a']), { at: T0 + DAY, eventKey: 'evt_join' });
    expect(join.merged).toEqual([anon.profileId]);
    const expected = { profileId: user.profileId, total: 1, merges: [{ profileId: anon.profileId, at: T0 + DAY, eventKey: 'evt_join' }] };
    expect(await mergesOf(user.profileId)).toEqual(expected);
    // Read by the old (merged) id: answers for the survivor.
    expect(await mergesOf(anon.profileId)).toEqual(expected);
    // A redelivery of the merging event changes nothing.
    await resolve(ids(['user_id', 'ml-u'], ['anonymous_id', 'ml-a']), { at: T0 + DAY, eventKey: 'evt_join' });
    expect(await mergesOf(user.profileId)).toEqual(expected);
    await sound();
  });

  it('a chain A -> B -> C lists both A and B on C, newest first, and reading by A answers for C', async () => {
    const a = await resolve(ids(['anonymous_id', 'ch-a']));
    const b = await resolve(ids(['email', 'ch@x.co']));
    const c = await resolve(ids(['user_id', 'ch-u']));
    await resolve(ids(['email', 'ch@x.co'], ['anonymous_id', 'ch-a']), { at: T0 + 1, eventKey: 'evt_ab' });
    await resolve(ids(['user_id', 'ch-u'], ['email', 'ch@x.co']), { at: T0 + 2, eventKey: 'evt_bc' });
    const chain = {
      profileId: c.profileId,
      total: 2,
      merges: [
        { profileId: b.profileId, at: T0 + 2, eventKey: 'evt_bc' },
        { profileId: a.profileId, at: T0 + 1, eventKey: 'evt_ab' },
      ],
    };
    expect(await mergesOf(c.profileId)).toEqual(chain);
    expect(await mergesOf(a.profileId)).toEqual(chain);
    // Paged: offset and limit over the same order.
    expect((await mergesOf(c.profileId, { offset: 1, limit: 1 })).merges).toEqual([chain.merges[1]]);
    // The merged profiles' own logs are gone with the rest of them.
    const graph = await readGraph(repo.graph, SPACE);
    expect(graph.aliases.get(a.profileId)).toBe(b.profileId);
    expect((await repo.graph.mergesOf(SPACE, b.profileId, { offset: 0, limit: 10, maxHops: 0 })).total).toBe(0);
    await sound();
  });

  it('stays within the merge cap however many profiles a sender tries to join, chains included', async () => {
    const rules = withRules({ maxMergesPerProfile: 3 });
    const survivor = await resolve(ids(['user_id', 'cap-u']), { rules });
    // Two profiles already merged into one another (a chain of 1), then single profiles, one event each.
    await resolve(ids(['email', 'cap-e@x.co']), { rules });
    await resolve(ids(['anonymous_id', 'cap-0']), { rules });
    expect((await resolve(ids(['email', 'cap-e@x.co'], ['anonymous_id', 'cap-0']), { rules })).merged).toHaveLength(1);
    for (let i = 1; i <= 5; i++) await resolve(ids(['anonymous_id', `cap-${i}`]), { rules });
    const joins = [await resolve(ids(['user_id', 'cap-u'], ['email', 'cap-e@x.co']), { rules })];
    for (let i = 1; i <= 5; i++) joins.push(await resolve(ids(['user_id', 'cap-u'], ['anonymous_id', `cap-${i}`]), { rules }));
    expect(joins.map((j) => j.merged.length)).toEqual([1, 1, 0, 0, 0, 0]);
    const log = await mergesOf(survivor.profileId);
    expect(log.total).toBe(3);
    expect(log.merges).toHaveLength(3);
    await sound();
  });
});

describe('identity graph under concurrent writers', () => {
  it('two replicas resolving the same people at once: one live profile per person, every merge applied exactly once', async () => {
    const second = new IdentityRepository({ keyPrefix: prefix, resultTtlSeconds: 3600 }, { redis: otherRedis });
    const people = Array.from({ length: 25 }, (_, p) => ({
      user: `cu${p}`,
      email: `c${p}@x.co`,
      anon: [`ca${p}-0`, `ca${p}-1`, `ca${p}-2`],
    }));
    // Every kind of call of each person, shuffled: anonymous browsing, identify, email-only sign-ups, logins.
    const events = people.flatMap((p) => [
      ...p.anon.map((a) => ids(['anonymous_id', a])),
      ...p.anon.map((a) => ids(['email', p.email], ['anonymous_id', a])),
      ids(['user_id', p.user], ['anonymous_id', p.anon[0]!]),
      ids(['user_id', p.user], ['email', p.email]),
    ]);
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = events.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [events[i], events[j]] = [events[j]!, events[i]!];
    }
    // Chunks of 1-8 events alternate between the replicas, all in flight at once.
    const calls: Array<Promise<ResolveResult[]>> = [];
    for (let i = 0, c = 0; i < events.length; c++) {
      const size = 1 + Math.floor(random() * 8);
      calls.push((c % 2 ? second : repo).resolveAll(events.slice(i, i + size).map((e) => request(e))));
      i += size;
    }
    const results = (await Promise.all(calls)).flat();

    const graph = await readGraph(repo.graph, SPACE);
    expect(graphViolations(graph)).toEqual([]);
    expect(graph.profiles.size).toBe(people.length);
    for (const p of people) {
      const profile = graph.ids.get(`user_id\u001f${p.user}`);
      for (const id of [`email\u001f${p.email}`, ...p.anon.map((a) => `anonymous_id\u001f${a}`)]) expect(graph.ids.get(id)).toBe(profile);
    }
    // Never a lost merge: every profile created is either live or was merged exactly once.
    const created = results.filter((r) => r.created).map((r) => r.profileId);
    const merged = results.flatMap((r) => r.merged);
    expect(new Set(merged).size).toBe(merged.length);
    expect([...graph.profiles.keys(), ...merged].sort()).toEqual([...created].sort());
  });
});
