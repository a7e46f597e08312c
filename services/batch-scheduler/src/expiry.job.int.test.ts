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

describe('ExpiryJob', () => {
  it('a tick killed between producing and saving re-emits the exit under the same change_id (the re-claim comes from the lease)', async () => {
    const profiles = new ProfileStateRepository({ keyPrefix: `${uniqueName('expiry')}:`, wakeShards: 1 }, { redis });
    const audience = compileComputation(
      {
        id: 'aud_recent',
        key: 'recent_buyers',
        class: 'audience',
        ast: parseQuery("event('Order Completed').within(1 hours).count() >= 1", { type: 'users' }),
        countsEventsFrom: 0,
        definitionVersion: 1,
      },
      new Set(['recent_buyers']),
    );
    const ordered = [audience];
    const profile = emptyProfile({ spaceId: 'spa_x', profileId: 'pro_x' });
    const entered = applyEvent(
      profile,
      {
        type: 'track',
        event: 'Order Completed',
        timestamp: T0,
        arrivedAt: T0,
        sourceId: 'src',
        messageId: 'm1',
        properties: {},
        traits: {},
        context: {},
      },
      ordered,
      { maxEvents: 200, now: T0 },
    );
    expect(entered.map((c) => c.value)).toEqual([true]);
    await profiles.save([{ profile, wakeAt: nextChangeAt(profile, ordered, T0) }], []);

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
});
