import { parseQuery, printQuery, QueryError, queryCheckCommand, MAX_PRIMARY_EXPRESSIONS } from './index';

// Every example of the reference (segment-docs src/api/public-api/query-language.md).
const REFERENCE_AUDIENCES: Array<[string, 'users' | 'accounts', string]> = [
  [
    "event('Shoes Bought').where( property('price') >= 100 ).within(7 days).count() >= 1",
    'users',
    "event('Shoes Bought').where(property('price') >= 100).within(7 days).count() >= 1",
  ],
  [
    "event('Shoes Bought').where( \nproperty('price') >= trait('avg_spend')\nAND \nevent('Shoes Returned').within(parent: 5 days).count() >= 1 \n).within(30 days).count() >= 1",
    'users',
    "event('Shoes Bought').where(property('price') >= trait('avg_spend') AND event('Shoes Returned').within(parent: 5 days).count() >= 1).within(30 days).count() >= 1",
  ],
  [
    "NOT ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )",
    'users',
    "NOT (event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200)",
  ],
  [
    "ALL ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )",
    'accounts',
    "ALL (event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200)",
  ],
  ["ALL NOT event('Shoes Bought').count() >= 1", 'accounts', "ALL (NOT (event('Shoes Bought').count() >= 1))"],
  ["ANY event('Shoes Bought').count() >= 1", 'accounts', "ANY (event('Shoes Bought').count() >= 1)"],
];

const REFERENCE_TRAITS: Array<[string, string]> = [
  ["event('Shoes Bought').within(30 days).avg(property('spend'))", "event('Shoes Bought').within(30 days).avg(property('spend'))"],
  [
    "event('Shoes Bought').where( property('price') > 100 AND property('brand') = 'My Brand' ).min(property('spend'))",
    "event('Shoes Bought').where(property('price') > 100 AND property('brand') = 'My Brand').min(property('spend'))",
  ],
  ["event('Shoes Bought').within(30 days).first(property('spend'))", "event('Shoes Bought').within(30 days).first(property('spend'))"],
  ["event('Shoes Bought').within(30 days).mode(property('spend'), 2)", "event('Shoes Bought').within(30 days).mode(property('spend'), 2)"],
];

// The function tables' examples, each in a complete query.
const FUNCTION_EXAMPLES: Array<[string, 'users' | 'trait']> = [
  ["trait('total_spend').exists()", 'users'],
  ["event('X').where({property('price_usd') > 100}).count() >= 1", 'users'],
  ["event('X').sources({exclude: 'QgRHeujRJBM9j18yChyC', '/;hSBZDqGDPvXCKHbikPm'}).count() >= 1", 'users'],
  ["event('X').sources(include: ['a', 'b']).count() > 0", 'users'],
  ["event('X').between(7 days, 10 days).count() >= 1", 'users'],
  ["event('X').where(context('page.url').contains('shoes', 'shirts')).count() >= 1", 'users'],
  ["event('X').sum(property('spend'))", 'trait'],
  ["event('X').max(property('spend') as string)", 'trait'],
  ["event('X').min(property('spend') as string)", 'trait'],
  ["event('X').mode(property('spend') as array, 2)", 'trait'],
  ["event('X').last(property('spend'))", 'trait'],
  ["event('X').unique(property('spend'))", 'trait'],
  ["event('X').unique(property('spend')).count()", 'trait'],
  ["trait('x').equals(500) OR trait('x').differs(500) OR trait('x').greater_than(500)", 'users'],
  ["trait('x').at_least(500) AND trait('x').less_than(500) AND trait('x').at_most(literal(100))", 'users'],
  ["trait('x').omits('shoes') AND trait('x').starts_with('total') AND trait('x').ends_with('total')", 'users'],
  ["trait('x').one_of('shoes', 'shirts') AND trait('x').absent()", 'users'],
  ["trait('d').before_date('2023-12-07T18:50:00Z') OR trait('d').after_date('2023-12-07T18:50:00Z')", 'users'],
  [
    "trait('d').within_last(7 days) OR trait('d').within_next(7 days) OR trait('d').before_last(1 day) OR trait('d').after_next(12 hours)",
    'users',
  ],
  [
    "event('Bought').where(event('Returned').where(property('sku') = property(parent: 'sku')).within(parent: 5 days).count() >= 1).count() >= 1",
    'users',
  ],
  ['trait(total_spend) > 100', 'users'],
  ["event(Shoes Bought).count() >= 1 OR trait('a') = true", 'users'],
];

describe('parseQuery / printQuery', () => {
  it.each(REFERENCE_AUDIENCES)('parses the reference audience %s', (query, type, normalised) => {
    const ast = parseQuery(query, { type });
    expect(printQuery(ast)).toBe(normalised);
    expect(parseQuery(printQuery(ast), { type })).toEqual(ast);
  });

  it.each(REFERENCE_TRAITS)('parses the reference computed trait %s', (query, normalised) => {
    const ast = parseQuery(query, { type: 'trait' });
    expect(printQuery(ast)).toBe(normalised);
    expect(parseQuery(printQuery(ast), { type: 'trait' })).toEqual(ast);
  });

  it.each(FUNCTION_EXAMPLES)('parses and round-trips %s', (query, type) => {
    const ast = parseQuery(query, { type });
    expect(parseQuery(printQuery(ast), { type })).toEqual(ast);
  });

  it('builds the typed AST: AND binds tighter than OR, sugar becomes comparators', () => {
    expect(parseQuery("trait('a') = 1 OR trait('b') > 2 AND trait('c').exists()", { type: 'users' })).toEqual({
      type: 'users',
      root: {
        kind: 'or',
        items: [
          { kind: 'compare', left: { kind: 'trait', name: 'a' }, comparison: { op: 'equals', value: { kind: 'literal', value: 1 } } },
          {
            kind: 'and',
            items: [
              {
                kind: 'compare',
                left: { kind: 'trait', name: 'b' },
                comparison: { op: 'greater_than', value: { kind: 'literal', value: 2 } },
              },
              { kind: 'compare', left: { kind: 'trait', name: 'c' }, comparison: { op: 'exists' } },
            ],
          },
        ],
      },
    });
  });

  const errors: Array<[string, 'users' | 'accounts' | 'trait', { line: number; column: number; message: RegExp }]> = [
    ["event('Order Completed').count() >=", 'users', { line: 1, column: 36, message: /expected a value but found 'end of query'/ }],
    ["event('A').count()", 'users', { line: 1, column: 1, message: /must end in a Comparator/ }],
    ["event('A').count() >= 1", 'trait', { line: 1, column: 20, message: /must end in a Scalar/ }],
    ["property('price') > 1", 'users', { line: 1, column: 1, message: /only valid inside where/ }],
    [
      "event('A').within(parent: 5 days).count() >= 1",
      'users',
      { line: 1, column: 19, message: /only valid inside a nested event condition/ },
    ],
    [
      "event('A').where(property(parent: 'x') = 1).count() >= 1",
      'users',
      { line: 1, column: 27, message: /only valid inside a nested event condition/ },
    ],
    ["ANY event('A').count() >= 1", 'users', { line: 1, column: 1, message: /only valid in an account-level/ }],
    ["event('A')\n  .within(7 weeks).count() >= 1", 'users', { line: 2, column: 13, message: /time unit/ }],
    ["trait('a').count() > 1", 'users', { line: 1, column: 12, message: /count\(\) cannot follow a Scalar/ }],
    [
      "event('A').unique(property('x')).sum(property('y'))",
      'trait',
      { line: 1, column: 34, message: /sum\(\) cannot follow a ListScalar/ },
    ],
    ["trait('a') = 1 trait('b') = 2", 'users', { line: 1, column: 16, message: /unexpected 'trait'/ }],
    ["event('A').count() >= 1 AND (trait('b') = 2", 'users', { line: 1, column: 44, message: /expected '\)'/ }],
    ["trait('a') = 'oops", 'users', { line: 1, column: 14, message: /unterminated string/ }],
  ];
  it.each(errors)('rejects %s with its position', (query, type, expected) => {
    let error: unknown;
    try {
      parseQuery(query, { type });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(QueryError);
    const e = error as QueryError;
    expect({ line: e.line, column: e.column }).toEqual({ line: expected.line, column: expected.column });
    expect(e.message).toMatch(expected.message);
    expect(e.expected).toEqual(expect.any(String));
  });

  it('allows at most 50 primary expressions', () => {
    const clause = (n: number) => Array.from({ length: n }, (_, i) => `trait('t${i}') = 1`).join(' OR ');
    expect(() => parseQuery(clause(MAX_PRIMARY_EXPRESSIONS), { type: 'users' })).not.toThrow();
    expect(() => parseQuery(clause(MAX_PRIMARY_EXPRESSIONS + 1), { type: 'users' })).toThrow(/at most 50/);
  });
});

describe('engage query check', () => {
  it('prints the normalised query and exits 0', () => {
    expect(queryCheckCommand(['query', 'check', "event('A').within(1 day).count()>=1"])).toEqual({
      exitCode: 0,
      stdout: "event('A').within(1 day).count() >= 1\n",
      stderr: '',
    });
  });
  it('prints line:column: message and exits 1', () => {
    expect(queryCheckCommand(['query', 'check', "event('A').count() >=", '--type', 'users'])).toEqual({
      exitCode: 1,
      stdout: '',
      stderr: "1:22: expected a value but found 'end of query'\n",
    });
  });
  it('checks trait queries with --type trait, and rejects bad usage with exit 2', () => {
    expect(queryCheckCommand(['query', 'check', "event('A').sum(property('x'))", '--type=trait']).exitCode).toBe(0);
    expect(queryCheckCommand(['query', 'check']).exitCode).toBe(2);
    expect(queryCheckCommand(['query', 'check', 'x', '--type', 'people']).exitCode).toBe(2);
  });
});
