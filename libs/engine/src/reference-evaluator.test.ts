import { evaluateReference, parseQuery, type EngineEvent, type EvaluationContext, type QueryType } from './index';

const DAY = 86_400_000;
const NOW = Date.parse('2026-06-30T12:00:00Z');
let seq = 0;
const track = (
  event: string,
  daysAgo: number,
  properties: Record<string, unknown> = {},
  extra: Partial<EngineEvent> = {},
): EngineEvent => ({
  type: 'track',
  event,
  timestamp: NOW - daysAgo * DAY,
  sourceId: 'src_web',
  messageId: `m${String(++seq).padStart(4, '0')}`,
  properties,
  traits: {},
  context: {},
  ...extra,
});
const ctx = (
  events: EngineEvent[],
  traits: Record<string, unknown> = {},
  computed: EvaluationContext['computed'] = {},
): EvaluationContext => ({ events, traits, computed, now: NOW });
const run = (query: string, c: EvaluationContext, type: QueryType = 'users') => evaluateReference(parseQuery(query, { type }), c);

describe('reference evaluator: the reference examples do what they describe', () => {
  const shoes = "event('Shoes Bought').where( property('price') >= 100 ).within(7 days).count() >= 1";
  it('Shoes Bought at >= 100 within 7 days', () => {
    expect(run(shoes, ctx([track('Shoes Bought', 3, { price: 120 })]))).toBe(true);
    expect(run(shoes, ctx([track('Shoes Bought', 3, { price: 80 })]))).toBe(false);
    expect(run(shoes, ctx([track('Shoes Bought', 8, { price: 120 })]))).toBe(false);
    expect(run(shoes, ctx([track('Shoes Bought', -1, { price: 120 })]))).toBe(false); // not yet happened at NOW
  });

  const boughtReturned =
    "event('Shoes Bought').where( property('price') >= trait('avg_spend') AND event('Shoes Returned').within(parent: 5 days).count() >= 1 ).within(30 days).count() >= 1";
  it('bought (price >= avg_spend) and returned within 5 days after', () => {
    const traits = { avg_spend: 50 };
    expect(run(boughtReturned, ctx([track('Shoes Bought', 20, { price: 60 }), track('Shoes Returned', 17)], traits))).toBe(true);
    expect(run(boughtReturned, ctx([track('Shoes Bought', 20, { price: 60 }), track('Shoes Returned', 10)], traits))).toBe(false); // 10 days after
    expect(run(boughtReturned, ctx([track('Shoes Bought', 20, { price: 60 }), track('Shoes Returned', 21)], traits))).toBe(false); // before
    expect(run(boughtReturned, ctx([track('Shoes Bought', 20, { price: 40 }), track('Shoes Returned', 18)], traits))).toBe(false);
  });

  it('NOT ( bought AND total_spend > 200 )', () => {
    const q = "NOT ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )";
    expect(run(q, ctx([], { total_spend: 500 }))).toBe(true);
    expect(run(q, ctx([track('Shoes Bought', 1)], { total_spend: 500 }))).toBe(false);
    expect(run(q, ctx([track('Shoes Bought', 1)], { total_spend: 100 }))).toBe(true);
  });

  it('account-level ALL, ALL NOT and ANY over the users of an account', () => {
    const buyer = ctx([track('Shoes Bought', 1)], { total_spend: 300 });
    const browser = ctx([], { total_spend: 300 });
    const account = (users: EvaluationContext[]) => ({ ...ctx([]), users });
    expect(run("ALL ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )", account([buyer, buyer]), 'accounts')).toBe(
      true,
    );
    expect(run("ALL ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )", account([buyer, browser]), 'accounts')).toBe(
      false,
    );
    expect(run("ALL NOT event('Shoes Bought').count() >= 1", account([browser, browser]), 'accounts')).toBe(true);
    expect(run("ALL NOT event('Shoes Bought').count() >= 1", account([browser, buyer]), 'accounts')).toBe(false);
    expect(run("ANY event('Shoes Bought').count() >= 1", account([browser, buyer]), 'accounts')).toBe(true);
    expect(run("ANY event('Shoes Bought').count() >= 1", account([]), 'accounts')).toBe(false);
  });

  it('computed traits: avg, min with where, first, mode with minimum frequency', () => {
    const events = [
      track('Shoes Bought', 40, { spend: 10, price: 150, brand: 'My Brand' }),
      track('Shoes Bought', 20, { spend: 30, price: 150, brand: 'My Brand' }),
      track('Shoes Bought', 10, { spend: 30, price: 50, brand: 'My Brand' }),
      track('Shoes Bought', 5, { spend: 50, price: 150, brand: 'Other' }),
    ];
    const c = ctx(events);
    expect(run("event('Shoes Bought').within(30 days).avg(property('spend'))", c, 'trait')).toBeCloseTo(110 / 3);
    expect(
      run("event('Shoes Bought').where( property('price') > 100 AND property('brand') = 'My Brand' ).min(property('spend'))", c, 'trait'),
    ).toBe(10);
    expect(run("event('Shoes Bought').within(30 days).first(property('spend'))", c, 'trait')).toBe(30);
    expect(run("event('Shoes Bought').within(30 days).mode(property('spend'), 2)", c, 'trait')).toBe('30');
    expect(run("event('Shoes Bought').within(30 days).mode(property('spend'), 3)", c, 'trait')).toBeNull();
  });
});

describe('reference evaluator: functions and operators', () => {
  it('reducers over an empty stream', () => {
    const c = ctx([]);
    expect(
      [
        'count()',
        "sum(property('x'))",
        "avg(property('x'))",
        "max(property('x'))",
        "first(property('x'))",
        "unique(property('x'))",
        "unique(property('x')).count()",
      ].map((r) => run(`event('A').${r}`, c, 'trait')),
    ).toEqual([0, 0, null, null, null, [], 0]);
  });

  it('max/min as string, unique, last, sum of numeric strings', () => {
    const c = ctx([track('A', 3, { x: '9' }), track('A', 2, { x: '10' }), track('A', 1, { x: '9' })]);
    expect(run("event('A').max(property('x'))", c, 'trait')).toBe(10);
    expect(run("event('A').max(property('x') as string)", c, 'trait')).toBe('9');
    expect(run("event('A').min(property('x') as string)", c, 'trait')).toBe('10');
    expect(run("event('A').unique(property('x'))", c, 'trait')).toEqual(['9', '10']);
    expect(run("event('A').last(property('x'))", c, 'trait')).toBe('9');
    expect(run("event('A').sum(property('x'))", c, 'trait')).toBe(28);
  });

  it('mode tie rule: higher count, then most recent, then smaller string', () => {
    expect(run("event('A').mode(property('x'))", ctx([track('A', 3, { x: 'b' }), track('A', 2, { x: 'a' })]), 'trait')).toBe('a');
    expect(run("event('A').mode(property('x'))", ctx([track('A', 2, { x: 'b' }), track('A', 3, { x: 'a' })]), 'trait')).toBe('b');
    expect(run("event('A').mode(property('x'))", ctx([track('A', 2, { x: 'b' }), track('A', 2, { x: 'a' })]), 'trait')).toBe('a');
  });

  it('differs versus NOT ... = on absent values', () => {
    const none = ctx([], {});
    const five = ctx([], { x: 5 });
    const six = ctx([], { x: 6 });
    expect([none, five, six].map((c) => run("trait('x') != 5", c))).toEqual([false, false, true]);
    expect([none, five, six].map((c) => run("NOT trait('x') = 5", c))).toEqual([true, false, true]);
  });

  it('string comparators, one_of, exists/absent', () => {
    const c = ctx([], { url: 'https://shop.example/shoes/red', plan: 'pro' });
    expect(
      [
        "trait('url').contains('shirts', 'shoes')",
        "trait('url').omits('shoes')",
        "trait('url').starts_with('https://')",
        "trait('url').ends_with('blue')",
        "trait('plan').one_of('pro', 'team')",
        "trait('plan').exists()",
        "trait('nope').absent()",
        "trait('nope').contains('x')",
      ].map((q) => run(q, c)),
    ).toEqual([true, false, true, false, true, true, true, false]);
  });

  it('dates: before/after_date and the relative comparisons', () => {
    const at = (daysFromNow: number) => ctx([], { d: new Date(NOW + daysFromNow * DAY).toISOString() });
    const q = (cmp: string) => [-10, -3, 3, 10].map((d) => run(`trait('d').${cmp}`, at(d)));
    expect(q('within_last(7 days)')).toEqual([false, true, false, false]);
    expect(q('within_next(7 days)')).toEqual([false, false, true, false]);
    expect(q('before_last(7 days)')).toEqual([true, false, false, false]);
    expect(q('after_next(7 days)')).toEqual([false, false, false, true]);
    expect(q("before_date('2026-06-30T12:00:00Z')")).toEqual([true, true, false, false]);
    expect(q("after_date('2026-06-30T12:00:00Z')")).toEqual([false, false, true, true]);
  });

  it('between, sources(exclude/include), context(), trait() reading other computations', () => {
    const events = [
      track('A', 1, {}, { sourceId: 'src_a', context: { page: { url: '/pricing' } } }),
      track('A', 8, {}, { sourceId: 'src_b' }),
    ];
    const c = ctx(events, { vip: false }, { vip: true, score: 7 });
    expect(run("event('A').between(7 days, 10 days).count() = 1", c)).toBe(true);
    expect(run("event('A').between(2 days, 5 days).count() = 0", c)).toBe(true);
    expect(run("event('A').sources(exclude: 'src_a').count() = 1", c)).toBe(true);
    expect(run("event('A').sources(include: 'src_a').count() = 1", c)).toBe(true);
    expect(run("event('A').where(context('page.url') = '/pricing').count() = 1", c)).toBe(true);
    expect(run("trait('vip') = true AND trait('score') >= 7", c)).toBe(true);
  });

  it('property(parent: ...) compares a nested event with its parent (bought and returned the same sku)', () => {
    const q =
      "event('Bought').where(event('Returned').where(property('sku') = property(parent: 'sku')).within(parent: 5 days).count() >= 1).count() >= 1";
    expect(run(q, ctx([track('Bought', 10, { sku: 'a' }), track('Returned', 8, { sku: 'a' })]))).toBe(true);
    expect(run(q, ctx([track('Bought', 10, { sku: 'a' }), track('Returned', 8, { sku: 'b' })]))).toBe(false);
  });

  it('page calls answer to Page Viewed', () => {
    const page: EngineEvent = { ...track('x', 1), type: 'page', event: undefined, name: 'Pricing' };
    expect(run("event('Page Viewed').count() >= 1", ctx([page]))).toBe(true);
  });
});
