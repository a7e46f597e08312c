// Property tests: random definitions (generated as query text, so the parser is
// exercised too) and random histories with out-of-order and future-dated
// events; the incremental evaluator must equal the reference at random times,
// survive a JSON round trip after every event, merge like the union of two
// histories, and nextChangeAt must be exact.
import fc from 'fast-check';
import type { QueryType } from '../ast';
import type { EngineEvent, Value } from '../event';
import { parseQuery } from '../parser';
import { printQuery } from '../printer';
import { evaluateReference } from '../reference-evaluator';
import { compileIncremental, type IncrementalState } from './evaluator';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.parse('2026-03-01T00:00:00Z');
const SPAN = 8 * DAY;

// ------------------------------------------------------------------ definitions

const dur = fc.oneof(
  fc.integer({ min: 1, max: 48 }).map((n) => ({ text: `${n} hours`, ms: n * HOUR })),
  fc.integer({ min: 1, max: 5 }).map((n) => ({ text: `${n} days`, ms: n * DAY })),
);
const name = fc.constantFrom("'A'", "'B'", "'Page Viewed'", 'A');
const localCond: fc.Arbitrary<string> = fc.letrec<{ c: string }>((tie) => ({
  c: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer({ min: 0, max: 4 }).map((k) => `property('x') >= ${k}`),
    fc.constantFrom(
      "property('x') = 'a'",
      "property('x') != 2",
      "property('x').exists()",
      "property('x').absent()",
      "property('x').one_of(1, 'b')",
      "context('page.url').contains('shoe')",
      "property('x').starts_with('a')",
    ),
    tie('c').map((c) => `NOT (${c})`),
    fc.tuple(tie('c'), tie('c'), fc.constantFrom('AND', 'OR')).map(([a, b, j]) => `(${a} ${j} ${b})`),
  ),
})).c;
/** Conditions only the fallback can hold: parent funnels, trait() and relative dates inside where. */
const nestedCond = fc.oneof(
  dur.map((d) => `event('B').within(parent: ${d.text}).count() >= 1`),
  dur.map((d) => `event('B').where(property('x') = property(parent: 'x')).within(parent: ${d.text}).count() >= 1`),
  fc.constant("property('x') >= trait('t')"),
  dur.map((d) => `property('d').within_last(${d.text})`),
);
const filter = fc.oneof(
  { weight: 3, arbitrary: localCond.map((c) => `.where(${c})`) },
  { weight: 2, arbitrary: nestedCond.map((c) => `.where(${c})`) },
  { weight: 4, arbitrary: dur.map((d) => `.within(${d.text})`) },
  {
    weight: 2,
    arbitrary: fc.tuple(dur, dur).map(([a, b]) => (a.ms <= b.ms ? `.between(${a.text}, ${b.text})` : `.between(${b.text}, ${a.text})`)),
  },
  { weight: 1, arbitrary: fc.constantFrom(".sources(exclude: 's1')", ".sources(include: 's1', 's2')") },
);
const stream = fc.tuple(name, fc.array(filter, { maxLength: 2 })).map(([n, fs]) => `event(${n})${fs.join('')}`);
const reducer = fc.constantFrom(
  'count()',
  "sum(property('x'))",
  "avg(property('x'))",
  "min(property('x'))",
  "max(property('x'))",
  "max(property('x') as string)",
  "min(property('x') as string)",
  "first(property('x'))",
  "last(property('x'))",
  "unique(property('x'))",
  "unique(property('x')).count()",
  "mode(property('x'), 1)",
  "mode(property('x'), 2)",
  "mode(property('x') as array, 1)",
  "last(property('d'))",
);
const traitQuery = fc.tuple(stream, reducer).map(([s, r]) => `${s}.${r}`);
const comparison = fc.oneof(
  fc.tuple(fc.constantFrom('>=', '>', '=', '!=', '<', '<='), fc.integer({ min: 0, max: 3 })).map(([op, k]) => `${op} ${k}`),
  fc.constantFrom('.exists()', ".one_of('a', 2)", ".contains('a')"),
);
const countAtom = fc
  .tuple(stream, fc.constantFrom('>=', '>', '=', '<', '<=', '!='), fc.integer({ min: 0, max: 3 }))
  .map(([s, op, k]) => `${s}.count() ${op} ${k}`);
const reduceAtom = fc
  .tuple(
    stream,
    fc.constantFrom(
      "sum(property('x'))",
      "max(property('x'))",
      "last(property('x'))",
      "unique(property('x')).count()",
      "mode(property('x'), 2)",
      "first(property('x'))",
    ),
    comparison,
  )
  .map(([s, r, c]) => `${s}.${r}${c.startsWith('.') ? '' : ' '}${c}`);
const dateAtom = fc.oneof(
  fc.tuple(fc.constantFrom('within_last', 'within_next', 'before_last', 'after_next'), dur).map(([op, d]) => `trait('d').${op}(${d.text})`),
  fc.tuple(stream, fc.constantFrom('within_last', 'before_last'), dur).map(([s, op, d]) => `${s}.last(property('d')).${op}(${d.text})`),
);
const traitAtom = fc.constantFrom("trait('t') > 1", "trait('t') != 2", "NOT trait('t') = 2", "trait('t').absent()", "trait('aud') = true");
const atom = fc.oneof(
  { weight: 4, arbitrary: countAtom },
  { weight: 3, arbitrary: reduceAtom },
  { weight: 1, arbitrary: dateAtom },
  { weight: 1, arbitrary: traitAtom },
);
const audienceQuery = fc.oneof(
  atom,
  fc.tuple(atom, atom, fc.constantFrom('AND', 'OR')).map(([a, b, j]) => `${a} ${j} ${b}`),
  atom.map((a) => `NOT (${a})`),
);

// ------------------------------------------------------------------ histories

const propValue = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 4 }) },
  { weight: 2, arbitrary: fc.constantFrom('a', 'b', 'ab') },
  { weight: 1, arbitrary: fc.constant([1, 'a']) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);
const rawEvent = fc.record({
  kind: fc.constantFrom('A', 'A', 'B', 'page'),
  // On an 8-hour grid half the time: equal timestamps are common, so the tie rule (tieKey) is exercised.
  at: fc.oneof(
    fc.integer({ min: 0, max: SPAN }),
    fc.integer({ min: 0, max: SPAN / (8 * HOUR) }).map((k) => k * 8 * HOUR),
  ),
  x: propValue,
  d: fc.option(fc.integer({ min: 0, max: SPAN }), { nil: undefined }),
  source: fc.constantFrom('s1', 's2', 's3'),
  url: fc.constantFrom('/shoes', '/hats'),
});
const history = fc.array(rawEvent, { maxLength: 18 }).chain((evs) =>
  fc.tuple(
    fc.constant(evs),
    fc.shuffledSubarray(
      evs.map((_, i) => i),
      { minLength: evs.length, maxLength: evs.length },
    ),
    fc.array(fc.integer({ min: -HOUR, max: 3 * DAY }), { minLength: evs.length, maxLength: evs.length }),
  ),
);
const traits = fc.record({
  t: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
  d: fc.option(fc.integer({ min: 0, max: SPAN }), { nil: undefined }),
});

function toEvents(
  raw: Array<fc.RecordValue<{ kind: string; at: number; x: unknown; d: number | undefined; source: string; url: string }>>,
): EngineEvent[] {
  return raw.map((r, i) => ({
    type: r.kind === 'page' ? 'page' : 'track',
    ...(r.kind === 'page' ? { name: 'Shop' } : { event: r.kind }),
    timestamp: T0 + r.at,
    sourceId: r.source,
    messageId: `m${String(i).padStart(3, '0')}`,
    properties: { ...(r.x === undefined ? {} : { x: r.x }), ...(r.d === undefined ? {} : { d: new Date(T0 + r.d).toISOString() }) },
    traits: {},
    context: { page: { url: r.url } },
  }));
}

/** Arrival: events in `order`, each at now = max(previous now, time + lateness) (negative lateness: future-dated). */
function arrivals(events: EngineEvent[], order: number[], lateness: number[]): Array<{ ev: EngineEvent; now: number }> {
  let now = T0;
  return order.map((i, k) => {
    now = Math.max(now, events[i]!.timestamp + lateness[k]!);
    return { ev: events[i]!, now };
  });
}

const ctxOf = (tr: { t?: number; d?: number }) => ({
  traits: { ...(tr.t === undefined ? {} : { t: tr.t }), ...(tr.d === undefined ? {} : { d: new Date(T0 + tr.d).toISOString() }) },
  computed: { aud: true } as Record<string, Value>,
});

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
