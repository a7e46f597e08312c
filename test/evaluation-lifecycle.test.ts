// Computation lifecycle through the fleet (real Kafka, schema registry, Redis;
// services as processes): backfill handing over to real time with no gap and
// no double count, status and progress where the control plane reads them, an
// edit re-backfilling, batch computations emitting only differences, disable /
// re-enable / delete clearing and rebuilding state.
import { ProfileStateRepository } from '@engage/profile-store';
import { createRedis, type RedisClient } from '@engage/redis';
import { waitFor } from '@engage/testing';
import { startFleet, type Fleet } from './helpers/evaluation-fleet';

let f: Fleet;
let redis: RedisClient;

beforeAll(async () => {
  f = await startFleet('eval-life', { env: { BATCH_INTERVAL_MS: '3000', EVALUATOR_CHUNK_SIZE: '100' } });
  redis = createRedis({ url: f.env.REDIS_URL! });
});
afterAll(async () => {
  redis?.disconnect();
  await f?.stop();
});

const distinctIds = (profileId: string, key: string) => new Set(f.changesOf(profileId, key).map((c) => c.change_id));
const spaceSize = () => redis.scard(`${f.prefix}rt:profiles:{${f.spaceId}}`);
const audience = async (id: string) => (await f.api('GET', `/spaces/${f.spaceId}/audiences/${id}`)).data.audience;

describe('computation lifecycle', () => {
  it('backfill with history hands over to real time: every profile enters exactly once, status goes to Live with progress', async () => {
    const ids = Array.from({ length: 600 }, (_, i) => `pro_h${i}`);
    await f.send(ids.slice(0, 400).map((p) => f.event(p, { event: 'Joined' })));
    await waitFor(async () => (await spaceSize()) >= 400, { description: 'history stored' });

    // Watch the status hash the control plane reads while the backfill runs.
    const seen: Array<{ status?: string; progress?: string }> = [];
    let watching = true;
    let statusKey = '';
    const watcher = (async () => {
      while (watching) {
        if (statusKey) {
          const h = await redis.hgetall(statusKey);
          if (h.status) seen.push({ status: h.status, progress: h.progress });
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    const created = await f.create('audiences', 'Joined Ever', "event('Joined').count() >= 1", { includeHistoricalData: true });
    statusKey = `${f.prefix}status:computation:${created.id}`;
    // Real time keeps flowing during the backfill: a second event for half the old profiles, a first for new ones.
    await f.send([...ids.slice(0, 200), ...ids.slice(400)].map((p) => f.event(p, { event: 'Joined' })));
    await waitFor(
      async () => (await audience(created.id)).status === 'Live' && ids.every((p) => f.changesOf(p, 'joined_ever').length > 0),
      {
        timeoutMs: 60000,
        description: 'Live and every profile entered',
      },
    );
    watching = false;
    await watcher;

    // Exactly one entry per profile (a redelivered duplicate would carry the same change_id).
    expect(ids.filter((p) => distinctIds(p, 'joined_ever').size !== 1)).toEqual([]);
    expect(ids.filter((p) => f.changesOf(p, 'joined_ever').some((c) => c.value !== true))).toEqual([]);
    const reasons = new Set(ids.flatMap((p) => f.changesOf(p, 'joined_ever').map((c) => c.reason)));
    expect([...reasons].every((r) => r === 'backfill' || r === 'realtime')).toBe(true);
    expect(ids.slice(400).every((p) => f.changesOf(p, 'joined_ever')[0]!.reason === 'realtime')).toBe(true);
    // Profiles with history only come in through the backfill.
    expect(ids.slice(200, 400).filter((p) => f.changesOf(p, 'joined_ever')[0]!.reason !== 'backfill')).toEqual([]);
    // The size is refreshed on every scheduler pass: the last realtime entries may land just after one.
    const final = await waitFor(
      async () => {
        const a = await audience(created.id);
        return a.size === 600 ? a : null;
      },
      { description: 'size 600' },
    );
    expect([final.status, final.size, final.progress]).toEqual(['Live', 600, null]);
    // Statuses only move forward (Preparing -> Computing -> Live), Live has no progress.
    const rank = seen.map((s) => ['Preparing', 'Computing', 'Live'].indexOf(s.status!));
    expect(rank.every((r, i) => r >= 0 && (i === 0 || r >= rank[i - 1]!))).toBe(true);
    expect(seen.filter((s) => s.status === 'Live' && s.progress !== undefined)).toEqual([]);
    const progress = seen.filter((s) => s.status === 'Computing').map((s) => Number(s.progress));
    expect(progress.every((p, i) => p >= 0 && p <= 1 && (i === 0 || p >= progress[i - 1]!))).toBe(true);
  });

  it('an edit re-backfills: only differences, reason edit', async () => {
    const created = await f.create('audiences', 'Viewed Twice', "event('Viewed').count() >= 1", { includeHistoricalData: true });
    await f.waitLive();
    await f.send([f.event('pro_e1', { event: 'Viewed' }), f.event('pro_e1', { event: 'Viewed' }), f.event('pro_e2', { event: 'Viewed' })]);
    await f.waitChanges('pro_e1', 'viewed_twice', 1);
    await f.waitChanges('pro_e2', 'viewed_twice', 1);
    const res = await f.api('PATCH', `/spaces/${f.spaceId}/audiences/${created.id}`, {
      definition: { query: "event('Viewed').count() >= 2", type: 'users' },
    });
    expect(res.data).toBeDefined();
    const [, exit] = await f.waitChanges('pro_e2', 'viewed_twice', 2);
    expect([exit!.value, exit!.reason]).toEqual([false, 'edit']);
    await waitFor(async () => (await audience(created.id)).status === 'Live' && (await audience(created.id)).size === 1, {
      description: 'Live after edit',
    });
    expect(f.changesOf('pro_e1', 'viewed_twice').map((c) => c.value)).toEqual([true]);
  });

  it('a batch computation is recomputed on its schedule and emits only differences (reason batch)', async () => {
    const created = await f.create('audiences', 'Batch Buyers', "event('Batch Bought').count() >= 1", { computeMode: 'batch' });
    await f.send([f.event('pro_b1', { event: 'Batch Bought' })]);
    const [first] = await f.waitChanges('pro_b1', 'batch_buyers', 1);
    expect([first!.value, first!.reason]).toEqual([true, 'batch']);
    await f.send([f.event('pro_b2', { event: 'Batch Bought' })]);
    await f.waitChanges('pro_b2', 'batch_buyers', 1);
    // At least one more run after pro_b2's (3 s interval): pro_b1 is not sent again.
    const runs = Number(await redis.get(`${f.prefix}sched:done:${created.id}`));
    await waitFor(async () => Number(await redis.get(`${f.prefix}sched:done:${created.id}`)) > runs, { description: 'another batch run' });
    expect([f.changesOf('pro_b1', 'batch_buyers').length, f.changesOf('pro_b2', 'batch_buyers').length]).toEqual([1, 1]);
    expect(f.changesOf('pro_b2', 'batch_buyers')[0]!.reason).toBe('batch');
  });

  it('disable clears members and values; re-enable recomputes; delete stops it', async () => {
    const created = await f.create('audiences', 'Toggled', "event('Toggle').count() >= 1", { includeHistoricalData: true });
    await f.waitLive();
    await f.send([f.event('pro_d', { event: 'Toggle' })]);
    await f.waitChanges('pro_d', 'toggled', 1);
    const members = `${f.prefix}rt:members:{${created.id}}`;
    const profiles = new ProfileStateRepository({ keyPrefix: f.prefix }, { redis });
    const stored = async () => (await profiles.load([{ spaceId: f.spaceId, profileId: 'pro_d' }]))[0]!.values[created.id];
    await waitFor(async () => (await redis.scard(members)) === 1, { description: 'member stored' });

    await f.api('PATCH', `/spaces/${f.spaceId}/audiences/${created.id}`, { enabled: false });
    await waitFor(async () => (await redis.scard(members)) === 0 && (await stored()) === undefined, { description: 'state cleared' });
    expect((await audience(created.id)).status).toBe('Disabled');
    await f.send([f.event('pro_d', { event: 'Toggle' })]); // not evaluated while disabled

    await f.api('PATCH', `/spaces/${f.spaceId}/audiences/${created.id}`, { enabled: true });
    const [first, again] = await f.waitChanges('pro_d', 'toggled', 2);
    expect([again!.value, again!.previous]).toEqual([true, false]);
    // A re-entry is a new change, not a duplicate of the first entry.
    expect(again!.change_id).not.toBe(first!.change_id);
    await waitFor(async () => (await audience(created.id)).status === 'Live' && (await audience(created.id)).size === 1, {
      description: 'Live again',
    });

    await f.api('DELETE', `/spaces/${f.spaceId}/audiences/${created.id}`);
    await waitFor(async () => (await redis.exists(members)) === 0 && (await stored()) === undefined, {
      description: 'deleted state cleared',
    });
    // Same profile, same partition: once its Viewed events are evaluated, the Toggle before them was too.
    await f.send([f.event('pro_d2', { event: 'Toggle' }), f.event('pro_d2', { event: 'Viewed' }), f.event('pro_d2', { event: 'Viewed' })]);
    await f.waitChanges('pro_d2', 'viewed_twice', 1);
    expect(f.changesOf('pro_d', 'toggled').length + f.changesOf('pro_d2', 'toggled').length).toBe(2);
  });
});
