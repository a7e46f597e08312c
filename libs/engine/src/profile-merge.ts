// Profile merges (identity): the survivor's incremental states become the
// combination of both profiles' states, never a recomputation from the
// bounded histories, so all-time answers keep every event either profile
// ever counted (issue 18). The histories are unioned too, but only for the
// Profile API's recent events and for building computations a side has no
// state of.
//
// Two steps, because the identity step merges before it knows the space's
// computations: absorbProfile (no evaluators) moves the merged profile's
// states and history into the survivor and records what it brought
// (`incremental.m`); the next evaluation of the survivor (sync, with the
// computations and `now`) combines the states with combineAbsorbed.
// mergeProfileStates (profile-evaluation.ts) does both at once.
//
// Duplicates: an event applied to both profiles must count once. It happens
// when the resolver re-delivers an event after re-resolving it to the
// survivor while the merge itself is still on its way: events.resolved and
// identity.changes are separate topics, so the event can reach the survivor
// before the merge does, while its first delivery was counted by the merged
// profile. Both copies are then among each profile's latest arrivals. The
// rule relied on: a duplicate is recognised by its event id (eventIdOf) while
// BOTH bounded histories still hold it (the same bound under which a
// redelivery to one profile is recognised); the merged profile's copy is then
// taken out of its states (IncrementalEvaluator.merge's `shared`) before they
// combine. A copy only one history still holds counts twice.
import { eventIdOf, type EngineEvent } from './event';
import type { IncrementalEvaluator, IncrementalState } from './incremental';
import type { CompiledComputation, IncrementalStates, ProfileState, StoredEvent } from './profile-evaluation';

/** A merged profile's states, kept in the survivor until its next evaluation combines them. */
export interface AbsorbedStates {
  /** The token its history events carry (renamed on absorb: unique within the survivor). */
  tok: string;
  h: number;
  c: Record<string, { v: number; s: IncrementalState }>;
  /** Its copies of events that the survivor's states counted too: taken out before combining. */
  d?: StoredEvent[];
}

/** What absorbProfile leaves for the next evaluation: the states to combine, and the history bound to restore then. */
export interface PendingMerge {
  keep: number;
  from: AbsorbedStates[];
}

const byTime = (a: StoredEvent, b: StoredEvent) => a.timestamp - b.timestamp || (a.messageId < b.messageId ? -1 : 1);

/**
 * Moves `merged` into `survivor` without evaluators: the history union (by
 * event id; each event keeps the token of the states that counted it) and
 * the merged profile's states, combined at the survivor's next evaluation.
 * `merged` is left as it was. The history is cut to `maxEvents` only once
 * the states are combined (a side without a state of some computation is
 * built from its events in the history).
 */
export function absorbProfile(survivor: ProfileState, merged: ProfileState, opts: { maxEvents: number }): void {
  const inc = (survivor.incremental ??= { tok: '', h: 0, c: {} });
  const pending = (inc.m ??= { keep: opts.maxEvents, from: [] });
  pending.keep = opts.maxEvents;
  // States whose events the survivor's history marks as counted.
  const counted = new Set([inc.tok, ...pending.from.map((x) => x.tok)].filter((t) => t !== ''));
  // TRICKY: tokens are event ids, and one event can sit in both profiles: a
  // merged token is renamed until nothing in the survivor uses it.
  const used = new Set([...counted, ...survivor.events.map((e) => e.inc ?? '')]);
  const rename = new Map<string, AbsorbedStates>();
  const take = (tok: string, from: Omit<AbsorbedStates, 'tok'>) => {
    let t = tok;
    while (used.has(t)) t += '+';
    used.add(t);
    rename.set(tok, { ...from, tok: t, d: [...(from.d ?? [])] });
  };
  const other = merged.incremental;
  if (other?.tok) take(other.tok, { h: other.h, c: other.c });
  for (const x of other?.m?.from ?? []) take(x.tok, x);

  const at = new Map(survivor.events.map((e, i) => [eventIdOf(e), i]));
  for (const e of merged.events) {
    const side = e.inc === undefined ? undefined : rename.get(e.inc);
    const copy: StoredEvent = { ...e };
    if (side) copy.inc = side.tok;
    else delete copy.inc; // no state of the merged profile counted it: applied once, after combining
    const i = at.get(eventIdOf(e));
    if (i === undefined) {
      at.set(eventIdOf(e), survivor.events.length);
      survivor.events.push(copy);
    } else if (side) {
      const kept = survivor.events[i]!;
      // Only the merged profile counted it: its copy stays, the survivor's (to be applied) goes.
      if (kept.inc === undefined || !counted.has(kept.inc)) survivor.events[i] = copy;
      // Both counted it: the survivor's copy stays, the merged states give theirs back.
      else side.d!.push(copy);
    }
    // Else the merged copy was never counted: the survivor's copy stands.
  }
  survivor.events.sort(byTime);
  for (const x of rename.values()) pending.from.push(x.d!.length ? x : { tok: x.tok, h: x.h, c: x.c });
}

/**
 * Completes absorbProfile: per computation, the survivor's state merged with
 * each absorbed one (its duplicates taken out first); a side with no current
 * state of a computation (new or edited since that profile was saved) is
 * built from its own events in the history, as any new computation is; then
 * the events no state counted are applied once. Afterwards every history
 * event is marked as seen by the combined states, and the history is cut to
 * its bound. Called by sync (profile-evaluation.ts) before anything else.
 */
export function combineAbsorbed(
  state: ProfileState,
  inc: IncrementalStates,
  ordered: CompiledComputation[],
  deps: { evaluatorOf: (c: CompiledComputation) => IncrementalEvaluator; counts: (c: CompiledComputation, e: StoredEvent) => boolean },
): void {
  const pending = inc.m!;
  delete inc.m;
  for (const x of pending.from) if (x.h > inc.h) inc.h = x.h;
  const h = inc.h;
  const sides: AbsorbedStates[] = [{ tok: inc.tok, h, c: inc.c }, ...pending.from];
  const counted = new Set(sides.map((x) => x.tok).filter((t) => t !== ''));
  const byId = new Map(state.events.map((e) => [eventIdOf(e), e]));
  const c: IncrementalStates['c'] = {};
  for (const comp of ordered) {
    const ev = deps.evaluatorOf(comp);
    let combined: IncrementalState | undefined;
    for (const side of sides) {
      const cur = side.c[comp.id];
      let s: IncrementalState;
      let shared: EngineEvent[] = [];
      if (cur && cur.v === comp.definitionVersion) {
        s = cur.s;
        // Counted by both: this side's copy comes out (the kept copy's side counted it iff it counts for comp).
        shared = (side.d ?? []).filter((e) => deps.counts(comp, e) && deps.counts(comp, byId.get(eventIdOf(e)) ?? e));
      } else {
        s = ev.initState();
        if (side.tok) for (const e of state.events) if (e.inc === side.tok && deps.counts(comp, e)) ev.apply(s, e, h);
      }
      combined = combined === undefined ? s : ev.merge(combined, s, shared);
    }
    const s = ev.advance(combined!, h);
    for (const e of state.events) if (!(e.inc !== undefined && counted.has(e.inc)) && deps.counts(comp, e)) ev.apply(s, e, h);
    // The survivor's entry keeps whatever else it records (a backfill's marks).
    const own = inc.c[comp.id];
    c[comp.id] = own && own.v === comp.definitionVersion ? Object.assign(own, { s }) : { v: comp.definitionVersion, s };
  }
  inc.c = c;
  inc.n = ordered.length;
  if (!inc.tok && state.events.length) inc.tok = eventIdOf(state.events[0]!);
  for (const e of state.events) e.inc = inc.tok;
  if (state.events.length > pending.keep) state.events.splice(0, state.events.length - pending.keep);
}
