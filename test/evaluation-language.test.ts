// The query language through the fleet (real Kafka, schema registry, Redis;
// control plane, realtime evaluator and batch scheduler as processes):
// funnels with parent references, every reducer emitting only on change,
// trait() on computed traits and audiences, NOT, account-level ANY / ALL.
import { startFleet, type Fleet } from './helpers/evaluation-fleet';

const DAY = 86_400_000;
let f: Fleet;

beforeAll(async () => {
  f = await startFleet('eval-lang');
});
afterAll(async () => {
  await f?.stop();
});

const values = (profileId: string, key: string) =>
  f.changesOf(profileId, key).map((c) => (c.value_is_json ? JSON.parse(c.value as string) : c.value));

describe('the language, evaluated in real time', () => {
  it('funnel: within(parent:) and property(parent:) tie the returned item to its purchase', async () => {
    await f.create(
      'audiences',
      'Returned What They Bought',
      "event('Bought').where(event('Returned').where(property('sku') = property(parent: 'sku')).within(parent: 5 days).count() >= 1).count() >= 1",
    );
    await f.waitLive();
    const t0 = Date.now() - 20 * DAY;
    const bought = (p: string, sku: string) => f.event(p, { event: 'Bought', timestamp: t0, properties_json: JSON.stringify({ sku }) });
    const returned = (p: string, sku: string, after: number) =>
      f.event(p, { event: 'Returned', timestamp: t0 + after, properties_json: JSON.stringify({ sku }) });
    await f.send([
      bought('pro_fa', 'S1'),
      returned('pro_fa', 'S1', 2 * DAY), // same sku within 5 days: in
      bought('pro_fb', 'S1'),
      returned('pro_fb', 'S2', 2 * DAY), // other sku: out
      bought('pro_fc', 'S1'),
      returned('pro_fc', 'S1', 6 * DAY), // too late: out
    ]);
    await f.waitChanges('pro_fa', 'returned_what_they_bought', 1);
    expect(values('pro_fa', 'returned_what_they_bought')).toEqual([true]);
    // A later matching return brings pro_fb and pro_fc in, and the entry is
    // caused by that return (its occurred_at): they were out before.
    await f.send([returned('pro_fc', 'S1', 3 * DAY), returned('pro_fb', 'S1', 4 * DAY)]);
    const [fc] = await f.waitChanges('pro_fc', 'returned_what_they_bought', 1);
    const [fb] = await f.waitChanges('pro_fb', 'returned_what_they_bought', 1);
    expect([fb!.value, fb!.occurred_at - t0, fc!.value, fc!.occurred_at - t0]).toEqual([true, 4 * DAY, true, 3 * DAY]);
  });

  it('computed traits of every reducer emit only when their value changes', async () => {
    const reducers: Array<[string, string]> = [
      ['R Count', 'count()'],
      ['R Sum', "sum(property('x'))"],
      ['R Avg', "avg(property('x'))"],
      ['R Min', "min(property('x'))"],
      ['R Max', "max(property('x'))"],
      ['R First', "first(property('x'))"],
      ['R Last', "last(property('x'))"],
      ['R Mode', "mode(property('c'))"],
      ['R Unique', "unique(property('c'))"],
      ['R Unique Count', "unique(property('c')).count()"],
    ];
    for (const [name, reducer] of reducers) await f.create('computed-traits', name, `event('Reduced').${reducer}`);
    await f.waitLive();
    const t = Date.now() - 10_000;
    const ev = (i: number, props: Record<string, unknown>) =>
      f.event('pro_r', { event: 'Reduced', timestamp: t + i * 1000, properties_json: JSON.stringify(props) });
    await f.send([
      ev(1, { x: 5, c: 'red' }),
      ev(2, { x: 3, c: 'blue' }),
      ev(3, { x: 5, c: 'red' }),
      ev(4, { x: 9 }),
      f.event('pro_r', { event: 'Done' }),
    ]);
    await f.waitChanges('pro_r', 'r_last', 4);
    await f.send([ev(5, { x: 9 })]); // changes count, sum, avg only
    await f.waitChanges('pro_r', 'r_count', 5);
    await f.waitChanges('pro_r', 'r_avg', 5);
    const got = Object.fromEntries(reducers.map(([name]) => [name, values('pro_r', name.toLowerCase().replace(/ /g, '_'))]));
    expect(got).toEqual({
      'R Count': [1, 2, 3, 4, 5],
      'R Sum': [5, 8, 13, 22, 31],
      'R Avg': [5, 4, 13 / 3, 5.5, 6.2],
      'R Min': [5, 3],
      'R Max': [5, 9],
      'R First': [5],
      'R Last': [5, 3, 5, 9],
      'R Mode': ['red', 'blue', 'red'],
      'R Unique': [['red'], ['red', 'blue']],
      'R Unique Count': [1, 2],
    });
    expect(f.changesOf('pro_r', 'r_min').map((c) => [c.previous, c.value, c.computation_class])).toEqual([
      [null, 5, 'trait'],
      [5, 3, 'trait'],
    ]);
  });

  it('trait() reads a computed trait, an audience and an identify trait in the same pass; NOT excludes', async () => {
    await f.create('computed-traits', 'Total Spend', "event('Paid').sum(property('amount'))");
    await f.create('audiences', 'Spend Over 100', "trait('total_spend') > 100");
    await f.create('audiences', 'Pro Big Spender', "trait('spend_over_100') = true AND trait('plan') = 'pro'");
    await f.create('audiences', 'Paid Not Pro', "event('Paid').count() >= 1 AND NOT trait('plan') = 'pro'");
    await f.waitLive();
    const paid = (p: string, amount: number) => f.event(p, { event: 'Paid', properties_json: JSON.stringify({ amount }) });
    await f.send([
      f.event('pro_t', { type: 'identify', event: null, traits_json: '{"plan":"pro"}' }),
      paid('pro_t', 60),
      paid('pro_t', 50),
      paid('pro_n', 10),
    ]);
    await f.waitChanges('pro_t', 'pro_big_spender', 1);
    await f.waitChanges('pro_n', 'paid_not_pro', 1);
    // The identify call evaluates the trait first: the sum of no event is 0.
    expect(values('pro_t', 'total_spend')).toEqual([0, 60, 110]);
    expect(values('pro_t', 'spend_over_100')).toEqual([true]);
    expect(values('pro_t', 'pro_big_spender')).toEqual([true]);
    // All three changes of the last event came from one pass: the same occurred_at (the event's time).
    const last = [
      f.changesOf('pro_t', 'total_spend')[2]!, // 60 -> 110, the last event's (index 1 is the first Paid event's)
      f.changesOf('pro_t', 'spend_over_100')[0]!,
      f.changesOf('pro_t', 'pro_big_spender')[0]!,
    ];
    expect(new Set(last.map((c) => c.occurred_at)).size).toBe(1);
    expect(values('pro_t', 'paid_not_pro')).toEqual([]);
    // Downgrade: the identify trait changes, both audiences that read it follow.
    await f.send([f.event('pro_t', { type: 'identify', event: null, traits_json: '{"plan":"free"}' })]);
    await f.waitChanges('pro_t', 'pro_big_spender', 2);
    await f.waitChanges('pro_t', 'paid_not_pro', 1);
    expect([values('pro_t', 'pro_big_spender'), values('pro_t', 'paid_not_pro'), values('pro_n', 'paid_not_pro')]).toEqual([
      [true, false],
      [true],
      [true],
    ]);
  });

  it('account audiences: ANY and ALL over the users linked by group calls, re-evaluated when a user changes', async () => {
    await f.create('audiences', 'Account Any Buyer', "ANY event('Account Order').count() >= 1", {}, 'accounts');
    await f.create('audiences', 'Account All Pro', "ALL trait('tier') = 'pro'", {}, 'accounts');
    await f.waitLive();
    const group = (p: string) =>
      f.event(p, { type: 'group', event: null, group_id: 'g1', account_id: 'acc_1', traits_json: '{"name":"Acme"}' });
    const tier = (p: string, value: string) => f.event(p, { type: 'identify', event: null, traits_json: JSON.stringify({ tier: value }) });
    await f.send([tier('pro_u1', 'pro'), group('pro_u1')]);
    // One user, pro: ALL holds.
    const [allIn] = await f.waitChanges('acc_1', 'account_all_pro', 1);
    expect([allIn!.value, allIn!.level, allIn!.external_ids]).toEqual([true, 'account', [{ type: 'group_id', id: 'g1' }]]);
    // A second user, not pro, linked through the identity resolver's account_link: ALL no longer holds.
    await f.send([tier('pro_u2', 'free')]);
    await f.identity({ kind: 'account_link', profile_id: 'pro_u2', account_id: 'acc_1' });
    await f.waitChanges('acc_1', 'account_all_pro', 2);
    expect(values('acc_1', 'account_any_buyer')).toEqual([]);
    // Any user's order brings the account into ANY.
    await f.send([f.event('pro_u2', { event: 'Account Order' })]);
    await f.waitChanges('acc_1', 'account_any_buyer', 1);
    // u2 upgrades: ALL holds again.
    await f.send([tier('pro_u2', 'pro')]);
    await f.waitChanges('acc_1', 'account_all_pro', 3);
    expect(values('acc_1', 'account_all_pro')).toEqual([true, false, true]);
    expect(values('acc_1', 'account_any_buyer')).toEqual([true]);
  });
});
