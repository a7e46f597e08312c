import { dependenciesOf, findCycle, parseQuery } from './index';

describe('dependenciesOf', () => {
  it('lists event names, traits, computations and time dependence', () => {
    const ast = parseQuery(
      "event('Bought').where(property('price') >= trait('avg_spend') AND event('Returned').within(parent: 5 days).count() >= 1).within(30 days).count() >= 1 OR trait('vip') = true",
      { type: 'users' },
    );
    expect(dependenciesOf(ast, new Set(['vip']))).toEqual({
      eventNames: ['Bought', 'Returned'],
      traits: ['avg_spend', 'vip'],
      computations: ['vip'],
      usesContext: false,
      timeDependent: true,
    });
    expect(dependenciesOf(parseQuery("event('A').where(context('page.url') = 'x').count() > 0", { type: 'users' })).timeDependent).toBe(
      false,
    );
    expect(dependenciesOf(parseQuery("trait('signup').within_last(7 days)", { type: 'users' })).timeDependent).toBe(true);
  });
});

describe('findCycle', () => {
  const def = (key: string, query: string) => ({ key, ast: parseQuery(query, { type: 'users' }) });
  it('finds a cycle across references and returns its path', () => {
    expect(
      findCycle([def('a', "trait('b') = true"), def('b', "trait('c') = true"), def('c', "trait('a') = true AND trait('plan') = 'pro'")]),
    ).toEqual(['a', 'b', 'c', 'a']);
  });
  it('returns null for a chain without a cycle', () => {
    expect(findCycle([def('a', "trait('b') = true"), def('b', "event('X').count() > 1")])).toBeNull();
  });
});
