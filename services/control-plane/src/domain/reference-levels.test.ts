import { parseQuery } from '@engage/engine';
import { traitReads } from './reference-levels';

describe('traitReads', () => {
  it('reads of an account audience are account-level except inside ANY / ALL', () => {
    const ast = parseQuery(
      "trait('plan') = 'pro' AND ANY (trait('vip') = true AND event('A').where(trait('x') = 1).count() > 0) AND NOT ALL trait('y') = 1",
      { type: 'accounts' },
    );
    expect(traitReads(ast)).toEqual([
      { name: 'plan', level: 'account' },
      { name: 'vip', level: 'user' },
      { name: 'x', level: 'user' },
      { name: 'y', level: 'user' },
    ]);
  });

  it('user audiences read at user level; computed traits at the level given', () => {
    expect(traitReads(parseQuery("trait('a') > trait('b')", { type: 'users' }))).toEqual([
      { name: 'a', level: 'user' },
      { name: 'b', level: 'user' },
    ]);
    expect(traitReads(parseQuery("event('A').where(trait('c') = 1).sum(property('v'))", { type: 'trait' }), 'account')).toEqual([
      { name: 'c', level: 'account' },
    ]);
  });
});
