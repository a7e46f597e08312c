// Property tests: random definitions (generated as query text, so the parser is
// exercised too) and random histories with out-of-order and future-dated
// events; the incremental evaluator must equal the reference at random times,
// survive a JSON round trip after every event, merge like the union of two
// histories, and nextChangeAt must be exact.
import fc from 'fast-check';
import type { QueryType } from '../ast';
import type { EngineEvent } from '../event';
import { parseQuery } from '../parser';
import { printQuery } from '../printer';
import { evaluateReference } from '../reference-evaluator';
import { arrivals, audienceQuery, ctxOf, DAY, history, HOUR, T0, toEvents, traitQuery, traits } from './arbitraries';
import { compileIncremental, type IncrementalState } from './evaluator';

const roundTrip = (s: IncrementalState): IncrementalState => JSON.parse(JSON.stringify(s)) as IncrementalState;

function check(
  query: string,
  type: QueryType,
  raw: Parameters<typeof toEvents>[0],
  order: number[],
  lateness: number[],
  tr: { t?: number; d?: number },
  probes: number[],
) {
  const ast = parseQuery(query, { type });
  // The printer's normal form parses back to the same AST.
  expect(parseQuery(printQuery(ast), { type })).toEqual(ast);
  const inc = compileIncremental(ast);
  const events = toEvents(raw);
  const ctx = ctxOf(tr);
  const ref = (evs: EngineEvent[], T: number) => evaluateReference(ast, { events: evs, ...ctx, now: T });
  let state = inc.initState();
  const seen: EngineEvent[] = [];
  const arrived = arrivals(events, order, lateness);
  for (const [k, { ev, now }] of arrived.entries()) {
    state = roundTrip(inc.apply(state, ev, now));
    // The scheduler's compaction of untouched leaves must not change answers.
    if (k % 2 === 1) state = inc.advance(state, now);
    seen.push(ev);
    const T = now + (probes[k % probes.length] ?? 0);
    expect({ query, T, value: inc.valueAt(state, ctx, T) }).toEqual({ query, T, value: ref(seen, T) });
  }
  const h = arrived.length ? arrived[arrived.length - 1]!.now : T0;
  // Random instants, plus window edges (where off-by-one errors live).
  const edges = candidates(query, events, tr.d).filter((c) => c >= h);
  const step = Math.max(1, Math.floor(edges.length / 40));
  for (const T of [...probes.map((p) => h + p), ...edges.filter((_, i) => i % step === 0)]) {
    expect({ query, T, value: inc.valueAt(state, ctx, T) }).toEqual({ query, T, value: ref(events, T) });
  }
  return { ast, inc, state, events, ctx, ref, arrived, h };
}

/** Instants where the reference's answer can move: every event/date time shifted by sums of the query's durations. */
function candidates(query: string, events: EngineEvent[], traitDate: number | undefined): number[] {
  const durs = [...query.matchAll(/(\d+) (hour|day)s?/g)].map((m) => Number(m[1]) * (m[2] === 'day' ? DAY : HOUR));
  const shifts = new Set<number>([0]);
  for (const d of durs) for (const s of [...shifts]) shifts.add(s + d).add(s - d);
  const bases = events.flatMap((e) => [e.timestamp, ...(typeof e.properties.d === 'string' ? [Date.parse(e.properties.d)] : [])]);
  if (traitDate !== undefined) bases.push(T0 + traitDate);
  const out = new Set<number>();
  for (const b of bases) for (const s of shifts) for (const k of [-1, 0, 1]) out.add(b + s + k);
  return [...out].sort((x, y) => x - y);
}

const probesArb = fc.array(fc.integer({ min: 0, max: 10 * DAY }), { minLength: 1, maxLength: 4 });

describe('incremental evaluator == reference evaluator', () => {
  it('computed traits at random times, out-of-order histories, JSON round trips', () => {
    fc.assert(
      fc.property(traitQuery, history, traits, probesArb, (q, [raw, order, late], tr, probes) => {
        check(q, 'trait', raw, order, late, tr, probes);
      }),
      { numRuns: 400 },
    );
  });

  it('audiences at random times, out-of-order histories, JSON round trips', () => {
    fc.assert(
      fc.property(audienceQuery, history, traits, probesArb, (q, [raw, order, late], tr, probes) => {
        check(q, 'users', raw, order, late, tr, probes);
      }),
      { numRuns: 400 },
    );
  });

  it('merge(state of history 1, state of history 2) == the union of both histories', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          audienceQuery.map((q) => [q, 'users'] as const),
          traitQuery.map((q) => [q, 'trait'] as const),
        ),
        history,
        fc.array(fc.boolean(), { minLength: 18, maxLength: 18 }),
        traits,
        probesArb,
        ([q, type], [raw, order, late], side, tr, probes) => {
          const ast = parseQuery(q, { type });
          const inc = compileIncremental(ast);
          const events = toEvents(raw);
          const ctx = ctxOf(tr);
          let a = inc.initState();
          let b = inc.initState();
          // The first two thirds go to two profiles that then merge; the rest arrive at the merged profile.
          const all = arrivals(events, order, late);
          const cut = Math.ceil((all.length * 2) / 3);
          all.slice(0, cut).forEach(({ ev, now }, k) => {
            if (side[k]) a = inc.apply(a, ev, now);
            else b = inc.apply(b, ev, now);
          });
          let merged = roundTrip(inc.merge(a, b));
          for (const { ev, now } of all.slice(cut)) merged = inc.apply(merged, ev, now);
          const h = all.length ? all[all.length - 1]!.now : T0;
          for (const p of probes) {
            const T = h + p;
            expect({ q, T, value: inc.valueAt(merged, ctx, T) }).toEqual({
              q,
              T,
              value: evaluateReference(ast, { events, ...ctx, now: T }),
            });
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('nextChangeAt is exact', () => {
  it('the value is constant strictly between T and nextChangeAt, and moves at it', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          audienceQuery.map((q) => [q, 'users'] as const),
          traitQuery.map((q) => [q, 'trait'] as const),
        ),
        history,
        traits,
        fc.integer({ min: 0, max: 6 * DAY }),
        ([q, type], [raw, order, late], tr, offset) => {
          const { inc, state, events, ctx, ref, h } = check(q, type, raw, order, late, tr, [0]);
          const T = h + offset;
          const next = inc.nextChangeAt(state, ctx, T);
          const v0 = ref(events, T);
          const end = next ?? Infinity;
          for (const c of candidates(q, events, tr.d)) {
            if (c > T && c < end) expect({ q, T, at: c, value: ref(events, c) }).toEqual({ q, T, at: c, value: v0 });
          }
          if (next !== null)
            expect({ q, T, next, changes: JSON.stringify(ref(events, next)) !== JSON.stringify(v0) }).toEqual({
              q,
              T,
              next,
              changes: true,
            });
          else expect(ref(events, T + 365 * DAY)).toEqual(v0);
        },
      ),
      { numRuns: 400 },
    );
  });
});
