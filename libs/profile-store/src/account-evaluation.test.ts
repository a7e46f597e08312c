import { compileComputation, parseQuery, type CompiledComputation } from '@engage/engine';
import { evaluateAccount, linkAccount } from './account-evaluation';
import { emptyProfile, type StoredProfile } from './profile-state.repository';

const compile = (id: string, key: string, query: string, type: 'users' | 'accounts'): CompiledComputation =>
  compileComputation(
    { id, key, class: 'audience', ast: parseQuery(query, { type }), definitionVersion: 1, countsEventsFrom: 0 },
    new Set(['is_pro']),
  );

const any = compile('aud_any', 'any_buyer', "ANY event('Bought').count() >= 1", 'accounts');
const all = compile('aud_all', 'all_pro', "ALL trait('is_pro') = true", 'accounts');
const isPro = compile('aud_pro', 'is_pro', "trait('plan') = 'pro'", 'users');

function user(id: string, plan: string, bought: boolean): StoredProfile {
  const p = emptyProfile({ spaceId: 'spa_1', profileId: id });
  p.traits.plan = plan;
  p.values[isPro.id] = { value: plan === 'pro', version: 1 };
  if (bought)
    p.events.push({
      type: 'track',
      event: 'Bought',
      timestamp: 1000,
      arrivedAt: 1000,
      sourceId: 's',
      messageId: `m-${id}`,
      properties: {},
      traits: {},
      context: {},
    });
  return p;
}

describe('account-level evaluation', () => {
  it('ANY and ALL over the users, ALL reading a user-level audience; only changes are returned', () => {
    const account = emptyProfile({ spaceId: 'spa_1', profileId: 'acc_1' });
    const a = user('pro_a', 'pro', false);
    const b = user('pro_b', 'free', true);
    linkAccount(a, account);
    expect(evaluateAccount(account, [a], [any, all], [isPro], 2000).map((c) => [c.computation.key, c.previous, c.value])).toEqual([
      ['all_pro', false, true],
    ]);
    linkAccount(b, account);
    linkAccount(b, account); // idempotent
    expect([account.users, b.accounts]).toEqual([['pro_a', 'pro_b'], ['acc_1']]);
    expect(evaluateAccount(account, [a, b], [any, all], [isPro], 2000).map((c) => [c.computation.key, c.previous, c.value])).toEqual([
      ['any_buyer', false, true],
      ['all_pro', true, false],
    ]);
    expect(evaluateAccount(account, [a, b], [any, all], [isPro], 3000)).toEqual([]);
  });

  it('ALL over an account with no users is false', () => {
    const account = emptyProfile({ spaceId: 'spa_1', profileId: 'acc_2' });
    expect(evaluateAccount(account, [], [all], [isPro], 1000)).toEqual([]);
    expect(account.values[all.id]).toEqual({ value: false, version: 1 });
  });
});
