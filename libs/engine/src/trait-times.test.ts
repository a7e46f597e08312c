import { applyEvent, compileComputation, parseQuery, takeTraitTimes, type EngineEvent, type ProfileState } from './index';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const pro = [
  compileComputation(
    {
      id: 'aud_pro',
      key: 'pro_users',
      class: 'audience',
      ast: parseQuery("trait('plan') = 'pro'", { type: 'users' }),
      countsEventsFrom: 0,
      definitionVersion: 1,
    },
    new Set(['pro_users']),
  ),
];
const identify = (id: string, at: number, traits: Record<string, unknown>): EngineEvent & { arrivedAt: number } => ({
  type: 'identify',
  timestamp: at,
  arrivedAt: T0 + 1_000_000, // processed long after, in whatever order
  sourceId: 's',
  messageId: id,
  properties: {},
  traits,
  context: {},
});
const fresh = (): ProfileState => ({ events: [], traits: {}, values: {} });
const apply = (state: ProfileState, e: EngineEvent & { arrivedAt: number }) =>
  applyEvent(state, e, pro, { maxEvents: 100, now: T0 + 1_000_000 }).map((c) => [c.computation.key, c.value]);

describe('traits by event time', () => {
  it('an older identify processed after a newer one does not overwrite its traits, and changes nothing', () => {
    const state = fresh();
    expect(apply(state, identify('login', T0 + 4, { plan: 'pro', first_name: 'Ada' }))).toEqual([['pro_users', true]]);
    // The anonymous identify was made first but reached the evaluator last (a merge re-addressed it).
    expect(apply(state, identify('anon', T0 + 1, { plan: 'free', email: 'ada@example.com' }))).toEqual([]);
    expect(state.traits).toEqual({ plan: 'pro', first_name: 'Ada', email: 'ada@example.com' });
    expect(state.traitTimes).toEqual({ plan: T0 + 4, first_name: T0 + 4, email: T0 + 1 });
  });

  it('a newer call overwrites, the same value moves the time on, and a trait stored without a time takes any call', () => {
    const state = fresh();
    apply(state, identify('a', T0 + 1, { plan: 'free' }));
    apply(state, identify('b', T0 + 5, { plan: 'free' })); // same value: the time still moves to 5
    apply(state, identify('c', T0 + 3, { plan: 'pro' }));
    expect(state.traits.plan).toBe('free');
    expect(apply(state, identify('d', T0 + 6, { plan: 'pro' }))).toEqual([['pro_users', true]]);

    const legacy: ProfileState = { events: [], traits: { plan: 'free' }, values: {} }; // stored before times existed
    apply(legacy, identify('e', T0, { plan: 'pro' }));
    expect(legacy.traits.plan).toBe('pro');
  });

  it('a merge keeps the survivor traits and brings the times of the traits it takes', () => {
    const survivor: ProfileState = { ...fresh(), traits: { plan: 'pro' }, traitTimes: { plan: T0 + 4 } };
    const merged: ProfileState = { ...fresh(), traits: { plan: 'free', email: 'a@b.co' }, traitTimes: { plan: T0 + 1, email: T0 + 1 } };
    takeTraitTimes(survivor, merged, ['email']);
    expect(survivor.traitTimes).toEqual({ plan: T0 + 4, email: T0 + 1 });
  });
});
