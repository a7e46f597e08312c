// Issue 18, defect 2: a backfill with historical data replays the whole of
// engage.events.resolved, not the evaluator's bounded history (200 events per
// profile), and hands over to real time with no gap or double count, also for
// an event that lands while the backfill is computing.
import { createRedis, type RedisClient } from '@engage/redis';
import { uniqueName, waitFor } from '@engage/testing';
import { startFleet, type Fleet } from './helpers/evaluation-fleet';

let f: Fleet;
let redis: RedisClient;
// While this key exists, a backfill waits between its replay and its writes (BACKFILL_TEST_HOLD_KEY).
const hold = uniqueName('backfill-hold');

beforeAll(async () => {
  f = await startFleet('eval-hist', { env: { BACKFILL_TEST_HOLD_KEY: hold, BACKFILL_CUT_GRACE_MS: '500' } });
  redis = createRedis({ url: f.env.REDIS_URL! });
});
afterAll(async () => {
  await redis?.del(hold);
  redis?.disconnect();
  await f?.stop();
});

const status = async (kind: 'audiences' | 'computed-traits', id: string) => {
  const res = await f.api('GET', `/spaces/${f.spaceId}/${kind}/${id}`);
  return (res.data.audience ?? res.data.computedTrait ?? res.data.computed_trait ?? Object.values(res.data)[0]).status as string;
};
/** Whether the evaluator has applied this event (the last 200 events are kept with their ids). */
const applied = async (profileId: string, messageId: string) =>
  (await redis.lrange(`${f.prefix}rt:{${f.spaceId}:${profileId}}:hist`, 0, -1)).some((e) => JSON.parse(e).messageId === messageId);

/** One First Touch then `views` page views (1 ms apart: the stored history keeps the newest), all evaluated before anything is defined. */
async function history(profileId: string, views: number) {
  const t0 = Date.now() - 60_000;
  const events = [
    f.event(profileId, { event: 'First Touch', timestamp: t0 }),
    ...Array.from({ length: views }, (_, i) => f.event(profileId, { event: 'Page Viewed', timestamp: t0 + 1 + i })),
  ];
  await f.send(events);
  await waitFor(() => applied(profileId, events.at(-1)!.message_id), { timeoutMs: 60000, description: `${profileId} history evaluated` });
}

describe('backfill with historical data', () => {
  it('replays the whole history: one First Touch then 300 page views enters, the trait reaches 300', async () => {
    await history('pro_r', 300);
    await f.create('audiences', 'First Touch Ever', "event('First Touch').count() >= 1", { includeHistoricalData: true });
    await f.create('computed-traits', 'Page Views', "event('Page Viewed').count()", { includeHistoricalData: true });
    await f.waitLive();
    const [entry] = await f.waitChanges('pro_r', 'first_touch_ever', 1);
    expect([entry!.value, entry!.reason]).toEqual([true, 'backfill']);
    await waitFor(() => f.changesOf('pro_r', 'page_views').some((c) => c.value === 300), {
      description: `page_views 300 (have ${JSON.stringify(f.changesOf('pro_r', 'page_views').map((c) => c.value))})`,
    });
    expect(f.changesOf('pro_r', 'page_views').map((c) => [c.value, c.reason])).toEqual([[300, 'backfill']]);

    // Real time goes on from the replayed state.
    await f.send([f.event('pro_r', { event: 'Page Viewed' })]);
    const after = await f.waitChanges('pro_r', 'page_views', 2);
    expect(after.map((c) => [c.value, c.reason])).toEqual([
      [300, 'backfill'],
      [301, 'realtime'],
    ]);
    expect(f.changesOf('pro_r', 'first_touch_ever')).toHaveLength(1);
  });

  it('an event that lands while the backfill is computing counts once; computations created together share one pass', async () => {
    await history('pro_s', 250);
    await redis.set(hold, '1'); // the pass holds between its replay and its writes
    const audience = await f.create('audiences', 'First Touch Held', "event('First Touch').count() >= 1", { includeHistoricalData: true });
    const trait = await f.create('computed-traits', 'Views Held', "event('Page Viewed').count()", { includeHistoricalData: true });
    await waitFor(
      async () => (await status('computed-traits', trait.id)) === 'Computing' && (await status('audiences', audience.id)) === 'Computing',
      {
        timeoutMs: 60000,
        description: 'both Computing (one pass)',
      },
    );
    const during = f.event('pro_s', { event: 'Page Viewed' });
    await f.send([during]);
    // Real time counts it alone first (it arrived after the definitions), while the pass is still computing.
    await f.waitChanges('pro_s', 'views_held', 1, 60000);
    expect(f.changesOf('pro_s', 'views_held').map((c) => [c.value, c.reason])).toEqual([[1, 'realtime']]);
    expect(await status('computed-traits', trait.id)).toBe('Computing');
    await redis.del(hold);

    await f.waitLive();
    const changes = await f.waitChanges('pro_s', 'views_held', 2);
    expect(changes.map((c) => [c.value, c.reason])).toEqual([
      [1, 'realtime'],
      [251, 'backfill'],
    ]);
    const [entry] = await f.waitChanges('pro_s', 'first_touch_held', 1);
    expect([entry!.value, entry!.reason]).toEqual([true, 'backfill']);
    expect(f.changesOf('pro_s', 'first_touch_held')).toHaveLength(1);
  });

  it("an event resolved to a profile merged later counts on the survivor (the resolver's alias followed)", async () => {
    await history('pro_m1', 250); // its First Touch is beyond its 200 stored events
    await f.send([f.event('pro_m2', { event: 'Page Viewed' })]);
    // The resolver merged pro_m1 into pro_m2: its graph alias, and the merge for the evaluator.
    await redis.set(`${f.prefix}idn:{${f.spaceId}}:alias:pro_m1`, 'pro_m2');
    await f.identity({ kind: 'merge', profile_id: 'pro_m2', merged_profile_ids: ['pro_m1'] });
    await waitFor(async () => (await redis.exists(`${f.prefix}rt:{${f.spaceId}:pro_m1}:state`)) === 0, { description: 'merge applied' });
    await f.create('audiences', 'Merged First Touch', "event('First Touch').count() >= 1", { includeHistoricalData: true });
    await f.waitLive();
    const [entry] = await f.waitChanges('pro_m2', 'merged_first_touch', 1);
    expect([entry!.value, entry!.reason]).toEqual([true, 'backfill']);
    expect(f.changesOf('pro_m1', 'merged_first_touch')).toEqual([]);
  });
});
