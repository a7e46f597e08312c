import fc from 'fast-check';
import type { QueryType } from '../ast';
import type { EngineEvent } from '../event';
import { parseQuery } from '../parser';
import { evaluateReference } from '../reference-evaluator';
import { compileIncremental, type IncrementalState } from './evaluator';
import { FALLBACK_CAP } from './plan';
import { UNIQUE_CAP } from './stores';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.parse('2026-01-01T00:00:00Z');
let seq = 0;
const track = (event: string, at: number, properties: Record<string, unknown> = {}): EngineEvent => ({
  type: 'track',
  event,
  timestamp: at,
  sourceId: 'src',
  messageId: `m${String(++seq).padStart(6, '0')}`,
  properties,
  traits: {},
  context: {},
});
const noCtx = { traits: {}, computed: {} };
const compile = (q: string, type: QueryType = 'users') => compileIncremental(parseQuery(q, { type }));
const bytes = (s: IncrementalState) => JSON.stringify(s).length;

describe('incremental evaluator: what the design promises', () => {
  it('a user exits 30 days after the last qualifying order, with no new event', () => {
    const inc = compile("event('Order Completed').within(30 days).count() >= 1");
    const s = inc.initState();
    inc.apply(s, track('Order Completed', T0), T0);
    inc.apply(s, track('Order Completed', T0 + 5 * DAY), T0 + 5 * DAY);
    expect(inc.valueAt(s, noCtx, T0 + 5 * DAY)).toBe(true);
    expect(inc.nextChangeAt(s, noCtx, T0 + 5 * DAY)).toBe(T0 + 35 * DAY + 1);
    expect(inc.valueAt(s, noCtx, T0 + 35 * DAY)).toBe(true);
    expect(inc.valueAt(s, noCtx, T0 + 35 * DAY + 1)).toBe(false);
    expect(inc.nextChangeAt(s, noCtx, T0 + 35 * DAY + 1)).toBeNull();
  });

  it('an old event arriving late is already out of its window; a future-dated one enters when its time comes', () => {
    const inc = compile("event('A').within(1 day).count()", 'trait');
    const s = inc.initState();
    const now = T0 + 10 * DAY;
    inc.apply(s, track('A', T0), now);
    inc.apply(s, track('A', now + 2 * HOUR), now);
    expect(inc.valueAt(s, noCtx, now)).toBe(0);
    expect(inc.nextChangeAt(s, noCtx, now)).toBe(now + 2 * HOUR);
    expect(inc.valueAt(s, noCtx, now + 2 * HOUR)).toBe(1);
  });

  it('state bounds: a thresholded windowed count keeps n times, all-time sums O(1), max keeps the undominated', () => {
    const count = compile("event('P').within(30 days).count() >= 3");
    const sum = compile("event('P').sum(property('v'))", 'trait');
    const max = compile("event('P').within(30 days).max(property('v'))", 'trait');
    const states = [count.initState(), sum.initState(), max.initState()];
    for (let i = 0; i < 2000; i++) {
      const ev = track('P', T0 + i * HOUR, { v: 1000 - i });
      count.apply(states[0]!, ev, ev.timestamp);
      sum.apply(states[1]!, ev, ev.timestamp);
      max.apply(states[2]!, ev, ev.timestamp);
    }
    expect(states[0]![0]).toHaveLength(3);
    expect(states[1]![0]).toEqual({ n: 2000, s: (1000 + -999) * 1000 });
    // Decreasing values: every one in the window is a possible future max; nothing older than 30 days stays.
    expect((states[2]![0] as unknown[]).length).toBeLessThanOrEqual(30 * 24 + 1);
    expect(bytes(states[0]!)).toBeLessThan(80);
    expect(bytes(states[1]!)).toBeLessThan(60);
  });

  it('unique and mode over all time stay bounded by their caps; fallback keeps at most FALLBACK_CAP events', () => {
    const uniq = compile("event('P').unique(property('v')).count()", 'trait');
    const funnel = compile("event('P').where(event('R').within(parent: 1 day).count() >= 1).count() >= 1");
    const u = uniq.initState();
    const f = funnel.initState();
    for (let i = 0; i < 500; i++) {
      uniq.apply(u, track('P', T0 + i, { v: i }));
      funnel.apply(f, track('P', T0 + i, { v: i }));
    }
    expect(uniq.valueAt(u, noCtx, T0 + DAY)).toBe(UNIQUE_CAP);
    expect(f[0]).toHaveLength(FALLBACK_CAP);
    expect(funnel.leafKinds).toEqual(['fallback']);
  });

  it('chooses the plan per leaf', () => {
    expect(
      compile("event('A').count() >= 1 AND event('A').within(7 days).count() > 2 AND event('B').between(1 day, 3 days).count() = 0")
        .leafKinds,
    ).toEqual(['agg', 'list:keepLast', 'list:all']);
    expect(compile("event('A').within(7 days).last(property('x'))", 'trait').leafKinds).toEqual(['list:keepLast']);
    expect(compile("event('A').within(7 days).min(property('x'))", 'trait').leafKinds).toEqual(['list:dominance']);
    expect(compile("event('A').where(property('p') >= trait('avg')).count() >= 1").leafKinds).toEqual(['fallback']);
    // The same leaf used twice is stored once; an exact use disables the threshold cut.
    expect(compile("event('A').within(7 days).count() >= 1 OR event('A').within(7 days).count() = trait('n')").leafKinds).toEqual([
      'list:all',
    ]);
  });

  it('only the events a definition reads reach it', () => {
    expect(
      [
        ...compile("event('A').count() >= 1 OR event('B').where(event('C').within(parent: 1 day).count() >= 1).count() >= 1").eventNames,
      ].sort(),
    ).toEqual(['A', 'B', 'C']);
  });

  it('fallback leaves (funnels, trait() or relative dates inside where) know their wake-ups too', () => {
    const now = T0 + 10 * DAY;
    // Window exit of a funnel: the bought event leaves the 2-day window.
    const funnel = compile("event('P').where(event('R').within(parent: 1 day).count() >= 1).within(2 days).count() >= 1");
    const f = funnel.initState();
    funnel.apply(f, track('P', now - DAY), now);
    funnel.apply(f, track('R', now - DAY + HOUR), now);
    expect(funnel.valueAt(f, noCtx, now)).toBe(true);
    expect(funnel.nextChangeAt(f, noCtx, now)).toBe(now + DAY + 1);
    // A relative date inside where: the event stops matching 3 days after its due date.
    const due = compile("event('P').where(property('due').within_last(3 days)).count() >= 1");
    const d = due.initState();
    due.apply(d, track('P', now - HOUR, { due: new Date(now - DAY).toISOString() }), now);
    expect(due.valueAt(d, noCtx, now)).toBe(true);
    expect(due.nextChangeAt(d, noCtx, now)).toBe(now + 2 * DAY + 1);
    // trait() inside where: the value moves only when the trait does (ctx), so no wake-up.
    const vs = compile("event('P').where(property('v') >= trait('avg')).within(5 days).count()", 'trait');
    const v = vs.initState();
    vs.apply(v, track('P', now - DAY, { v: 10 }), now);
    expect(vs.valueAt(v, { traits: { avg: 5 }, computed: {} }, now)).toBe(1);
    expect(vs.valueAt(v, { traits: { avg: 50 }, computed: {} }, now)).toBe(0);
    expect(vs.nextChangeAt(v, { traits: { avg: 5 }, computed: {} }, now)).toBe(now + 4 * DAY + 1);
  });

  it('equal timestamps: first/last/unique break ties by tieKey(messageId) in both evaluators, in any arrival order', () => {
    const at = T0 + DAY;
    const tied = ['a', 'b', 'c', 'd'].map((x, i) => ({ ...track('T', at, { x }), messageId: `0f8fad5b-d9cb-469f-a165-70867728950${i}` }));
    for (const q of [
      "event('T').first(property('x'))",
      "event('T').last(property('x'))",
      "event('T').unique(property('x'))",
      "event('T').within(3 days).first(property('x'))",
      "event('T').within(3 days).last(property('x'))",
      "event('T').within(3 days).unique(property('x'))",
    ]) {
      const ast = parseQuery(q, { type: 'trait' });
      const want = evaluateReference(ast, { events: tied, traits: {}, computed: {}, now: at + HOUR });
      for (const order of [tied, [...tied].reverse(), [tied[2]!, tied[0]!, tied[3]!, tied[1]!]]) {
        const inc = compileIncremental(ast);
        const s = inc.initState();
        for (const e of order) inc.apply(s, e, at + HOUR);
        expect({ q, value: inc.valueAt(s, noCtx, at + HOUR) }).toEqual({ q, value: want });
      }
    }
  });

  it('ANY / ALL / ALL NOT over the users of an account, each user with its own state', () => {
    const queries = [
      "ANY event('Shoes Bought').within(7 days).count() >= 1",
      "ALL ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )",
      "ALL NOT event('Shoes Bought').count() >= 1",
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...queries),
        fc.array(
          fc.record({ buys: fc.array(fc.integer({ min: 0, max: 10 * DAY }), { maxLength: 3 }), spend: fc.integer({ min: 100, max: 300 }) }),
          { maxLength: 3 },
        ),
        fc.integer({ min: 0, max: 10 * DAY }),
        (q, users, offset) => {
          const ast = parseQuery(q, { type: 'accounts' });
          const inc = compileIncremental(ast);
          const now = T0 + 10 * DAY;
          const built = users.map((u) => {
            const events = u.buys.map((b) => track('Shoes Bought', T0 + b));
            const state = inc.initState();
            for (const e of events) inc.apply(state, e, now);
            return { events, state, traits: { total_spend: u.spend }, computed: {} };
          });
          const T = now + offset;
          const ref = evaluateReference(ast, {
            events: [],
            traits: {},
            computed: {},
            now: T,
            users: built.map((u) => ({ events: u.events, traits: u.traits, computed: {}, now: T })),
          });
          expect(inc.valueAt(inc.initState(), { traits: {}, computed: {}, users: built }, T)).toBe(ref);
        },
      ),
      { numRuns: 200 },
    );
  });
});
