// ExpiryJob with an injected clock and a committer that can crash between
// producing and saving, against the real Redis (claims, locks, states).
import { applyEvent, compileComputation, nextChangeAt, parseQuery, type CompiledComputation } from '@engage/engine';
import {
  ProfileStateRepository,
  emptyProfile,
  toChangeRecord,
  type ChangeCommitter,
  type ComputationsRegistry,
  type PendingChange,
} from '@engage/profile-store';
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { ExpiryJob } from './expiry.job';

const HOUR = 3_600_000;
const T0 = Date.parse('2026-06-01T00:00:00Z');
let redis: RedisClient;

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
afterAll(() => redis.quit());

function registry(computations: CompiledComputation[]): ComputationsRegistry {
  const byId = new Map(computations.map((c) => [c.id, { compiled: c, config: { options: { computeMode: 'realtime' } } }]));
  return { forSpace: () => ({ ordered: computations, byId, accounts: [] }) } as unknown as ComputationsRegistry;
}

/** Records the change ids it "produces"; the first `crashes` commits die after producing, before the save. */
function crashingCommitter(profiles: ProfileStateRepository, crashes: number) {
  const produced: string[] = [];
  let left = crashes;
  const committer = {
    async commit(touched: Array<{ profile: any; ordered: CompiledComputation[] }>, pending: PendingChange[]) {
      for (const p of pending)
        produced.push(
          toChangeRecord(p.change, p.profile, { reason: p.reason, occurredAt: p.occurredAt, emittedAt: 0, cause: p.cause }).change_id,
        );
      if (left-- > 0) throw new Error('killed after producing');
      await profiles.save(
        touched.map(({ profile, ordered }) => ({ profile, wakeAt: nextChangeAt(profile, ordered, T0) })),
        [],
      );
      return [];
    },
  } as unknown as ChangeCommitter;
  return { committer, produced };
}

const ORDER = (timestamp: number, messageId: string) => ({
  type: 'track' as const,
  event: 'Order Completed',
  timestamp,
  arrivedAt: timestamp,
  sourceId: 'src',
  messageId,
  properties: {},
  traits: {},
  context: {},
});

function recentBuyers(): CompiledComputation[] {
  return [
    compileComputation(
      {
        id: 'aud_recent',
        key: 'recent_buyers',
        class: 'audience',
        ast: parseQuery("event('Order Completed').within(1 hours).count() >= 1", { type: 'users' }),
        countsEventsFrom: 0,
        definitionVersion: 1,
      },
      new Set(['recent_buyers']),
    ),
  ];
}

/** Stores a member of recent_buyers whose window ends at T0 + 1 h (its wake-up). */
async function storeMember(profiles: ProfileStateRepository, ordered: CompiledComputation[], profileId: string) {
  const profile = emptyProfile({ spaceId: 'spa_x', profileId });
  expect(applyEvent(profile, ORDER(T0, `m-${profileId}`), ordered, { maxEvents: 200, now: T0 }).map((c) => c.value)).toEqual([true]);
  await profiles.save([{ profile, wakeAt: nextChangeAt(profile, ordered, T0) }], []);
}

/** The change_id of pro_x's exit from recent_buyers caused by its window ending at `dueAt`. */
function expectedExit(profileId: string, ordered: CompiledComputation[], dueAt: number): string {
  const profile = emptyProfile({ spaceId: 'spa_x', profileId });
  const change = { computation: ordered[0]!, value: false, previous: true };
  return toChangeRecord(change, profile, { reason: 'expiry', occurredAt: dueAt, emittedAt: 0, cause: `expiry@${dueAt}` }).change_id;
}

/**
 * Ticks the job on the injected clock, `stepMs` apart from now on, until `done()` or the clock passes `until`;
 * returns the first tick that committed something (its instant and count), or null.
 */
async function tickUntil(
  job: ExpiryJob,
  clock: () => number,
  setClock: (t: number) => void,
  stepMs: number,
  until: number,
  done: () => boolean,
): Promise<{ at: number; profiles: number } | null> {
  let first: { at: number; profiles: number } | null = null;
  for (;;) {
    const n = await job.tick();
    if (n > 0 && first === null) first = { at: clock(), profiles: n };
    if (done() || clock() + stepMs > until) return first;
    setClock(clock() + stepMs);
  }
}

describe('ExpiryJob', () => {
  it('a tick killed between producing and saving re-emits the exit under the same change_id (the re-claim comes from the lease)', async () => {
    const profiles = new ProfileStateRepository({ keyPrefix: `${uniqueName('expiry')}:`, wakeShards: 1 }, { redis });
    const ordered = recentBuyers();
    await storeMember(profiles, ordered, 'pro_x');

    const leaseMs = 10_000;
    let now = T0 + 2 * HOUR;
    const { committer, produced } = crashingCommitter(profiles, 1);
    const job = new ExpiryJob(
      { batchSize: 10, leaseMs },
      { profiles, all: registry(ordered), realtime: registry(ordered), committer, now: () => now },
    );
    await expect(job.tick()).rejects.toThrow('killed after producing');
    // Before the lease ends nobody takes it again; after, the re-claim's score is the lease.
    expect(await job.tick()).toBe(0);
    now += leaseMs + 1;
    expect(await job.tick()).toBe(1);
    expect(produced).toHaveLength(2);
    expect(produced[1]).toBe(produced[0]);
    // Saved: nothing more is due, and the profile left.
    now += HOUR;
    expect(await job.tick()).toBe(0);
    const [stored] = await profiles.load([{ spaceId: 'spa_x', profileId: 'pro_x' }]);
    expect(stored!.values.aud_recent?.value).toBe(false);
  });

  // NOTE: the chaos fleet runs with SCHEDULER_LEASE_MS = SCHEDULER_EXPIRY_LOOKAHEAD_MS (5 s): a wake-up
  // claimed ahead has its lease run out at about its instant, so the job claims it again before committing it.
  it('a wake-up claimed ahead and claimed again when its lease ends (lease <= lookahead) is committed at its instant', async () => {
    const profiles = new ProfileStateRepository({ keyPrefix: `${uniqueName('expiry')}:`, wakeShards: 1 }, { redis });
    const ordered = recentBuyers();
    await storeMember(profiles, ordered, 'pro_x');
    const { committer, produced } = crashingCommitter(profiles, 0);
    const dueAt = T0 + HOUR + 1; // nextChangeAt: the first instant the window no longer holds the order
    let now = dueAt - 5000;
    const job = new ExpiryJob(
      { batchSize: 10, leaseMs: 5000, lookaheadMs: 5000 },
      { profiles, all: registry(ordered), realtime: registry(ordered), committer, now: () => now },
    );
    expect(await job.tick()).toBe(0);
    expect(job.waiting).toBe(1);
    // At the instant the lease has run out too: the same tick claims it again, and must still commit it.
    now = dueAt;
    const committed = await tickUntil(
      job,
      () => now,
      (t) => (now = t),
      100,
      dueAt + 60_000,
      () => produced.length > 0,
    );
    expect(committed).toEqual({ at: dueAt, profiles: 1 });
    expect(produced).toEqual([expectedExit('pro_x', ordered, dueAt)]);
    const [stored] = await profiles.load([{ spaceId: 'spa_x', profileId: 'pro_x' }]);
    expect(stored!.values.aud_recent?.value).toBe(false);
  });

  it('a replica killed mid-commit of a wake-up it claimed ahead: the next replica commits the exit once its lease ends, under the same change_id', async () => {
    const profiles = new ProfileStateRepository({ keyPrefix: `${uniqueName('expiry')}:`, wakeShards: 1 }, { redis });
    const ordered = recentBuyers();
    await storeMember(profiles, ordered, 'pro_x');
    const dueAt = T0 + HOUR + 1;
    const config = { batchSize: 10, leaseMs: 5000, lookaheadMs: 5000 };
    let now = dueAt - 4000;
    const first = crashingCommitter(profiles, 1);
    const killed = new ExpiryJob(config, {
      profiles,
      all: registry(ordered),
      realtime: registry(ordered),
      committer: first.committer,
      now: () => now,
    });
    expect(await killed.tick()).toBe(0);
    now = dueAt;
    await expect(killed.tick()).rejects.toThrow('killed after producing');
    expect(first.produced).toEqual([expectedExit('pro_x', ordered, dueAt)]);

    // The replica that takes over (the killed one never ticks again).
    const second = crashingCommitter(profiles, 0);
    const job = new ExpiryJob(config, {
      profiles,
      all: registry(ordered),
      realtime: registry(ordered),
      committer: second.committer,
      now: () => now,
    });
    const leaseEnd = dueAt - 4000 + config.lookaheadMs + config.leaseMs;
    const committed = await tickUntil(
      job,
      () => now,
      (t) => (now = t),
      100,
      dueAt + 60_000,
      () => second.produced.length > 0,
    );
    // Re-claimed when the lease ends, ahead of its score: its instant is long past, so committed in that tick (not at the lease's score).
    expect(committed).toEqual({ at: leaseEnd - config.lookaheadMs, profiles: 1 });
    expect(second.produced).toEqual(first.produced);
    // Saved: nothing is claimed again.
    await tickUntil(
      job,
      () => now,
      (t) => (now = t),
      1000,
      now + 3 * config.leaseMs,
      () => false,
    );
    expect(second.produced).toHaveLength(1);
    const [stored] = await profiles.load([{ spaceId: 'spa_x', profileId: 'pro_x' }]);
    expect(stored!.values.aud_recent?.value).toBe(false);
  });

  it('prepared ahead: evaluated before the instant, committed at it (never before), and a profile saved meanwhile is evaluated again', async () => {
    const profiles = new ProfileStateRepository({ keyPrefix: `${uniqueName('expiry')}:`, wakeShards: 2 }, { redis });
    const ordered = recentBuyers();
    for (const id of ['pro_a', 'pro_b', 'pro_c']) await storeMember(profiles, ordered, id);
    const { committer, produced } = crashingCommitter(profiles, 0);
    let now = T0 + HOUR - 2000;
    const job = new ExpiryJob(
      { batchSize: 2, leaseMs: 60_000, lookaheadMs: 5000 },
      { profiles, all: registry(ordered), realtime: registry(ordered), committer, now: () => now },
    );
    // 2 s before the windows end: all three claimed and evaluated, nothing emitted.
    expect(await job.tick()).toBe(0);
    expect(job.waiting).toBe(3);
    expect(produced).toEqual([]);
    // Meanwhile pro_b buys again: its window now ends an hour later.
    const [b] = await profiles.load([{ spaceId: 'spa_x', profileId: 'pro_b' }]);
    applyEvent(b!, ORDER(T0 + HOUR - 1000, 'm-b2'), ordered, { maxEvents: 200, now: T0 + HOUR - 1000 });
    await profiles.save([{ profile: b!, wakeAt: nextChangeAt(b!, ordered, T0 + HOUR - 1000) }], []);
    // The windows end after T0 + 1 h (nextChangeAt: the first instant the answer is false).
    now = T0 + HOUR;
    expect(await job.tick()).toBe(0);
    expect(produced).toEqual([]);
    now = T0 + HOUR + 1;
    expect(await job.tick()).toBe(3);
    // pro_a and pro_c exit; pro_b, saved after it was prepared, was evaluated again and stays.
    expect(produced).toHaveLength(2);
    const stored = await profiles.load(['pro_a', 'pro_b', 'pro_c'].map((profileId) => ({ spaceId: 'spa_x', profileId })));
    expect(stored.map((p) => p.values.aud_recent?.value)).toEqual([false, true, false]);
    // pro_b's own wake-up comes an hour later.
    now = T0 + 2 * HOUR - 1000 + 1;
    expect(await job.tick()).toBe(1);
    expect(produced).toHaveLength(3);
  });
});
