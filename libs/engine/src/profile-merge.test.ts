// Profile merges (issue 18, defect 1): the states combine, so a merge keeps
// every event either profile counted, not only the bounded history's.
import { parseQuery } from './parser';
import {
  applyEvent,
  compileComputation,
  mergeProfileStates,
  needsHistory,
  reevaluate,
  type CompiledComputation,
  type ProfileState,
} from './profile-evaluation';
import { absorbProfile } from './profile-merge';
import type { EngineEvent } from './event';

const MINUTE = 60_000;
const T0 = Date.parse('2026-02-01T00:00:00Z');
const MAX_EVENTS = 200; // the evaluator's default bound
const computation = (id: string, query: string, type: 'trait' | 'users' = 'trait'): CompiledComputation =>
  compileComputation(
    {
      id,
      key: id,
      class: type === 'trait' ? 'trait' : 'audience',
      ast: parseQuery(query, { type }),
      countsEventsFrom: 0,
      definitionVersion: 1,
    },
    new Set(),
  );
const views = computation('views', "event('Product Viewed').count()");
const ordered = [
  views,
  computation('spent', "event('Product Viewed').sum(property('price'))"),
  computation('first_sku', "event('Product Viewed').first(property('sku'))"),
  computation('recent', "event('Product Viewed').within(7 days).count() >= 300", 'users'),
];

const viewed = (id: string, at: number, price = 1): EngineEvent & { arrivedAt: number } => ({
  type: 'track',
  event: 'Product Viewed',
  timestamp: at,
  arrivedAt: at,
  sourceId: 'web',
  messageId: id,
  eventId: `web:${id}`,
  properties: { price, sku: id },
  traits: {},
  context: {},
});

/** A profile that viewed `n` products, one a minute from `start`. */
function profileWith(prefix: string, n: number, start: number): ProfileState {
  const p: ProfileState = { events: [], traits: {}, values: {} };
  for (let i = 0; i < n; i++)
    applyEvent(p, viewed(`${prefix}${i}`, start + i * MINUTE), ordered, { maxEvents: MAX_EVENTS, now: start + i * MINUTE });
  return p;
}

const valuesOf = (p: ProfileState) => Object.fromEntries(ordered.map((c) => [c.key, p.values[c.id]?.value]));

describe('profile merge (issue 18)', () => {
  it.each([
    [10, 21],
    [190, 381],
    [250, 501],
  ])('N=%i views on each side, a merge, one more view: count %i (the identity step: absorb, store, re-evaluate)', (n, want) => {
    // Browsing anonymously first, then signed in (the report's order).
    const anonymous = profileWith('a', n, T0);
    const user = profileWith('u', n, T0 + 1000 * MINUTE);
    const at = T0 + 2000 * MINUTE;
    absorbProfile(user, anonymous, { maxEvents: MAX_EVENTS });
    // Whatever happens between absorb and the next evaluation, the pending merge is plain JSON.
    const survivor = JSON.parse(JSON.stringify(user)) as ProfileState;
    expect(needsHistory(survivor, ordered)).toBe(true);
    reevaluate(survivor, ordered, () => true, at);
    expect(valuesOf(survivor)).toEqual({ views: 2 * n, spent: 2 * n, first_sku: 'a0', recent: 2 * n >= 300 });
    applyEvent(survivor, viewed('after', at), ordered, { maxEvents: MAX_EVENTS, now: at });
    expect(valuesOf(survivor)).toEqual({ views: want, spent: want, first_sku: 'a0', recent: want >= 300 });
    // The history stays the Profile API's bounded recent events, every one counted by the states already.
    expect(survivor.events.length).toBe(Math.min(want, MAX_EVENTS));
    expect(needsHistory(survivor, ordered)).toBe(false);
    reevaluate(survivor, ordered, () => true, at + MINUTE);
    expect(survivor.values[views.id]!.value).toBe(want);
  });

  it('mergeProfileStates: the same in one call; the merged profile is left as it was', () => {
    const user = profileWith('u', 250, T0);
    const anonymous = profileWith('a', 250, T0 - 1000 * MINUTE);
    const before = JSON.stringify(anonymous);
    mergeProfileStates(user, anonymous, ordered, T0 + 2000 * MINUTE, { maxEvents: MAX_EVENTS });
    expect(JSON.stringify(anonymous)).toBe(before);
    applyEvent(user, viewed('after', T0 + 2000 * MINUTE), ordered, { maxEvents: MAX_EVENTS, now: T0 + 2000 * MINUTE });
    // first() by event time: the anonymous profile's views came first.
    expect(valuesOf(user)).toEqual({ views: 501, spent: 501, first_sku: 'a0', recent: true });
  });

  it('an event both profiles counted (a redelivery that reached the survivor before the merge) counts once', () => {
    const user = profileWith('u', 250, T0);
    const anonymous = profileWith('a', 250, T0 + 1000 * MINUTE);
    const at = T0 + 2000 * MINUTE;
    // The anonymous profile's latest view, redelivered to the user just before the merge.
    applyEvent(user, { ...viewed('a249', T0 + 1249 * MINUTE, 1), arrivedAt: at }, ordered, { maxEvents: MAX_EVENTS, now: at });
    expect(user.values[views.id]!.value).toBe(251);
    mergeProfileStates(user, anonymous, ordered, at, { maxEvents: MAX_EVENTS });
    reevaluate(user, ordered, () => true, at);
    expect(valuesOf(user)).toEqual({ views: 500, spent: 500, first_sku: 'u0', recent: true });
  });

  it('a duplicate only one bounded history still holds counts twice (the documented limit)', () => {
    const user = profileWith('u', 5, T0);
    const anonymous = profileWith('a', 5, T0 + 10 * MINUTE);
    const at = T0 + 20 * MINUTE;
    applyEvent(user, { ...viewed('a0', T0 + 10 * MINUTE), arrivedAt: at }, ordered, { maxEvents: MAX_EVENTS, now: at });
    // The anonymous profile's history no longer holds it (cut to its bound).
    anonymous.events = anonymous.events.filter((e) => e.messageId !== 'a0');
    mergeProfileStates(user, anonymous, ordered, at, { maxEvents: MAX_EVENTS });
    reevaluate(user, ordered, () => true, at);
    expect(user.values[views.id]!.value).toBe(11);
  });

  it('a computation the merged profile has no state of yet is built from its history, then combined', () => {
    const user = profileWith('u', 250, T0);
    const anonymous = profileWith('a', 3, T0 + 1000 * MINUTE);
    const added = computation('paid', "event('Product Viewed').where(property('price') >= 1).count()");
    const withAdded = [...ordered, added];
    // The user was evaluated since the computation was added; the anonymous profile was not.
    reevaluate(user, withAdded, () => true, T0 + 1000 * MINUTE);
    expect(user.values[added.id]!.value).toBe(MAX_EVENTS); // built from the user's bounded history
    mergeProfileStates(user, anonymous, withAdded, T0 + 2000 * MINUTE, { maxEvents: MAX_EVENTS });
    reevaluate(user, withAdded, () => true, T0 + 2000 * MINUTE);
    expect(user.values[added.id]!.value).toBe(MAX_EVENTS + 3);
    expect(user.values[views.id]!.value).toBe(253);
  });
});
