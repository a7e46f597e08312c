import { applyEvent, compileComputation, dependencyOrder, nextChangeAt, parseQuery, type EngineEvent, type ProfileState } from './index';

const DAY = 86_400_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const keys = new Set(['buyers', 'revenue', 'big_buyers']);
const computations = dependencyOrder([
  compileComputation({ id: 'aud_big', key: 'big_buyers', class: 'audience', ast: parseQuery("trait('buyers') = true AND trait('revenue') > 100", { type: 'users' }), countsEventsFrom: 0, definitionVersion: 1 }, keys),
  compileComputation({ id: 'aud_b', key: 'buyers', class: 'audience', ast: parseQuery("event('Order Completed').within(30 days).count() >= 1", { type: 'users' }), countsEventsFrom: 0, definitionVersion: 1 }, keys),
  compileComputation({ id: 'tra_r', key: 'revenue', class: 'trait', ast: parseQuery("event('Order Completed').sum(property('revenue'))", { type: 'trait' }), countsEventsFrom: 0, definitionVersion: 1 }, keys),
]);
const order = (id: string, at: number, revenue: number): EngineEvent & { arrivedAt: number } => ({
  type: 'track', event: 'Order Completed', timestamp: at, arrivedAt: at, sourceId: 's', messageId: id, properties: { revenue }, traits: {}, context: {},
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

  it('an old event enters and is already expired when its window has passed', () => {
    const state: ProfileState = { events: [], traits: {}, values: {} };
    const now = T0 + 40 * DAY;
    expect(summary(applyEvent(state, order('old', T0, 10), computations, { maxEvents: 100, now }))).toEqual([['revenue', null, 10]]);
    expect(nextChangeAt(state, computations, now)).toBeNull();
  });
});
