// Every example of the language reference (segmentio/segment-docs
// src/api/public-api/query-language.md): the "Examples" section as written, and
// each function table's example inside a complete query. Each parses,
// round-trips through the printer, and evaluates as the reference describes,
// in the reference evaluator and in the incremental evaluator alike.
import type { QueryType } from './ast';
import type { EngineEvent, Value } from './event';
import { compileIncremental } from './incremental';
import { MAX_PRIMARY_EXPRESSIONS, parseQuery } from './parser';
import { printQuery } from './printer';
import { evaluateReference } from './reference-evaluator';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.parse('2026-06-30T12:00:00Z');
let seq = 0;
const ev = (event: string, daysAgo: number, properties: Record<string, unknown> = {}, extra: Partial<EngineEvent> = {}): EngineEvent => ({
  type: 'track',
  event,
  timestamp: NOW - daysAgo * DAY,
  sourceId: 'src_web',
  messageId: `m${String(++seq).padStart(5, '0')}`,
  properties,
  traits: {},
  context: {},
  ...extra,
});
const iso = (daysFromNow: number) => new Date(NOW + daysFromNow * DAY).toISOString();

interface Scenario {
  events?: EngineEvent[];
  traits?: Record<string, unknown>;
  computed?: Record<string, Value>;
}

/** The value at NOW from both evaluators; they must agree. */
function evaluate(query: string, type: Exclude<QueryType, 'accounts'>, s: Scenario): Value {
  const ast = parseQuery(query, { type });
  expect(parseQuery(printQuery(ast), { type })).toEqual(ast);
  const events = s.events ?? [];
  const ctx = { traits: s.traits ?? {}, computed: s.computed ?? {} };
  const reference = evaluateReference(ast, { events, ...ctx, now: NOW });
  const inc = compileIncremental(ast);
  const state = inc.initState();
  for (const e of events) inc.apply(state, e, NOW);
  expect(inc.valueAt(JSON.parse(JSON.stringify(state)), ctx, NOW)).toEqual(reference);
  return reference;
}

/** [what the reference says, query, type, scenario, expected value at NOW]. */
type Case = [string, string, Exclude<QueryType, 'accounts'>, Scenario, Value];

const EXAMPLES: Case[] = [
  // ---- Examples: audiences
  [
    'Shoes Bought >= 100 within 7 days: yes',
    "event('Shoes Bought').where( property('price') >= 100 ).within(7 days).count() >= 1",
    'users',
    { events: [ev('Shoes Bought', 3, { price: 120 })] },
    true,
  ],
  [
    'Shoes Bought >= 100 within 7 days: too cheap',
    "event('Shoes Bought').where( property('price') >= 100 ).within(7 days).count() >= 1",
    'users',
    { events: [ev('Shoes Bought', 3, { price: 99 })] },
    false,
  ],
  [
    'Shoes Bought >= 100 within 7 days: too old',
    "event('Shoes Bought').where( property('price') >= 100 ).within(7 days).count() >= 1",
    'users',
    { events: [ev('Shoes Bought', 8, { price: 120 })] },
    false,
  ],
  [
    'Bought and returned (5 days after), price >= avg_spend, within 30 days',
    "event('Shoes Bought').where( \nproperty('price') >= trait('avg_spend')\nAND \nevent('Shoes Returned').within(parent: 5 days).count() >= 1 \n).within(30 days).count() >= 1",
    'users',
    { events: [ev('Shoes Bought', 20, { price: 60 }), ev('Shoes Returned', 17)], traits: { avg_spend: 50 } },
    true,
  ],
  [
    'Bought and returned: returned 10 days after is too late',
    "event('Shoes Bought').where( \nproperty('price') >= trait('avg_spend')\nAND \nevent('Shoes Returned').within(parent: 5 days).count() >= 1 \n).within(30 days).count() >= 1",
    'users',
    { events: [ev('Shoes Bought', 20, { price: 60 }), ev('Shoes Returned', 10)], traits: { avg_spend: 50 } },
    false,
  ],
  [
    'Did not perform Shoes Bought (and total_spend <= 200)',
    "NOT ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )",
    'users',
    { traits: { total_spend: 500 } },
    true,
  ],
  [
    'Did not perform Shoes Bought: a buyer with spend > 200 is out',
    "NOT ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )",
    'users',
    { events: [ev('Shoes Bought', 1)], traits: { total_spend: 500 } },
    false,
  ],
  // ---- Examples: computed traits
  [
    'average spend over 30 days',
    "event('Shoes Bought').within(30 days).avg(property('spend'))",
    'trait',
    { events: [ev('Shoes Bought', 40, { spend: 100 }), ev('Shoes Bought', 20, { spend: 10 }), ev('Shoes Bought', 5, { spend: 30 })] },
    20,
  ],
  [
    'minimum spend where price > 100 and brand = My Brand',
    "event('Shoes Bought').where( property('price') > 100 AND property('brand') = 'My Brand' ).min(property('spend'))",
    'trait',
    {
      events: [
        ev('Shoes Bought', 40, { spend: 10, price: 150, brand: 'My Brand' }),
        ev('Shoes Bought', 9, { spend: 5, price: 50, brand: 'My Brand' }),
        ev('Shoes Bought', 5, { spend: 3, price: 150, brand: 'Other' }),
      ],
    },
    10,
  ],
  [
    'first-seen spend over 30 days',
    "event('Shoes Bought').within(30 days).first(property('spend'))",
    'trait',
    { events: [ev('Shoes Bought', 40, { spend: 1 }), ev('Shoes Bought', 20, { spend: 2 }), ev('Shoes Bought', 5, { spend: 3 })] },
    2,
  ],
  [
    'most frequent spend, at least twice',
    "event('Shoes Bought').within(30 days).mode(property('spend'), 2)",
    'trait',
    { events: [ev('Shoes Bought', 9, { spend: 30 }), ev('Shoes Bought', 8, { spend: 30 }), ev('Shoes Bought', 7, { spend: 50 })] },
    '30',
  ],
  [
    'most frequent spend: nothing twice -> null',
    "event('Shoes Bought').within(30 days).mode(property('spend'), 2)",
    'trait',
    { events: [ev('Shoes Bought', 9, { spend: 30 }), ev('Shoes Bought', 7, { spend: 50 })] },
    null,
  ],

  // ---- Extractors
  ['event: events by name', "event('Shoes Bought').count()", 'trait', { events: [ev('Shoes Bought', 1), ev('Other', 1)] }, 1],
  ['trait: a profile trait', "trait('total_spend') > 100", 'users', { traits: { total_spend: 150 } }, true],
  ['trait: another audience by its key', "trait('vip_audience') = true", 'users', { computed: { vip_audience: true } }, true],
  [
    'property: an event property',
    "event('Order').where(property('total') >= 10).count() = 1",
    'users',
    { events: [ev('Order', 1, { total: 12 }), ev('Order', 1, { total: 2 })] },
    true,
  ],
  [
    'context: an event context field',
    "event('Page Viewed').where(context('page.url').contains('shoes')).count()",
    'trait',
    {
      events: [
        ev('Page Viewed', 1, {}, { context: { page: { url: '/shoes/red' } } }),
        ev('Page Viewed', 1, {}, { context: { page: { url: '/hats' } } }),
      ],
    },
    1,
  ],
  [
    'literal: an explicit literal operand',
    "trait('total_spend').greater_than(literal(100))",
    'users',
    { traits: { total_spend: 101 } },
    true,
  ],

  // ---- Filters
  [
    'where({...}) with braces',
    "event('Order').where({property('price_usd') > 100}).count()",
    'trait',
    { events: [ev('Order', 1, { price_usd: 150 }), ev('Order', 1, { price_usd: 50 })] },
    1,
  ],
  [
    'sources({exclude: ...})',
    "event('Order').sources({exclude: 'QgRHeujRJBM9j18yChyC', '/;hSBZDqGDPvXCKHbikPm'}).count()",
    'trait',
    {
      events: [
        ev('Order', 1, {}, { sourceId: 'QgRHeujRJBM9j18yChyC' }),
        ev('Order', 1, {}, { sourceId: '/;hSBZDqGDPvXCKHbikPm' }),
        ev('Order', 1, {}, { sourceId: 'other' }),
      ],
    },
    1,
  ],
  ['within(7 days)', "event('Order').within(7 days).count()", 'trait', { events: [ev('Order', 6.9), ev('Order', 7.1)] }, 1],
  ['within(hours)', "event('Order').within(12 hours).count()", 'trait', { events: [ev('Order', 0.4), ev('Order', 0.6)] }, 1],
  [
    'between(7 days, 10 days)',
    "event('Order').between(7 days, 10 days).count()",
    'trait',
    { events: [ev('Order', 5), ev('Order', 8), ev('Order', 11)] },
    1,
  ],

  // ---- Reducers
  ['count()', "event('A').count()", 'trait', { events: [ev('A', 1), ev('A', 2)] }, 2],
  [
    'sum(property)',
    "event('A').sum(property('spend'))",
    'trait',
    { events: [ev('A', 1, { spend: 2 }), ev('A', 2, { spend: '3' }), ev('A', 2, { spend: 'x' })] },
    5,
  ],
  ['avg(property)', "event('A').avg(property('spend'))", 'trait', { events: [ev('A', 1, { spend: 2 }), ev('A', 2, { spend: 4 })] }, 3],
  [
    'max(property): numeric',
    "event('A').max(property('spend'))",
    'trait',
    { events: [ev('A', 1, { spend: 9 }), ev('A', 2, { spend: 10 })] },
    10,
  ],
  [
    'max(property as string): lexicographic',
    "event('A').max(property('spend') as string)",
    'trait',
    { events: [ev('A', 1, { spend: 9 }), ev('A', 2, { spend: 10 })] },
    '9',
  ],
  [
    'min(property): numeric',
    "event('A').min(property('spend'))",
    'trait',
    { events: [ev('A', 1, { spend: 9 }), ev('A', 2, { spend: 10 })] },
    9,
  ],
  [
    'min(property as string): lexicographic',
    "event('A').min(property('spend') as string)",
    'trait',
    { events: [ev('A', 1, { spend: 9 }), ev('A', 2, { spend: 10 })] },
    '10',
  ],
  [
    'mode(property, 2)',
    "event('A').mode(property('spend'), 2)",
    'trait',
    { events: [ev('A', 3, { spend: 1 }), ev('A', 2, { spend: 1 }), ev('A', 1, { spend: 2 })] },
    '1',
  ],
  [
    'mode with $: each element counts',
    "event('A').mode(property('items.$.category'), 2)",
    'trait',
    { events: [ev('A', 2, { items: [{ category: 'shoes' }, { category: 'hats' }] }), ev('A', 1, { items: [{ category: 'shoes' }] })] },
    'shoes',
  ],
  [
    'mode as array with $: the whole array is one value',
    "event('A').mode(property('items.$.category') as array, 2)",
    'trait',
    {
      events: [
        ev('A', 3, { items: [{ category: 'shoes' }, { category: 'hats' }] }),
        ev('A', 2, { items: [{ category: 'shoes' }, { category: 'hats' }] }),
        ev('A', 1, { items: [{ category: 'shoes' }] }),
      ],
    },
    '["shoes","hats"]',
  ],
  ['first(property)', "event('A').first(property('spend'))", 'trait', { events: [ev('A', 2, { spend: 1 }), ev('A', 1, { spend: 2 })] }, 1],
  ['last(property)', "event('A').last(property('spend'))", 'trait', { events: [ev('A', 2, { spend: 1 }), ev('A', 1, { spend: 2 })] }, 2],
  [
    'unique(property)',
    "event('A').unique(property('spend'))",
    'trait',
    { events: [ev('A', 3, { spend: 1 }), ev('A', 2, { spend: 2 }), ev('A', 1, { spend: 1 })] },
    [1, 2],
  ],
  [
    'unique(property).count()',
    "event('A').unique(property('spend')).count()",
    'trait',
    { events: [ev('A', 3, { spend: 1 }), ev('A', 2, { spend: 2 }), ev('A', 1, { spend: 1 })] },
    2,
  ],

  // ---- Comparisons
  ['equals(500)', "trait('x').equals(500)", 'users', { traits: { x: 500 } }, true],
  ['== 500 (sugar)', "trait('x') == 500", 'users', { traits: { x: 500 } }, true],
  ['differs(500): true only when the value exists', "trait('x').differs(500)", 'users', { traits: {} }, false],
  ['!= 500 on a different value', "trait('x') != 500", 'users', { traits: { x: 7 } }, true],
  ['NOT (x = 500) includes absent values', "NOT (trait('x') = 500)", 'users', { traits: {} }, true],
  ['!= OR absent(): the documented null-inclusive form', "trait('x') != 500 OR trait('x').absent()", 'users', { traits: {} }, true],
  ['absent()', "trait('x').absent()", 'users', { traits: { x: null } }, true],
  ['exists()', "trait('x').exists()", 'users', { traits: { x: 0 } }, true],
  ['greater_than(500) / > 500', "trait('x').greater_than(500) AND trait('x') > 500", 'users', { traits: { x: 501 } }, true],
  ['at_least(500) / >= 500', "trait('x').at_least(500) AND trait('x') >= 500", 'users', { traits: { x: 500 } }, true],
  ['less_than(500) / < 500', "trait('x').less_than(500) AND trait('x') < 500", 'users', { traits: { x: 499 } }, true],
  ['at_most(500) / <= 500', "trait('x').at_most(500) AND trait('x') <= 500", 'users', { traits: { x: 500 } }, true],
  [
    "contains('shoes','shirts'): any as a substring",
    "trait('x').contains('shoes','shirts')",
    'users',
    { traits: { x: 'red shirts' } },
    true,
  ],
  ["omits('shoes')", "trait('x').omits('shoes')", 'users', { traits: { x: 'red shirts' } }, true],
  ["starts_with('total')", "trait('x').starts_with('total')", 'users', { traits: { x: 'total_spend' } }, true],
  ["ends_with('total')", "trait('x').ends_with('total')", 'users', { traits: { x: 'grand_total' } }, true],
  ["one_of('shoes','shirts'): exact match", "trait('x').one_of('shoes','shirts')", 'users', { traits: { x: 'shirt' } }, false],
  [
    "before_date('2023-12-07T18:50:00Z')",
    "trait('d').before_date('2023-12-07T18:50:00Z')",
    'users',
    { traits: { d: '2023-12-07T18:49:59Z' } },
    true,
  ],
  [
    "after_date('2023-12-07T18:50:00Z')",
    "trait('d').after_date('2023-12-07T18:50:00Z')",
    'users',
    { traits: { d: '2023-12-07T18:49:59Z' } },
    false,
  ],
  ['within_last(7 days): inclusive', "trait('d').within_last(7 days)", 'users', { traits: { d: iso(-7) } }, true],
  ['within_next(7 days)', "trait('d').within_next(7 days)", 'users', { traits: { d: iso(6) } }, true],
  ['before_last(7 days): 7 days ago and earlier', "trait('d').before_last(7 days)", 'users', { traits: { d: iso(-8) } }, true],
  ['after_next(7 days): 7 days ahead and later', "trait('d').after_next(7 days)", 'users', { traits: { d: iso(6) } }, false],

  // ---- Junctions
  ['AND binds tighter than OR', "trait('a') = 1 OR trait('b') = 1 AND trait('c') = 1", 'users', { traits: { a: 1, b: 1, c: 0 } }, true],
  ['parentheses override', "(trait('a') = 1 OR trait('b') = 1) AND trait('c') = 1", 'users', { traits: { a: 1, b: 1, c: 0 } }, false],
  ['NOT', "NOT (trait('a') = 1)", 'users', { traits: { a: 2 } }, true],
  [
    'bare names as the reference writes them',
    'trait(total_spend) > 100 AND event(Shoes Bought).count() >= 1',
    'users',
    { traits: { total_spend: 101 }, events: [ev('Shoes Bought', 1)] },
    true,
  ],
];

describe('the reference examples evaluate as described (reference and incremental evaluators)', () => {
  it.each(EXAMPLES)('%s', (_what, query, type, scenario, expected) => {
    expect(evaluate(query, type, scenario)).toEqual(expected);
  });

  const account = (query: string, users: Scenario[]) => {
    const ast = parseQuery(query, { type: 'accounts' });
    const inc = compileIncremental(ast);
    const ref = evaluateReference(ast, {
      events: [],
      traits: {},
      computed: {},
      now: NOW,
      users: users.map((u) => ({ events: u.events ?? [], traits: u.traits ?? {}, computed: {}, now: NOW })),
    });
    const incUsers = users.map((u) => {
      const state = inc.initState();
      for (const e of u.events ?? []) inc.apply(state, e, NOW);
      return { state, traits: u.traits ?? {}, computed: {} };
    });
    expect(inc.valueAt(inc.initState(), { traits: {}, computed: {}, users: incUsers }, NOW)).toBe(ref);
    return ref;
  };
  const buyer = { events: [ev('Shoes Bought', 1)], traits: { total_spend: 300 } };
  const browser = { traits: { total_spend: 300 } };

  it('Bought with minimum total spend: ALL users bought and spend > 200', () => {
    expect(account("ALL ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )", [buyer, buyer])).toBe(true);
    expect(account("ALL ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )", [buyer, browser])).toBe(false);
  });
  it('No users bought at least once: ALL NOT', () => {
    expect(account("ALL NOT event('Shoes Bought').count() >= 1", [browser, browser])).toBe(true);
    expect(account("ALL NOT event('Shoes Bought').count() >= 1", [browser, buyer])).toBe(false);
  });
  it('Any users bought at least once: ANY', () => {
    expect(account("ANY event('Shoes Bought').count() >= 1", [browser, buyer])).toBe(true);
    expect(account("ANY event('Shoes Bought').count() >= 1", [browser])).toBe(false);
  });

  it('counts primary expressions as conditions joined by junctions, nested conditions included', () => {
    const nested = (n: number) => Array.from({ length: n }, (_, i) => `event('E${i}').where(property('x') = 1).count() >= 1`).join(' OR ');
    expect(() => parseQuery(nested(MAX_PRIMARY_EXPRESSIONS / 2), { type: 'users' })).not.toThrow();
    expect(() => parseQuery(nested(MAX_PRIMARY_EXPRESSIONS / 2 + 1), { type: 'users' })).toThrow(
      /too many primary expressions: a definition allows at most 50/,
    );
  });
});
