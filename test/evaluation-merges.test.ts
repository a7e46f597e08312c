// Merges and the events still on their way (issue 17 #5): an event resolved to
// a profile before a merge folded it into another can reach the evaluator
// after the merge (the merge travels on the survivor's partition). Every
// event of a person must count on the survivor, whatever the interleaving.
// The interleavings are forced: the test writes resolved events and identity
// changes itself, in the order it wants, to the real fleet (test/helpers/evaluation-fleet.ts).
import { waitFor } from '@engage/testing';
import { startFleet, type Fleet } from './helpers/evaluation-fleet';

let fleet: Fleet;

beforeAll(async () => {
  fleet = await startFleet('merges');
  await fleet.create('computed-traits', 'Views', "event('Product Viewed').count()");
  await fleet.waitLive();
}, 180_000);

afterAll(async () => {
  await fleet?.stop();
});

const views = (profileId: string, n: number) =>
  Array.from({ length: n }, () => fleet.event(profileId, { event: 'Product Viewed', timestamp: Date.now() }));
const lastViews = (profileId: string) => fleet.changesOf(profileId, 'views').at(-1)?.value;
const merge = (survivor: string, merged: string[]) =>
  fleet.identity({ kind: 'merge', profile_id: survivor, merged_profile_ids: merged, external_ids: [] });
/** No change of `profileId` arrives for a quiet second after `since` changes were seen. */
async function quiet(profileId: string, since: number) {
  let count = fleet.changesOf(profileId, 'views').length;
  let stableSince = Date.now();
  await waitFor(
    () => {
      const now = fleet.changesOf(profileId, 'views').length;
      if (now !== count) [count, stableSince] = [now, Date.now()];
      return Date.now() - stableSince >= 1000;
    },
    { description: `${profileId} quiet` },
  );
  expect(fleet.changesOf(profileId, 'views').length).toBe(since);
}

describe('events of a merged profile that arrive after the merge', () => {
  it('count on the survivor; the merged profile is not recreated', async () => {
    await fleet.send(views('pro_late_s', 3));
    await fleet.send(views('pro_late_p', 2));
    await waitFor(() => lastViews('pro_late_s') === 3 && lastViews('pro_late_p') === 2, { description: 'both evaluated' });
    const beforeMerge = fleet.changesOf('pro_late_p', 'views').length;

    await merge('pro_late_s', ['pro_late_p']);
    await waitFor(() => lastViews('pro_late_s') === 5, { description: 'the survivor has both profiles’ views' });
    // Resolved to the merged profile before the merge, evaluated after it.
    await fleet.send(views('pro_late_p', 2));
    await waitFor(() => lastViews('pro_late_s') === 7, {
      description: `the late views on the survivor (have ${lastViews('pro_late_s')}, merged profile ${lastViews('pro_late_p')})`,
    });
    await quiet('pro_late_p', beforeMerge);
  });

  it('a merge that arrives after its survivor was itself merged lands on the live survivor', async () => {
    await fleet.send(views('pro_chain_t', 1));
    await fleet.send(views('pro_chain_s', 2));
    await fleet.send(views('pro_chain_p', 4));
    await waitFor(() => lastViews('pro_chain_t') === 1 && lastViews('pro_chain_s') === 2 && lastViews('pro_chain_p') === 4, {
      description: 'all three evaluated',
    });
    const sBefore = fleet.changesOf('pro_chain_s', 'views').length;
    // The resolver saw: P merged into S, then S merged into T. The evaluator gets them the other way round.
    await merge('pro_chain_t', ['pro_chain_s']);
    await waitFor(() => lastViews('pro_chain_t') === 3, { description: 'S folded into T' });
    await merge('pro_chain_s', ['pro_chain_p']);
    await waitFor(() => lastViews('pro_chain_t') === 7, {
      description: `P folded into T, S's survivor (T has ${lastViews('pro_chain_t')}, S ${lastViews('pro_chain_s')})`,
    });
    await fleet.send(views('pro_chain_s', 1));
    await fleet.send(views('pro_chain_p', 1));
    await waitFor(() => lastViews('pro_chain_t') === 9, { description: 'late events of S and P on T' });
    await quiet('pro_chain_s', sBefore);
  });
});

describe('a merge keeps what the bounded history no longer holds (issue 18 #1)', () => {
  it('250 views on each side (200 events kept per profile), a merge, one more view: 501', async () => {
    // Browsing anonymously first, then signed in: the newest 200 of the union are all the user's own.
    const t0 = Date.now() - 3_600_000;
    const on = (profileId: string, from: number) =>
      Array.from({ length: 250 }, (_, i) => fleet.event(profileId, { event: 'Product Viewed', timestamp: from + i * 1000 }));
    await fleet.send(on('pro_big_a', t0));
    await fleet.send(on('pro_big_u', t0 + 600_000));
    await waitFor(() => lastViews('pro_big_a') === 250 && lastViews('pro_big_u') === 250, {
      timeoutMs: 90_000,
      description: `both evaluated (have ${lastViews('pro_big_a')}, ${lastViews('pro_big_u')})`,
    });
    await merge('pro_big_u', ['pro_big_a']);
    await waitFor(() => lastViews('pro_big_u') === 500, {
      timeoutMs: 60_000,
      description: `the survivor counts both profiles' views (have ${lastViews('pro_big_u')})`,
    });
    await fleet.send(views('pro_big_u', 1));
    await waitFor(() => lastViews('pro_big_u') === 501, {
      timeoutMs: 60_000,
      description: `one more view (have ${lastViews('pro_big_u')})`,
    });
  });
});
