// fast-check generators shared by the engine's property tests (test support:
// nothing else imports it): random definitions written as query text, so the
// parser is exercised too, over every reducer, window (within, between),
// filter (where with local and nested conditions, sources) and comparison
// the incremental evaluator plans; random histories with out-of-order,
// late and future-dated events, equal timestamps common.
import fc from 'fast-check';
import type { EngineEvent, Value } from '../event';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
export const T0 = Date.parse('2026-03-01T00:00:00Z');
export const SPAN = 8 * DAY;

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
export const traitQuery = fc.tuple(stream, reducer).map(([s, r]) => `${s}.${r}`);
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
export const audienceQuery = fc.oneof(
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
/** A history of at most `maxLength` events: the events, their arrival order, and each arrival's lateness. */
export const historyOf = (maxLength: number) =>
  fc.array(rawEvent, { maxLength }).chain((evs) =>
    fc.tuple(
      fc.constant(evs),
      fc.shuffledSubarray(
        evs.map((_, i) => i),
        { minLength: evs.length, maxLength: evs.length },
      ),
      fc.array(fc.integer({ min: -HOUR, max: 3 * DAY }), { minLength: evs.length, maxLength: evs.length }),
    ),
  );
export const history = historyOf(18);
export const traits = fc.record({
  t: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
  d: fc.option(fc.integer({ min: 0, max: SPAN }), { nil: undefined }),
});

export function toEvents(
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
export function arrivals(events: EngineEvent[], order: number[], lateness: number[]): Array<{ ev: EngineEvent; now: number }> {
  let now = T0;
  return order.map((i, k) => {
    now = Math.max(now, events[i]!.timestamp + lateness[k]!);
    return { ev: events[i]!, now };
  });
}

export const ctxOf = (tr: { t?: number; d?: number }) => ({
  traits: { ...(tr.t === undefined ? {} : { t: tr.t }), ...(tr.d === undefined ? {} : { d: new Date(T0 + tr.d).toISOString() }) },
  computed: { aud: true } as Record<string, Value>,
});
