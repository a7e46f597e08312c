// Account-level computations (definition type `accounts`): ANY / ALL / NOT
// over the users linked to an account by group calls. Pure: the services load
// the account's document and its users' documents and save the result.
//
// NOTE (documented subset): account values are evaluated with the reference
// evaluator over each user's stored (bounded) history, re-evaluated whenever
// one of the account's users gets an event, a link or a merge. They are not
// woken by the scheduler when a window passes (user-level values are), and an
// account audience cannot be read by trait() from user-level computations.
import { evaluateReference, type CompiledComputation, type EvaluationContext, type Value, type ValueChange } from '@engage/engine';
import type { StoredProfile } from './profile-state.repository';

const initialValue = (c: CompiledComputation): Value => (c.class === 'audience' ? false : null);

/** User-level values by computation key (what trait() reads inside ANY / ALL). */
function computedByKey(p: StoredProfile, keyOf: Map<string, string>): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const [id, v] of Object.entries(p.values)) {
    const key = keyOf.get(id);
    if (key !== undefined) out[key] = v.value;
  }
  return out;
}

/**
 * Re-evaluates every account computation of `account` over `users` at `now`;
 * updates `account.values` in place and returns the changed values.
 * `userLevel` are the space's user computations (for the key of each stored value).
 */
export function evaluateAccount(
  account: StoredProfile,
  users: StoredProfile[],
  accountLevel: CompiledComputation[],
  userLevel: CompiledComputation[],
  now: number,
): ValueChange[] {
  const keyOf = new Map(userLevel.map((c) => [c.id, c.key]));
  const changes: ValueChange[] = [];
  for (const c of accountLevel) {
    const userContexts: EvaluationContext[] = users.map((u) => ({
      events: u.events.filter((e) => e.arrivedAt >= c.countsEventsFrom),
      traits: u.traits,
      computed: computedByKey(u, keyOf),
      now,
    }));
    const value = evaluateReference(c.ast, { events: [], traits: account.traits, computed: {}, now, users: userContexts });
    const stored = account.values[c.id];
    const previous = stored && stored.version === c.definitionVersion ? stored.value : (stored?.value ?? initialValue(c));
    account.values[c.id] = { value, version: c.definitionVersion };
    if (JSON.stringify(value) !== JSON.stringify(previous)) changes.push({ computation: c, value, previous });
  }
  return changes;
}

/** Links a user to an account on both documents (idempotent). */
export function linkAccount(user: StoredProfile, account: StoredProfile): void {
  user.accounts ??= [];
  if (!user.accounts.includes(account.profileId)) user.accounts.push(account.profileId);
  account.users ??= [];
  if (!account.users.includes(user.profileId)) account.users.push(user.profileId);
}
