import {
  applyEvent,
  compileComputation,
  dependencyOrder,
  needsHistory,
  nextChangeAt,
  parseQuery,
  reevaluate,
  type EngineEvent,
  type ProfileState,
} from './index';

const DAY = 86_400_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const keys = new Set(['buyers', 'revenue', 'big_buyers']);
const computations = dependencyOrder([
  compileComputation(
    {
      id: 'aud_big',
      key: 'big_buyers',
      class: 'audience',
      ast: parseQuery("trait('buyers') = true AND trait('revenue') > 100", { type: 'users' }),
      countsEventsFrom: 0,
      definitionVersion: 1,
    },
    keys,
  ),
  compileComputation(
    {
      id: 'aud_b',
      key: 'buyers',
      class: 'audience',
      ast: parseQuery("event('Order Completed').within(30 days).count() >= 1", { type: 'users' }),
      countsEventsFrom: 0,
      definitionVersion: 1,
    },
    keys,
  ),
  compileComputation(
    {
      id: 'tra_r',
      key: 'revenue',
      class: 'trait',
      ast: parseQuery("event('Order Completed').sum(property('revenue'))", { type: 'trait' }),
      countsEventsFrom: 0,
      definitionVersion: 1,
    },
    keys,
  ),
]);
const order = (id: string, at: number, revenue: number): EngineEvent & { arrivedAt: number } => ({
  type: 'track',
  event: 'Order Completed',
  timestamp: at,
  arrivedAt: at,
  sourceId: 's',
  messageId: id,
  properties: { revenue },
  traits: {},
  context: {},
});
const summary = (changes: ReturnType<typeof applyEvent>) => changes.map((c) => [c.computation.key, c.previous, c.value]);

describe('profile evaluation', () => {
  it('orders computations so that readers come after what they read', () => {
    expect(computations.map((c) => c.key)).toEqual(['buyers', 'revenue', 'big_buyers']);
  });

  it('emits entries and trait changes in one pass, chains included, and only on change', () => {
    const state: ProfileState = { events: [], traits: {}, values: {} };
    expect(summary(applyEvent(state, order('m1', T0, 60), computations, { maxEvents: 100, now: T0 }))).toEqual([
      ['buyers', false, true],
      ['revenue', null, 60],
    ]);
    expect(summary(applyEvent(state, order('m2', T0 + DAY, 50), computations, { maxEvents: 100, now: T0 + DAY }))).toEqual([
      ['revenue', 60, 110],
      ['big_buyers', false, true],
    ]);
    // A redelivered event changes nothing.
    expect(applyEvent(state, order('m2', T0 + DAY, 50), computations, { maxEvents: 100, now: T0 + DAY })).toEqual([]);
  });

  it('knows when the window empties with no new event: 30 days after the last order', () => {
    const state: ProfileState = { events: [], traits: {}, values: {} };
    applyEvent(state, order('m1', T0, 10), computations, { maxEvents: 100, now: T0 });
    applyEvent(state, order('m2', T0 + 5 * DAY, 10), computations, { maxEvents: 100, now: T0 + 5 * DAY });
    expect(nextChangeAt(state, computations, T0 + 5 * DAY)).toBe(T0 + 35 * DAY + 1);
  });

  it('a window that closed with no expiry run (the scheduler was down) is due at once, even after an unrelated event', () => {
    const state: ProfileState = { events: [], traits: {}, values: {} };
    applyEvent(state, order('m1', T0, 10), computations, { maxEvents: 100, now: T0 });
    expect(state.values.aud_b?.value).toBe(true);
    // 40 days on, an event no computation reads: buyers still says true although its window closed on day 30.
    const viewed = { ...order('v1', T0 + 40 * DAY, 0), event: 'Product Viewed' };
    expect(applyEvent(state, viewed, computations, { maxEvents: 100, now: T0 + 40 * DAY })).toEqual([]);
    expect(state.values.aud_b?.value).toBe(true);
    expect(nextChangeAt(state, computations, T0 + 40 * DAY)).toBe(T0 + 40 * DAY);
  });

  it('an old event enters and is already expired when its window has passed', () => {
    const state: ProfileState = { events: [], traits: {}, values: {} };
    const now = T0 + 40 * DAY;
    expect(summary(applyEvent(state, order('old', T0, 10), computations, { maxEvents: 100, now }))).toEqual([['revenue', null, 10]]);
    expect(nextChangeAt(state, computations, now)).toBeNull();
  });
});

describe('evaluation without the stored history in memory', () => {
  it('gives the same changes as with the whole history, and needsHistory says when the history is needed', () => {
    const whole: ProfileState = { events: [], traits: {}, values: {} };
    expect(needsHistory(whole, computations)).toBe(true); // no incremental states yet
    applyEvent(whole, order('m1', T0, 60), computations, { maxEvents: 100, now: T0 });
    applyEvent(whole, order('m2', T0 + DAY, 30), computations, { maxEvents: 100, now: T0 + DAY });
    // As the realtime path loads it: everything but the history.
    const hot: ProfileState = { ...structuredClone(whole), events: [] };
    expect(needsHistory(hot, computations)).toBe(false);

    const next = order('m3', T0 + 2 * DAY, 20);
    const now = T0 + 2 * DAY;
    expect(summary(applyEvent(hot, { ...next }, computations, { maxEvents: 100, now }))).toEqual(
      summary(applyEvent(whole, { ...next }, computations, { maxEvents: 100, now })),
    );
    expect(hot.values).toEqual(whole.values);
    expect(hot.events.map((e) => e.messageId)).toEqual(['m3']);

    // An edited computation is rebuilt from the history; events a merge left unseen must be applied.
    const edited = computations.map((c) => (c.key === 'revenue' ? { ...c, definitionVersion: 2 } : c));
    expect(needsHistory(hot, edited)).toBe(true);
    expect(needsHistory({ ...hot, unseenEvents: true } as ProfileState, computations)).toBe(true);
  });
});

describe('profile evaluation on incremental states', () => {
  const two = compileComputation(
    {
      id: 'aud_2',
      key: 'two_orders',
      class: 'audience',
      ast: parseQuery("event('Order Completed').count() >= 2", { type: 'users' }),
      countsEventsFrom: 0,
      definitionVersion: 1,
    },
    new Set(),
  );
  const count = compileComputation(
    {
      id: 'tra_n',
      key: 'orders',
      class: 'trait',
      ast: parseQuery("event('Order Completed').count()", { type: 'trait' }),
      countsEventsFrom: 0,
      definitionVersion: 1,
    },
    new Set(),
  );

  it('all-time aggregates count every event, beyond the stored history bound', () => {
    const state: ProfileState = { events: [], traits: {}, values: {} };
    for (let i = 0; i < 15; i++) applyEvent(state, order(`n${i}`, T0 + i, 1), [count], { maxEvents: 5, now: T0 + i });
    expect(state.events).toHaveLength(5);
    expect(state.values.tra_n!.value).toBe(15);
  });

  it('events a service adds to the history directly (a merge) are applied on the next evaluation, once', () => {
    const survivor: ProfileState = { events: [], traits: {}, values: {} };
    const merged: ProfileState = { events: [], traits: {}, values: {} };
    applyEvent(survivor, order('s1', T0, 1), [two], { maxEvents: 100, now: T0 });
    applyEvent(merged, order('m1', T0 + 1, 1), [two], { maxEvents: 100, now: T0 + 1 });
    // What the identity step does: the union of both histories, then re-evaluate everything.
    survivor.events.push(...merged.events);
    expect(reevaluate(survivor, [two], () => true, T0 + 2).map((c) => [c.previous, c.value])).toEqual([[false, true]]);
    expect(reevaluate(survivor, [two, count], () => true, T0 + 3).map((c) => [c.computation.key, c.value])).toEqual([['orders', 2]]);
    // Seen once: a later evaluation does not apply them again.
    applyEvent(survivor, order('s2', T0 + 4, 1), [two, count], { maxEvents: 100, now: T0 + 4 });
    expect(survivor.values.tra_n!.value).toBe(3);
  });

  it('profiles stored before incremental states, and edited definitions, are built from the stored history', () => {
    const legacy: ProfileState = { events: [order('a', T0, 1), order('b', T0 + 1, 1)], traits: {}, values: {} };
    expect(reevaluate(legacy, [two], () => true, T0 + 2).map((c) => c.value)).toEqual([true]);
    const edited = { ...two, ast: parseQuery("event('Order Completed').count() >= 3", { type: 'users' }), definitionVersion: 2 };
    expect(reevaluate(legacy, [edited], () => false, T0 + 3).map((c) => [c.previous, c.value])).toEqual([[true, false]]);
    expect(Object.keys(legacy.incremental!.c)).toEqual(['aud_2']);
    expect(legacy.incremental!.c.aud_2!.v).toBe(2);
  });

  it('state stays JSON: a round trip through JSON (as Redis stores it) changes nothing', () => {
    const state: ProfileState = { events: [], traits: {}, values: {} };
    applyEvent(state, order('j1', T0, 7), computations, { maxEvents: 100, now: T0 });
    const copy = JSON.parse(JSON.stringify(state)) as ProfileState;
    applyEvent(state, order('j2', T0 + DAY, 7), computations, { maxEvents: 100, now: T0 + DAY });
    applyEvent(copy, order('j2', T0 + DAY, 7), computations, { maxEvents: 100, now: T0 + DAY });
    expect(copy).toEqual(JSON.parse(JSON.stringify(state)));
  });
});
