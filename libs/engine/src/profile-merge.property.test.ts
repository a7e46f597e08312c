// Profile merges (issue 18): two profiles build their states event by event,
// often from more events than the bounded history keeps, then merge (the
// identity step's way: absorbProfile then reevaluate; or mergeProfileStates)
// and take more events. Every computation's value must equal the reference
// evaluator over the union of both profiles' events, for every reducer,
// window and filter the generators produce. Also pinned:
// - duplicates (one event applied to both, its redelivery reaching the
//   survivor before the merge) count once while both bounded histories hold
//   them, twice otherwise (the documented rule, profile-merge.ts);
// - a computation one side has no state of is built from that side's events
//   in the bounded history, as any new computation is;
// - countsEventsFrom: a copy that arrived before it does not count.
import fc from 'fast-check';
import { eventIdOf, type EngineEvent, type Value } from './event';
import { arrivals, audienceQuery, ctxOf, DAY, historyOf, T0, toEvents, traitQuery, traits } from './incremental/arbitraries';
import { parseQuery } from './parser';
import {
  applyEvent,
  compileComputation,
  mergeProfileStates,
  reevaluate,
  type CompiledComputation,
  type ProfileState,
} from './profile-evaluation';
import { absorbProfile } from './profile-merge';
import { evaluateReference } from './reference-evaluator';

const definition = fc.record({
  q: fc.oneof(
    traitQuery.map((q) => ({ text: q, type: 'trait' as const })),
    audienceQuery.map((q) => ({ text: q, type: 'users' as const })),
  ),
  // Most count every event; some only those that arrived from an instant on.
  from: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0, max: 8 * DAY }).map((x) => T0 + x),
  ),
});

const MAX_EVENTS = 40;
const scenario = fc.record({
  defs: fc.array(definition, { minLength: 1, maxLength: 3 }),
  hist: historyOf(MAX_EVENTS),
  // Per pre-merge arrival: 0-4 the survivor, 5-8 the merged profile, 9 the merged profile then (redelivered) the survivor.
  side: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: MAX_EVENTS, maxLength: MAX_EVENTS }),
  // The bounded history: mostly far shorter than a side's events.
  maxEvents: fc.constantFrom(3, 8, 100),
  // The last computation is missing from one side's states (added after that profile was last evaluated).
  lacking: fc.constantFrom('none', 'none', 'survivor', 'merged'),
  oneCall: fc.boolean(),
  tr: traits,
  probes: fc.array(fc.integer({ min: 0, max: 10 * DAY }), { minLength: 1, maxLength: 3 }),
});

type Copy = { ev: EngineEvent; arrivedAt: number };

describe('profile merge == reference over the union of both histories', () => {
  it('values after a merge and after later events, at later instants', () => {
    fc.assert(
      fc.property(scenario, ({ defs, hist: [raw, order, late], side, maxEvents, lacking, oneCall, tr, probes }) => {
        const ordered: CompiledComputation[] = defs.map((d, i) =>
          compileComputation(
            {
              id: `c${i}`,
              key: `k${i}`,
              class: d.q.type === 'trait' ? 'trait' : 'audience',
              ast: parseQuery(d.q.text, { type: d.q.type }),
              countsEventsFrom: d.from,
              definitionVersion: 1,
            },
            new Set(),
          ),
        );
        const last = ordered[ordered.length - 1]!;
        const ctx = ctxOf(tr);
        const survivor: ProfileState = { events: [], traits: { ...ctx.traits }, values: {} };
        const merged: ProfileState = { events: [], traits: { ...ctx.traits }, values: {} };
        const orderedOf = (who: 'survivor' | 'merged') => (lacking === who ? ordered.slice(0, -1) : ordered);
        const sCopies: Copy[] = [];
        const mCopies: Copy[] = [];
        const apply = (who: 'survivor' | 'merged', ev: EngineEvent, now: number) => {
          applyEvent(who === 'survivor' ? survivor : merged, { ...ev, arrivedAt: now }, orderedOf(who), { maxEvents, now });
          (who === 'survivor' ? sCopies : mCopies).push({ ev, arrivedAt: now });
        };

        const all = arrivals(toEvents(raw), order, late);
        const cut = Math.ceil((all.length * 3) / 4);
        const redelivered: EngineEvent[] = [];
        all.slice(0, cut).forEach(({ ev, now }, k) => {
          apply(side[k]! < 5 ? 'survivor' : 'merged', ev, now);
          if (side[k] === 9) redelivered.push(ev);
        });
        const mergeNow = cut > 0 ? all[cut - 1]!.now : T0;
        for (const ev of redelivered) apply('survivor', ev, mergeNow);

        // What the documented rules say each computation counts: per event copy.
        const sHeld = new Map(survivor.events.map((e) => [eventIdOf(e), e.arrivedAt]));
        const mHeld = new Set(merged.events.map(eventIdOf));
        const counts = (c: CompiledComputation, x: Copy) => x.arrivedAt >= c.countsEventsFrom;
        const expectedEvents = (c: CompiledComputation, later: Copy[]): EngineEvent[] => {
          const fromSurvivor = lacking === 'survivor' && c === last ? sCopies.filter((x) => sHeld.has(eventIdOf(x.ev))) : sCopies;
          const fromMerged =
            lacking === 'merged' && c === last
              ? mCopies.filter((x) => mHeld.has(eventIdOf(x.ev)) && !sHeld.has(eventIdOf(x.ev)))
              : mCopies.filter((x) => {
                  const id = eventIdOf(x.ev);
                  // Recognised (both histories hold it) and counted by the survivor: the merged copy is out.
                  return !(mHeld.has(id) && sHeld.has(id) && counts(c, { ev: x.ev, arrivedAt: sHeld.get(id)! }));
                });
          return [...fromSurvivor, ...fromMerged, ...later].filter((x) => counts(c, x)).map((x) => x.ev);
        };
        const expectValues = (at: number, later: Copy[], stage: string) => {
          const got: Record<string, Value> = {};
          const want: Record<string, Value> = {};
          for (const c of ordered) {
            got[c.key] = survivor.values[c.id]!.value;
            want[c.key] = evaluateReference(c.ast, { events: expectedEvents(c, later), traits: ctx.traits, computed: {}, now: at });
          }
          expect({ stage, at, values: got }).toEqual({ stage, at, values: want });
        };

        if (oneCall) mergeProfileStates(survivor, merged, ordered, mergeNow, { maxEvents });
        else absorbProfile(survivor, merged, { maxEvents });
        reevaluate(survivor, ordered, () => true, mergeNow);
        expectValues(mergeNow, [], 'merged');
        // Stored and loaded (Redis): plain JSON; every history event counted by the combined states, none pending.
        const stored = JSON.parse(JSON.stringify(survivor)) as ProfileState;
        expect(stored.incremental?.m).toBeUndefined();
        expect(stored.events.length).toBeLessThanOrEqual(maxEvents);
        expect(stored.events.filter((e) => e.inc !== stored.incremental!.tok)).toEqual([]);
        Object.assign(survivor, stored);

        const later: Copy[] = [];
        for (const { ev, now } of all.slice(cut)) {
          applyEvent(survivor, { ...ev, arrivedAt: now }, ordered, { maxEvents, now });
          later.push({ ev, arrivedAt: now });
        }
        const h = all.length ? all[all.length - 1]!.now : T0;
        for (const T of [0, ...probes].map((p) => h + p).sort((x, y) => x - y)) {
          reevaluate(survivor, ordered, () => true, T);
          expectValues(T, later, 'later');
        }
      }),
      { numRuns: 300 },
    );
  });
});
