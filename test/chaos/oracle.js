// The oracle: the engine's naive reference evaluator (evaluateReference) over
// exactly the calls the ingest acknowledged, per person (the person's
// anonymous and identified calls stitched, as the load's identity model says)
// and per account (the persons whose group call was acknowledged).
//
// For every computation it gives the expected final value now; for the
// computations that do not depend on the clock it also gives the expected
// sequence of values, which is what the fleet must emit (one change per
// value change, in order): the load keeps per-person order, so the value
// after each acknowledged call is what the evaluator sees.
'use strict';
const { parseQuery, evaluateReference } = require('@engage/engine');

/** The computations of a chaos space: name, key, query, class, level, and whether its value depends on the clock. */
const COMPUTATIONS = [
  {
    kind: 'audiences',
    name: 'Active Last Hour',
    key: 'active_last_hour',
    query: "event('Session Started').within(1 hours).count() >= 1",
    clock: true,
  },
  {
    kind: 'audiences',
    name: 'Pro Not Cancelled',
    key: 'pro_not_cancelled',
    query: "trait('plan') = 'pro' AND NOT event('Cancelled').count() >= 1",
  },
  {
    kind: 'audiences',
    name: 'Cart Then Order',
    key: 'cart_then_order',
    query: "event('Cart Viewed').where(event('Order Completed').within(parent: 1 hours).count() >= 1).count() >= 1",
  },
  { kind: 'computed-traits', name: 'Orders', key: 'orders', query: "event('Order Completed').count()" },
  { kind: 'computed-traits', name: 'Revenue', key: 'revenue', query: "event('Order Completed').sum(property('revenue'))" },
  {
    kind: 'audiences',
    name: 'Buying Account',
    key: 'buying_account',
    query: "ANY event('Order Completed').count() >= 2",
    level: 'account',
  },
].map((c) => ({
  level: 'user',
  clock: false,
  ...c,
  ast: parseQuery(c.query, { type: c.kind === 'computed-traits' ? 'trait' : c.level === 'account' ? 'accounts' : 'users' }),
  audience: c.kind === 'audiences',
}));

/** A Segment call as the evaluators see it. */
function engineEvent(call, sourceId) {
  return {
    type: call.type,
    event: call.type === 'track' ? call.event : undefined,
    name: call.type === 'page' || call.type === 'screen' ? call.name : undefined,
    timestamp: Date.parse(call.timestamp),
    sourceId,
    messageId: call.messageId,
    properties: call.properties ?? {},
    traits: call.traits ?? {},
    context: {},
  };
}

/** A person's evaluation context over their first `n` acknowledged calls. */
function personContext(person, n, sourceId, now) {
  const calls = person.acked.slice(0, n).map((a) => a.call);
  const traits = {};
  for (const c of calls) if (c.type === 'identify') Object.assign(traits, c.traits ?? {});
  return { events: calls.map((c) => engineEvent(c, sourceId)), traits, computed: {}, now };
}

/** The initial value before any emission: audiences start outside, traits without a value. */
const initial = (c) => (c.audience ? false : null);

/**
 * The expected sequence of values (the fleet's changes, in order) of a
 * clock-free user computation over the person's first `n` acknowledged calls.
 */
function expectedSequence(comp, person, n, sourceId, now) {
  const seq = [];
  let prev = initial(comp);
  // Each call can change the value; the profile exists from its first call on.
  for (let k = 1; k <= n; k++) {
    const v = evaluateReference(comp.ast, personContext(person, k, sourceId, now));
    if (!same(v, prev)) seq.push(v);
    prev = v;
  }
  return seq;
}

function same(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) < 1e-9;
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Expectations over the acknowledged calls at `now`:
 * users: Map(person.i -> { finals: {key: value}, sequences: {key: [values]} }),
 * accounts: Map(groupId -> { finals: {key: value} }). Tainted persons (a call
 * given up, its fate unknown) and their accounts are left out.
 */
function expectations(persons, sourceId, now, opts = {}) {
  const users = new Map();
  const accounts = new Map();
  const taintedAccounts = new Set();
  for (const p of persons) {
    const n = opts.snapshot ? (opts.snapshot.get(p.i) ?? 0) : p.acked.length;
    if (p.tainted) {
      if (p.groupId) taintedAccounts.add(p.groupId);
      continue;
    }
    if (n === 0) continue;
    const ctx = personContext(p, n, sourceId, now);
    const finals = {};
    const sequences = {};
    for (const c of COMPUTATIONS.filter((c) => c.level === 'user')) {
      finals[c.key] = evaluateReference(c.ast, ctx);
      if (!c.clock) sequences[c.key] = expectedSequence(c, p, n, sourceId, now);
    }
    users.set(p.i, { person: p, finals, sequences, ctx });
    const group = p.acked.slice(0, n).find((a) => a.call.type === 'group');
    if (group) {
      const acc = accounts.get(group.call.groupId) ?? { users: [], traits: {} };
      acc.users.push(ctx);
      Object.assign(acc.traits, group.call.traits ?? {});
      accounts.set(group.call.groupId, acc);
    }
  }
  const accountFinals = new Map();
  for (const [groupId, acc] of accounts) {
    if (taintedAccounts.has(groupId)) continue;
    const finals = {};
    for (const c of COMPUTATIONS.filter((c) => c.level === 'account')) {
      finals[c.key] = evaluateReference(c.ast, { events: [], traits: acc.traits, computed: {}, now, users: acc.users });
    }
    accountFinals.set(groupId, { finals });
  }
  return { users, accounts: accountFinals, taintedAccounts };
}

/** When the clock-dependent values stop changing: the last back-dated window's end. */
function lastWindowEnd(persons) {
  let last = 0;
  for (const p of persons)
    for (const a of p.acked) if (a.call.event === 'Session Started') last = Math.max(last, Date.parse(a.call.timestamp) + 3_600_000);
  return last;
}

module.exports = { COMPUTATIONS, expectations, expectedSequence, engineEvent, lastWindowEnd, same, initial };
