// The service path (applyEvent / reevaluate on ProfileState) agrees with the
// reference evaluator when another profile's history is appended as events
// the states have not seen (what a backfill does; within maxEvents, so the
// union is complete). Merges combine states instead: profile-merge.property.test.ts.
import fc from 'fast-check';
import type { EngineEvent, Value } from './event';
import { parseQuery } from './parser';
import {
  applyEvent,
  compileComputation,
  dependencyOrder,
  reevaluate,
  type CompiledComputation,
  type ProfileState,
} from './profile-evaluation';
import { evaluateReference } from './reference-evaluator';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.parse('2026-05-01T00:00:00Z');
const DEFS: Array<[string, 'audience' | 'trait', string]> = [
  ['recent', 'audience', "event('A').within(2 days).count() >= 1"],
  ['twice', 'audience', "event('A').count() >= 2"],
  ['total', 'trait', "event('A').sum(property('x'))"],
  ['last_b', 'trait', "event('B').within(3 days).last(property('x'))"],
  ['chain', 'audience', "trait('recent') = true AND trait('total') > 3"],
  ['funnel', 'audience', "event('A').where(event('B').within(parent: 1 day).count() >= 1).count() >= 1"],
];
const keys = new Set(DEFS.map((d) => d[0]));
const ordered: CompiledComputation[] = dependencyOrder(
  DEFS.map(([key, cls, q], i) =>
    compileComputation(
      {
        id: `c${i}`,
        key,
        class: cls,
        ast: parseQuery(q, { type: cls === 'trait' ? 'trait' : 'users' }),
        countsEventsFrom: 0,
        definitionVersion: 1,
      },
      keys,
    ),
  ),
);

function referenceValues(events: EngineEvent[], now: number): Record<string, Value> {
  const computed: Record<string, Value> = {};
  for (const c of ordered) computed[c.key] = evaluateReference(c.ast, { events, traits: {}, computed, now });
  return computed;
}

const raw = fc.array(
  fc.record({
    name: fc.constantFrom('A', 'B'),
    at: fc.integer({ min: 0, max: 6 * DAY }),
    x: fc.integer({ min: 0, max: 3 }),
    late: fc.integer({ min: 0, max: 2 * DAY }),
    side: fc.boolean(),
  }),
  { maxLength: 16 },
);

describe('profile evaluation == reference, across merges', () => {
  it('values after events and a merge of two profiles', () => {
    fc.assert(
      fc.property(raw, fc.integer({ min: 0, max: 4 * DAY }), (rs, after) => {
        const events = rs.map((r, i) => ({
          ev: {
            type: 'track',
            event: r.name,
            timestamp: T0 + r.at,
            sourceId: 's',
            messageId: `m${String(i).padStart(3, '0')}`,
            properties: { x: r.x },
            traits: {},
            context: {},
          } as EngineEvent,
          now: T0 + r.at + r.late,
          side: r.side,
        }));
        events.sort((a, b) => a.now - b.now);
        const a: ProfileState = { events: [], traits: {}, values: {} };
        const b: ProfileState = { events: [], traits: {}, values: {} };
        for (const { ev, now, side } of events) applyEvent(side ? a : b, { ...ev, arrivedAt: now }, ordered, { maxEvents: 100, now });
        const last = events.length ? events[events.length - 1]!.now : T0;
        // The other profile's history appended unseen, then everything re-evaluated.
        const survivor = JSON.parse(JSON.stringify(a)) as ProfileState;
        const seen = new Set(survivor.events.map((e) => e.messageId));
        survivor.events.push(...b.events.filter((e) => !seen.has(e.messageId)));
        survivor.events.sort((x, y) => x.timestamp - y.timestamp || (x.messageId < y.messageId ? -1 : 1));
        const now = last + after;
        reevaluate(survivor, ordered, () => true, now);
        const got = Object.fromEntries(ordered.map((c) => [c.key, survivor.values[c.id]!.value]));
        expect(got).toEqual(
          referenceValues(
            events.map((e) => e.ev),
            now,
          ),
        );
      }),
      { numRuns: 300 },
    );
  });
});

describe('the realtime path touches only what an event concerns', () => {
  // applyEvent with the same `ordered` list each time takes the indexed path
  // (only the computations the event's name, changed traits or context concern,
  // and their readers); a copy of the list each time (a list it never saw)
  // checks every computation. Both must report the same changes and values.
  const defs: Array<[string, 'audience' | 'trait', string]> = [
    ['views', 'trait', "event('A').count()"],
    ['pro', 'audience', "trait('plan') = 'pro'"],
    ['big', 'audience', "trait('n') > 2 AND event('A').count() >= 1"],
    ['shoe', 'audience', "event('B').where(context('page.url').contains('shoe')).count() >= 1"],
    ['last_b', 'trait', "event('B').last(property('x'))"],
    ['chain', 'audience', "trait('views') >= 2 AND trait('pro') = true"],
    ['chain2', 'audience', "trait('chain') = true OR trait('last_b') = 3"],
    ['recent', 'audience', "event('A').within(2 days).count() >= 1"],
  ];
  const defKeys = new Set(defs.map((d) => d[0]));
  const list = dependencyOrder(
    defs.map(([key, cls, q], i) =>
      compileComputation(
        {
          id: `d${i}`,
          key,
          class: cls,
          ast: parseQuery(q, { type: cls === 'trait' ? 'trait' : 'users' }),
          countsEventsFrom: 0,
          definitionVersion: 1,
        },
        defKeys,
      ),
    ),
  );
  const calls = fc.array(
    fc.oneof(
      fc.record({
        type: fc.constant('track' as const),
        name: fc.constantFrom('A', 'B', 'C'),
        x: fc.integer({ min: 0, max: 3 }),
        url: fc.constantFrom('/shoe', '/hat'),
        at: fc.integer({ min: 0, max: 4 * DAY }),
      }),
      fc.record({
        type: fc.constant('identify' as const),
        plan: fc.constantFrom('free', 'pro'),
        n: fc.integer({ min: 0, max: 4 }),
        at: fc.integer({ min: 0, max: 4 * DAY }),
      }),
    ),
    { maxLength: 20 },
  );

  it('same changes and values as checking every computation', () => {
    fc.assert(
      fc.property(calls, (cs) => {
        const indexed: ProfileState = { events: [], traits: {}, values: {} };
        const full: ProfileState = { events: [], traits: {}, values: {} };
        cs.forEach((c, i) => {
          const ev: EngineEvent =
            c.type === 'track'
              ? {
                  type: 'track',
                  event: c.name,
                  timestamp: T0 + c.at,
                  sourceId: 's',
                  messageId: `m${i}`,
                  properties: { x: c.x },
                  traits: {},
                  context: { page: { url: c.url } },
                }
              : {
                  type: 'identify',
                  timestamp: T0 + c.at,
                  sourceId: 's',
                  messageId: `m${i}`,
                  properties: {},
                  traits: { plan: c.plan, n: c.n },
                  context: {},
                };
          const now = T0 + c.at + 1000;
          const summary = (changes: ReturnType<typeof applyEvent>) => changes.map((ch) => [ch.computation.key, ch.value, ch.previous]);
          const a = applyEvent(indexed, { ...ev, arrivedAt: now }, list, { maxEvents: 100, now });
          const b = applyEvent(full, { ...ev, arrivedAt: now }, [...list], { maxEvents: 100, now });
          expect(summary(a)).toEqual(summary(b));
          expect(indexed.values).toEqual(full.values);
        });
      }),
      { numRuns: 300 },
    );
  });
});
