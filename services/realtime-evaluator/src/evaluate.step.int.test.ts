// EvaluateStep and AccountStep with a committer that can die between the
// users' save and the account's, against the real Redis (states, locks).
import { compileComputation, nextChangeAt, parseQuery, type CompiledComputation } from '@engage/engine';
import type { ConsumedMessage } from '@engage/kafka';
import {
  ProfileStateRepository,
  WriteBehindProfiles,
  toChangeRecord,
  type ChangeCommitter,
  type ComputationsRegistry,
  type PendingChange,
  type StoredProfile,
} from '@engage/profile-store';
import { createRedis, lockOwner, RedisLock, type RedisClient } from '@engage/redis';
import type { ComputationChange, IdentityChange, ResolvedEvent } from '@engage/schemas';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { AccountStep } from './account.step';
import { EvaluateStep } from './evaluate.step';
import { IdentityStep } from './identity.step';

const T0 = Date.parse('2026-06-01T00:00:00Z');
let redis: RedisClient;
beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
afterAll(() => redis.quit());

const compile = (id: string, key: string, query: string, type: 'users' | 'accounts') =>
  compileComputation(
    { id, key, class: 'audience', ast: parseQuery(query, { type }), countsEventsFrom: 0, definitionVersion: 1 },
    new Set([key]),
  );

function registry(ordered: CompiledComputation[], accounts: CompiledComputation[]): ComputationsRegistry {
  const byId = new Map([...ordered, ...accounts].map((c) => [c.id, { compiled: c, config: { options: { computeMode: 'realtime' } } }]));
  return { forSpace: () => ({ ordered, accounts, byId }) } as unknown as ComputationsRegistry;
}

/** Records what it "produces" (profile, key, value); dies once, after producing, when `dieOn` says so. */
function committer(profiles: ProfileStateRepository, dieOn: (touched: StoredProfile[]) => boolean) {
  const produced: Array<{ profile: string; key: string; value: unknown; ids?: string[] }> = [];
  const records: ComputationChange[] = [];
  let died = false;
  const c = {
    async commit(touched: Array<{ profile: StoredProfile; ordered: CompiledComputation[] }>, pending: PendingChange[]) {
      for (const p of pending) {
        const r = toChangeRecord(p.change, p.profile, {
          reason: p.reason,
          occurredAt: p.occurredAt,
          emittedAt: 0,
          cause: p.cause,
          identity: p.identity,
        });
        records.push(r);
        produced.push({
          profile: r.profile_id,
          key: r.computation_key,
          value: r.value,
          ...(r.level === 'account' ? { ids: r.external_ids.map((x) => `${x.type}:${x.id}`) } : {}),
        });
      }
      if (!died && dieOn(touched.map((t) => t.profile))) {
        died = true;
        throw new Error('killed after producing');
      }
      await profiles.save(
        touched.map(({ profile, ordered }) => ({ profile, wakeAt: nextChangeAt(profile, ordered, T0) })),
        [],
      );
      return [];
    },
  } as unknown as ChangeCommitter;
  return { committer: c, produced, records };
}

let offset = 0;
function message(over: Partial<ResolvedEvent>): ConsumedMessage<ResolvedEvent> {
  const value: ResolvedEvent = {
    profile_id: 'pro_u',
    account_id: null,
    resolved_at: T0,
    message_id: `m${++offset}`,
    type: 'track',
    space_id: 'spa_acc',
    source_id: 'src',
    user_id: 'u',
    anonymous_id: null,
    group_id: null,
    previous_id: null,
    event: null,
    name: null,
    timestamp: T0 - 60_000 + offset,
    sent_at: null,
    received_at: T0,
    properties_json: '{}',
    traits_json: '{}',
    context_json: '{}',
    integrations_json: '{}',
    external_ids: [],
    ...over,
  };
  return { topic: 't', partition: 0, offset: String(offset), key: value.profile_id, timestamp: T0, headers: {}, value, raw: {} as never };
}

describe('EvaluateStep', () => {
  it('a process killed after the users were saved but before their account: the redelivered chunk does the account work', async () => {
    const profiles = new ProfileStateRepository({ keyPrefix: `${uniqueName('evalstep')}:` }, { redis });
    const buyers = compile('aud_buyers', 'buyers', "event('Order Completed').count() >= 1", 'users');
    const accountsWithBuyers = compile('aud_acc', 'accounts_with_buyers', "ANY event('Order Completed').count() >= 1", 'accounts');
    const reg = registry([buyers], [accountsWithBuyers]);
    // The account's commit (a profile with users) dies once.
    const { committer: c, produced } = committer(profiles, (touched) => touched.some((p) => p.profileId.startsWith('acc_')));
    const accounts = new AccountStep({ profiles, registry: reg, committer: c, now: () => T0 });
    const step = new EvaluateStep({ maxEventsPerProfile: 200 }, { profiles, registry: reg, committer: c, accounts, now: () => T0 });

    const chunk = [
      message({ type: 'group', group_id: 'acme', account_id: 'acc_acme', traits_json: '{"name":"Acme"}' }),
      message({ event: 'Order Completed' }),
    ];
    await expect(step.handle(chunk)).rejects.toThrow('killed after producing');
    expect(produced).toEqual([
      { profile: 'pro_u', key: 'buyers', value: true },
      { profile: 'acc_acme', key: 'accounts_with_buyers', value: true, ids: ['group_id:acme'] },
    ]);
    // Redelivered: the user's events are already applied; the account's entry is made and saved.
    await step.handle(chunk);
    expect(produced.slice(2)).toEqual([{ profile: 'acc_acme', key: 'accounts_with_buyers', value: true, ids: ['group_id:acme'] }]);
    const [account] = await profiles.load([{ spaceId: 'spa_acc', profileId: 'acc_acme' }]);
    expect(account!.values.aud_acc?.value).toBe(true);
    expect(account!.users).toEqual(['pro_u']);
    // A third delivery changes nothing.
    await step.handle(chunk);
    expect(produced).toHaveLength(3);
  });

  it("group calls set the account's traits by event time: an older call processed later does not overwrite them", async () => {
    const profiles = new ProfileStateRepository({ keyPrefix: `${uniqueName('evalstep')}:` }, { redis });
    const reg = registry([], [compile('aud_acc', 'accounts_with_buyers', "ANY event('Order Completed').count() >= 1", 'accounts')]);
    const { committer: c } = committer(profiles, () => false);
    const accounts = new AccountStep({ profiles, registry: reg, committer: c, now: () => T0 });
    const step = new EvaluateStep({ maxEventsPerProfile: 200 }, { profiles, registry: reg, committer: c, accounts, now: () => T0 });
    const group = (timestamp: number, traits: Record<string, unknown>) =>
      message({ type: 'group', group_id: 'acme', account_id: 'acc_time', timestamp, traits_json: JSON.stringify(traits) });
    await step.handle([group(T0 - 1_000, { plan: 'enterprise', name: 'Acme' })]);
    // Sent earlier, processed later (another user's partition): its plan is older than the stored one.
    await step.handle([group(T0 - 5_000, { plan: 'trial', employees: 40 })]);
    const [account] = await profiles.load([{ spaceId: 'spa_acc', profileId: 'acc_time' }]);
    expect(account!.traits).toEqual({ plan: 'enterprise', name: 'Acme', employees: 40 });
    // A newer call still does.
    await step.handle([group(T0, { plan: 'growth' })]);
    const [again] = await profiles.load([{ spaceId: 'spa_acc', profileId: 'acc_time' }]);
    expect(again!.traits.plan).toBe('growth');
  });

  it("an account linked by the resolver's account_link before the group call's own event carries its group_id", async () => {
    const profiles = new ProfileStateRepository({ keyPrefix: `${uniqueName('evalstep')}:` }, { redis });
    const buyers = compile('aud_buyers', 'buyers', "event('Order Completed').count() >= 1", 'users');
    const accountsWithBuyers = compile('aud_acc', 'accounts_with_buyers', "ANY event('Order Completed').count() >= 1", 'accounts');
    const reg = registry([buyers], [accountsWithBuyers]);
    const { committer: c, produced } = committer(profiles, () => false);
    const accounts = new AccountStep({ profiles, registry: reg, committer: c, now: () => T0 });
    const events = new EvaluateStep({ maxEventsPerProfile: 200 }, { profiles, registry: reg, committer: c, accounts, now: () => T0 });
    const identity = new IdentityStep({ maxEventsPerProfile: 200 }, { profiles, registry: reg, committer: c, accounts, now: () => T0 });
    await events.handle([message({ profile_id: 'pro_v', user_id: 'v', event: 'Order Completed' })]);
    // engage.identity.changes and engage.events.resolved are different topics: the link comes first.
    await identity.handle([
      {
        ...message({}),
        value: {
          change_id: 'idc_link',
          kind: 'account_link',
          space_id: 'spa_acc',
          profile_id: 'pro_v',
          merged_profile_ids: [],
          external_ids: [{ type: 'user_id', id: 'v' }],
          added_external_ids: [{ type: 'group_id', id: 'globex' }],
          account_id: 'acc_globex',
          occurred_at: T0,
          emitted_at: T0,
        },
      } as never,
    ]);
    expect(produced).toEqual([
      { profile: 'pro_v', key: 'buyers', value: true },
      { profile: 'acc_globex', key: 'accounts_with_buyers', value: true, ids: ['group_id:globex'] },
    ]);
  });
});

describe('re-sync on a new identifier', () => {
  const buyers = compile('aud_buyers', 'buyers', "event('Order Completed').count() >= 1", 'users');
  const repeat = compile('aud_repeat', 'repeat_buyers', "event('Order Completed').count() >= 2", 'users');
  const reg = registry([buyers, repeat], []);
  function steps() {
    const profiles = new ProfileStateRepository({ keyPrefix: `${uniqueName('resync')}:` }, { redis });
    const { committer: c, records } = committer(profiles, () => false);
    const accounts = new AccountStep({ profiles, registry: reg, committer: c, now: () => T0 });
    const events = new EvaluateStep({ maxEventsPerProfile: 200 }, { profiles, registry: reg, committer: c, accounts, now: () => T0 });
    const identity = new IdentityStep({ maxEventsPerProfile: 200 }, { profiles, registry: reg, committer: c, accounts, now: () => T0 });
    return { events, identity, records };
  }
  /** What a destination is told, in order: reason, key, value, and who (user id, anonymous id, external ids). */
  const told = (records: ComputationChange[]) =>
    records.map((r) => [
      r.reason,
      r.computation_key,
      r.value,
      r.user_id,
      r.anonymous_id,
      r.external_ids.map((x) => `${x.type}:${x.id}`).join(','),
      r.change_id,
    ]);
  const journey = () => [
    message({ profile_id: 'pro_anon', user_id: null, anonymous_id: 'anon-1', event: 'Order Completed' }),
    message({ profile_id: 'pro_anon', user_id: 'ua', anonymous_id: 'anon-1', type: 'identify', traits_json: '{}' }),
    message({ profile_id: 'pro_anon', user_id: 'ua', anonymous_id: 'anon-1', event: 'Order Completed' }),
  ];

  it('an identify in the middle of a chunk: earlier changes keep the anonymous id, the current value is re-sent to the new userId, in order', async () => {
    const oneChunk = steps();
    await oneChunk.events.handle(journey());
    const expected = [
      ['realtime', 'buyers', true, null, 'anon-1', 'anonymous_id:anon-1'],
      ['resync', 'buyers', true, 'ua', 'anon-1', 'user_id:ua'],
      ['realtime', 'repeat_buyers', true, 'ua', 'anon-1', 'anonymous_id:anon-1,user_id:ua'],
    ];
    expect(told(oneChunk.records).map((r) => r.slice(0, 6))).toEqual(expected);
    // The same events (the same message ids) one chunk each: the same records, the same change ids (chunking decides nothing).
    offset -= 3;
    const oneByOne = steps();
    for (const m of journey()) await oneByOne.events.handle([m]);
    expect(told(oneByOne.records)).toEqual(told(oneChunk.records));
  });

  it('the new ids reach the evaluator on engage.identity.changes before the identify itself: one re-sync, from whichever comes first', async () => {
    const { events, identity, records } = steps();
    const [anonOrder, identify] = journey();
    await events.handle([anonOrder!]);
    const added: IdentityChange = {
      change_id: 'idc_added',
      kind: 'external_id_added',
      space_id: 'spa_acc',
      profile_id: 'pro_anon',
      merged_profile_ids: [],
      external_ids: [
        { type: 'anonymous_id', id: 'anon-1' },
        { type: 'user_id', id: 'ua' },
      ],
      added_external_ids: [{ type: 'user_id', id: 'ua' }],
      account_id: null,
      occurred_at: T0,
      emitted_at: T0,
    };
    await identity.handle([{ ...message({}), value: added } as never]);
    await events.handle([identify!]);
    // Redelivered: nothing new.
    await identity.handle([{ ...message({}), value: added } as never]);
    expect(told(records).map((r) => r.slice(0, 6))).toEqual([
      ['realtime', 'buyers', true, null, 'anon-1', 'anonymous_id:anon-1'],
      ['resync', 'buyers', true, 'ua', 'anon-1', 'user_id:ua'],
    ]);
  });

  it('a profile gaining ids while in no audience re-sends nothing', async () => {
    const { events, records } = steps();
    await events.handle([
      message({ profile_id: 'pro_new', user_id: null, anonymous_id: 'anon-2', type: 'page' }),
      message({ profile_id: 'pro_new', user_id: 'ub', anonymous_id: 'anon-2', type: 'identify', traits_json: '{"email":"B@x.co"}' }),
    ]);
    expect(records).toEqual([]);
  });
});

describe('write-behind (EVALUATOR_FLUSH_MS)', () => {
  const count = compileComputation(
    {
      id: 'trt_orders',
      key: 'orders',
      class: 'trait',
      ast: parseQuery("event('Order Completed').count()", { type: 'trait' }),
      countsEventsFrom: 0,
      definitionVersion: 1,
    },
    new Set(['orders']),
  );
  const repeat = compile('aud_repeat', 'repeat_buyers', "event('Order Completed').count() >= 2", 'users');
  const reg = registry([count, repeat], []);
  // NOTE: stopped after each test, passed or failed: a test that fails while a profile is held would
  // leave its 60 s flush timer (and then the flush's retries against the closed client) keeping jest alive.
  const started: WriteBehindProfiles[] = [];
  afterEach(() => {
    for (const held of started.splice(0)) held.stop();
  });
  /** A committer whose produce() records the change records and fails once when `failNext` is set. */
  function setup() {
    const profiles = new ProfileStateRepository({ keyPrefix: `${uniqueName('wb')}:`, hotStateCacheSize: 100 }, { redis });
    const records: ComputationChange[] = [];
    const control = { failNext: false };
    const c = {
      async produce(pending: PendingChange[]) {
        for (const p of pending)
          records.push(toChangeRecord(p.change, p.profile, { reason: p.reason, occurredAt: p.occurredAt, emittedAt: 0, cause: p.cause }));
        if (control.failNext) {
          control.failNext = false;
          throw new Error('broker went away mid-send');
        }
        return { records: [], memberships: [] };
      },
    } as unknown as ChangeCommitter;
    // A flush only when asked (a long interval): the test decides when the state is saved.
    const held = new WriteBehindProfiles({ flushMs: 60_000 }, { profiles });
    started.push(held);
    const accounts = new AccountStep({ profiles, registry: reg, committer: c, now: () => T0 });
    const step = new EvaluateStep(
      { maxEventsPerProfile: 200 },
      { profiles, registry: reg, committer: c, accounts, writeBehind: held, now: () => T0 },
    );
    return { profiles, held, step, records, control };
  }
  const ref = { spaceId: 'spa_acc', profileId: 'pro_wb' };
  const order = () => message({ profile_id: 'pro_wb', user_id: 'wb', event: 'Order Completed' });
  const told = (records: ComputationChange[]) => records.map((r) => [r.computation_key, r.value, r.change_id]);

  it('changes go out with each chunk; the state is saved once, at the flush, and durable() resolves after it', async () => {
    const { profiles, held, step, records } = setup();
    await step.handle([order()]);
    await step.handle([order()]);
    expect(told(records).map((r) => r.slice(0, 2))).toEqual([
      ['orders', 1],
      ['orders', 2],
      ['repeat_buyers', true],
    ]);
    // Not saved yet: held, and its lock taken by this process.
    expect(await redis.exists(profiles.stateKey(ref))).toBe(0);
    expect(await redis.exists(profiles.lockKey(ref))).toBe(1);
    const durable = held.durable();
    await held.flush();
    await durable;
    const [stored] = await profiles.load([ref]);
    expect(stored!.values.trt_orders?.value).toBe(2);
    expect(stored!.events).toHaveLength(2);
    expect(await redis.exists(profiles.lockKey(ref))).toBe(0);
    expect(held.size).toBe(0);
  });

  it('a chunk that fails after changing a held profile leaves it as it was: the retry sends the same changes, counted once', async () => {
    const { profiles, held, step, records, control } = setup();
    await step.handle([order()]);
    const second = [order()];
    control.failNext = true;
    await expect(step.handle(second)).rejects.toThrow('broker went away');
    const failed = told(records.splice(1));
    await step.handle(second);
    // The same records under the same change ids (dispatchers drop the duplicates), and the count is 2, not 3.
    expect(told(records.slice(1))).toEqual(failed);
    expect(failed.map((r) => r.slice(0, 2))).toEqual([
      ['orders', 2],
      ['repeat_buyers', true],
    ]);
    await held.flush();
    const [stored] = await profiles.load([ref]);
    expect(stored!.values.trt_orders?.value).toBe(2);
    expect(stored!.events).toHaveLength(2);
    // Redelivered after the flush: already applied (the stored :seen), nothing new.
    await step.handle(second);
    expect(records).toHaveLength(3);
  });

  it('another writer of a held profile gets its lock once the flush saved it, and reads what was saved', async () => {
    const { profiles, held, step } = setup();
    await step.handle([order()]);
    const other = profiles.withLocks([ref], async () => (await profiles.load([ref]))[0]!.values.trt_orders?.value, { waitMs: 10_000 });
    // The other writer waits on the lock this process holds until the flush releases it.
    await held.flush();
    expect(await other).toBe(1);
  });

  it("a profile locked by another writer: the chunk flushes what it holds, then waits for that writer's lock", async () => {
    const { profiles, held, step, records } = setup();
    await step.handle([message({ profile_id: 'pro_other', user_id: 'o', event: 'Order Completed' })]);
    const locks = new RedisLock(redis);
    const owner = lockOwner();
    expect(await locks.acquireAll([profiles.lockKey(ref)], owner, 10_000)).toBe(0);
    const handled = step.handle([order()]);
    try {
      // What this process held is saved and released while it waits (the other writer may need it).
      await waitFor(() => held.size === 0, { timeoutMs: 10_000, intervalMs: 20, description: 'what this process held flushed' });
      expect(await redis.exists(profiles.stateKey({ spaceId: 'spa_acc', profileId: 'pro_other' }))).toBe(1);
      expect(records.filter((r) => r.profile_id === 'pro_wb')).toEqual([]);
    } finally {
      // Also when an expectation failed: the chunk would otherwise keep retrying the lock for a minute.
      await locks.releaseAll([profiles.lockKey(ref)], owner);
    }
    await handled;
    expect(records.filter((r) => r.profile_id === 'pro_wb').map((r) => [r.computation_key, r.value])).toEqual([['orders', 1]]);
    await held.flush();
  });
});
