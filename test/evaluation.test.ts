// Evaluation end to end through real Kafka, schema registry and Redis: the
// control plane, the realtime evaluator and the batch scheduler run as
// processes (test/helpers/evaluation-fleet.ts); the test writes resolved
// events and identity changes and reads engage.computations.changes.
import type { ResolvedEvent } from '@engage/schemas';
import { waitFor } from '@engage/testing';
import { startFleet, type Fleet } from './helpers/evaluation-fleet';

const DAY = 86_400_000;
let fleet: Fleet;

beforeAll(async () => {
  fleet = await startFleet('eval');
}, 180_000);

afterAll(async () => {
  await fleet?.stop();
});

const api = (method: string, path: string, body?: unknown) => fleet.api(method, path, body);
async function send(profileId: string, over: Partial<ResolvedEvent>) {
  const e = fleet.event(profileId, over);
  await fleet.send([e]);
  return e;
}
const changesOf = (profileId: string, key: string) => fleet.changesOf(profileId, key);
const waitChanges = (profileId: string, key: string, n: number, timeoutMs = 30000) => fleet.waitChanges(profileId, key, n, timeoutMs);
const createAudience = (name: string, query: string, options: Record<string, unknown> = {}) =>
  fleet.create('audiences', name, query, options);

describe('evaluation through the fleet', () => {
  it('enters and exits in real time; a computed trait changes only when its value does; chains update in the same pass', async () => {
    await createAudience('Big Spenders', "event('Order Completed').sum(property('revenue')) > 100");
    await api('POST', `/spaces/${fleet.spaceId}/computed-traits`, {
      name: 'Total Revenue',
      definition: { query: "event('Order Completed').sum(property('revenue'))", type: 'users' },
    });
    await createAudience('Not Big Spenders', "NOT trait('big_spenders') = true AND event('Order Completed').count() >= 1");
    await waitFor(
      async () => (await api('GET', `/spaces/${fleet.spaceId}/audiences`)).data.audiences.every((a: any) => a.status === 'Live'),
      {
        description: 'audiences Live',
      },
    );

    await send('pro_a', { properties_json: '{"revenue": 60}' });
    await send('pro_a', { properties_json: '{"revenue": 0}' }); // no change of anything
    await send('pro_a', { properties_json: '{"revenue": 50}' });
    await waitChanges('pro_a', 'big_spenders', 1);
    await waitChanges('pro_a', 'not_big_spenders', 2);
    expect(changesOf('pro_a', 'total_revenue').map((c) => [c.previous, c.value])).toEqual([
      [null, 60],
      [60, 110],
    ]);
    expect(changesOf('pro_a', 'big_spenders').map((c) => [c.previous, c.value, c.reason, c.computation_class, c.level])).toEqual([
      [false, true, 'realtime', 'audience', 'user'],
    ]);
    expect(changesOf('pro_a', 'not_big_spenders').map((c) => c.value)).toEqual([true, false]);
    expect(changesOf('pro_a', 'big_spenders')[0]).toEqual(
      expect.objectContaining({
        user_id: 'u_a',
        external_ids: [{ type: 'user_id', id: 'u_a' }],
        change_id: expect.stringMatching(/^chg_/),
      }),
    );
  });

  it('an event with an old timestamp enters, then expires on time with no new event', async () => {
    await createAudience('Ordered Last 30 Days', "event('Order Completed').within(30 days).count() >= 1");
    await waitFor(
      async () => (await api('GET', `/spaces/${fleet.spaceId}/audiences`)).data.audiences.every((a: any) => a.status === 'Live'),
      {
        description: 'Live',
      },
    );
    const sent = await send('pro_old', { timestamp: Date.now() - 30 * DAY + 4000 });
    const [entry, exit] = await waitChanges('pro_old', 'ordered_last_30_days', 2, 30000);
    expect([entry!.value, entry!.reason, exit!.value, exit!.reason]).toEqual([true, 'realtime', false, 'expiry']);
    expect(exit!.emitted_at).toBeGreaterThanOrEqual(sent.timestamp + 30 * DAY);
  });

  it('backfills with history, and without history counts only later events', async () => {
    await send('pro_hist', { event: 'Signed Up' });
    // The evaluator has applied Signed Up once a later event of the same profile
    // shows (per-profile order): only then may the audiences be created, or it
    // would count Signed Up in real time and the backfill would find nothing
    // to do. (Waiting for any change at all passed at once: earlier tests made some.)
    await send('pro_hist', { event: 'Order Completed', properties_json: '{"revenue": 1}' });
    await waitChanges('pro_hist', 'ordered_last_30_days', 1);
    await createAudience('Signed Up Ever', "event('Signed Up').count() >= 1", { includeHistoricalData: true });
    await createAudience('Signed Up Since', "event('Signed Up').count() >= 1", { includeHistoricalData: false });
    const [backfilled] = await waitChanges('pro_hist', 'signed_up_ever', 1);
    expect([backfilled!.value, backfilled!.reason]).toEqual([true, 'backfill']);
    await send('pro_hist', { event: 'Viewed' });
    await send('pro_new', { event: 'Signed Up' });
    await waitChanges('pro_new', 'signed_up_since', 1);
    expect(changesOf('pro_hist', 'signed_up_since')).toEqual([]);
  });

  it('a merge combines state: the survivor enters, the merged profile exits', async () => {
    await createAudience('Two Orders', "event('Order Completed').count() >= 2");
    await waitFor(
      async () => (await api('GET', `/spaces/${fleet.spaceId}/audiences`)).data.audiences.every((a: any) => a.status === 'Live'),
      {
        description: 'Live',
      },
    );
    await send('pro_m1', {});
    await send('pro_m2', {});
    await send('pro_m2', { event: 'Viewed' });
    await waitFor(() => changesOf('pro_m2', 'ordered_last_30_days').length >= 1, { description: 'both evaluated' });
    await fleet.identity({
      kind: 'merge',
      profile_id: 'pro_m1',
      merged_profile_ids: ['pro_m2'],
      external_ids: [
        { type: 'user_id', id: 'u_m1' },
        { type: 'anonymous_id', id: 'anon-m2' },
      ],
    });
    const [entered] = await waitChanges('pro_m1', 'two_orders', 1);
    expect(entered!.value).toBe(true);
    const [exited] = await waitChanges('pro_m2', 'ordered_last_30_days', 2);
    expect(changesOf('pro_m2', 'ordered_last_30_days').map((c) => c.value)).toEqual([true, false]);
    expect(exited).toBeDefined();
  });
  it("reuses a profile's hot state from memory on its next chunk, and counts it on /metrics", async () => {
    const hits = async () => {
      const text = await (await fetch(`http://127.0.0.1:${await fleet.procs[1]!.port()}/metrics`)).text();
      return Number(/engage_evaluator_state_cache_lookups_total\{outcome="hit"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    await send('pro_cache', { properties_json: '{"revenue": 10}' });
    await waitChanges('pro_cache', 'total_revenue', 1);
    const before = await hits();
    // Sent after the first one's change arrived: a later chunk, after the first chunk's save.
    await send('pro_cache', { properties_json: '{"revenue": 5}' });
    const [, second] = await waitChanges('pro_cache', 'total_revenue', 2);
    expect([second!.previous, second!.value]).toEqual([10, 15]);
    await waitFor(async () => (await hits()) > before, { description: 'a cache hit counted' });
  });
  it('counts evaluated events and the size of each chunk on /metrics', async () => {
    const scrape = async (pattern: RegExp) => {
      const text = await (await fetch(`http://127.0.0.1:${await fleet.procs[1]!.port()}/metrics`)).text();
      return Number(pattern.exec(text)?.[1] ?? 0);
    };
    const evaluated = () => scrape(/engage_evaluator_events_total\{outcome="evaluated"[^}]*\} (\d+)/);
    const chunkEvents = () => scrape(/engage_evaluator_chunk_events_sum\{[^}]*\} (\d+)/);
    const [eventsBefore, sizesBefore] = [await evaluated(), await chunkEvents()];
    await send('pro_metrics', { properties_json: '{"revenue": 7}' });
    await waitChanges('pro_metrics', 'total_revenue', 1);
    // Counted once the chunk's handler returns, just after its changes are out.
    await waitFor(async () => (await evaluated()) >= eventsBefore + 1 && (await chunkEvents()) >= sizesBefore + 1, {
      description: 'the event and its chunk counted',
    });
  });
});
