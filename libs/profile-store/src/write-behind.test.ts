import { applyEvent, compileComputation, dependencyOrder, parseQuery, type CompiledComputation } from '@engage/engine';
import { emptyProfile, type StoredProfile } from './profile-state.repository';
import { restoreHeld, snapshotHeld } from './write-behind';

const compile = (id: string, key: string, query: string, cls: 'audience' | 'trait'): CompiledComputation =>
  compileComputation(
    {
      id,
      key,
      class: cls,
      ast: parseQuery(query, { type: cls === 'audience' ? 'users' : 'trait' }),
      definitionVersion: 1,
      countsEventsFrom: 0,
    },
    new Set(),
  );

const ordered = dependencyOrder([
  compile('cmp_orders', 'orders', "event('Order Completed').count()", 'trait'),
  compile('cmp_recent', 'recent', "event('Order Completed').within(7 days).count() >= 2", 'audience'),
  compile('cmp_fav', 'fav', "event('Order Completed').mode(property('category'), 1)", 'trait'),
]);

let n = 0;
const order = (at: number, category: string) => ({
  type: 'track' as const,
  event: 'Order Completed',
  timestamp: at,
  arrivedAt: at,
  sourceId: 'src',
  messageId: `m-${++n}`,
  properties: { category },
  traits: {},
  context: {},
});

describe('snapshotHeld / restoreHeld (the undo of a failed write-behind chunk)', () => {
  it('puts the profile back as it was before the chunk, in the same object', () => {
    const profile: StoredProfile = emptyProfile({ spaceId: 'spa_1', profileId: 'pro_1' });
    const t0 = Date.parse('2026-12-01T00:00:00Z');
    applyEvent(profile, order(t0, 'shoes'), ordered, { maxEvents: 200, now: t0 });
    profile.changeSeq = 3;
    const before = JSON.parse(JSON.stringify(profile)) as unknown;
    const marks = profile.events.map((e) => e.inc);

    const snapshot = snapshotHeld(profile);
    // The chunk that fails: more events, a new field, a changed nested state.
    applyEvent(profile, order(t0 + 1000, 'hats'), ordered, { maxEvents: 200, now: t0 + 1000 });
    applyEvent(profile, order(t0 + 2000, 'hats'), ordered, { maxEvents: 200, now: t0 + 2000 });
    profile.accounts = ['acc_1'];
    profile.changeSeq = 4;
    expect(profile.values.cmp_orders!.value).toBe(3);
    const held = profile;

    restoreHeld(profile, snapshot);
    expect(profile).toBe(held);
    expect(JSON.parse(JSON.stringify(profile))).toEqual(before);
    expect(profile.values.cmp_orders!.value).toBe(1);
    expect(profile.accounts).toBeUndefined();
    expect(profile.events.map((e) => e.inc)).toEqual(marks);
    // The restored state evaluates on as if the failed chunk never happened.
    applyEvent(profile, order(t0 + 3000, 'hats'), ordered, { maxEvents: 200, now: t0 + 3000 });
    expect(profile.values.cmp_orders!.value).toBe(2);
    expect(profile.values.cmp_recent!.value).toBe(true);
  });

  it('copies nested states: changing the profile after the snapshot leaves the snapshot alone', () => {
    const profile: StoredProfile = emptyProfile({ spaceId: 'spa_1', profileId: 'pro_2' });
    profile.traits.plan = 'pro';
    const snapshot = snapshotHeld(profile);
    profile.traits.plan = 'free';
    profile.externalIds.push({ type: 'email', id: 'a@example.com' });
    restoreHeld(profile, snapshot);
    expect(profile.traits).toEqual({ plan: 'pro' });
    expect(profile.externalIds).toEqual([]);
  });
});
