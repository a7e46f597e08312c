// Evaluation of one profile's computations as its events arrive: the pure core
// of the realtime evaluator (the service only loads and saves the state).
//
// Values come from the incremental evaluator (./incremental): per computation
// a small state in `state.incremental`, updated by each event, so an event
// costs the same whatever the history's length, and all-time aggregates count
// every event ever applied. `state.events` stays a bounded history (the last
// `maxEvents`): it deduplicates redeliveries and is what a new or edited
// computation is built from. A profile merge combines the states themselves
// (profile-merge.ts), never recomputing them from the bounded history.
//
// TRICKY: services change `state.events` directly (a backfill may append
// events; absorbProfile appends the merged profile's). Each event carries the token of the
// incremental states it was applied to (`inc`); any event without this
// profile's token is applied on the next call, so such changes are never lost.
import type { QueryAst } from './ast';
import { dependenciesOf, type Dependencies } from './dependencies';
import { eventIdOf, eventNameOf, type EngineEvent, type Value } from './event';
import { compileIncremental, type IncrementalEvaluator, type IncrementalState } from './incremental';
import { mergeTraits } from './profile-limits';
import { newerTraits, noteTraitTimes } from './trait-times';
import { absorbProfile, combineAbsorbed, type PendingMerge } from './profile-merge';
import { valuesEqual } from './reference-evaluator';

export interface CompiledComputation {
  id: string;
  key: string;
  class: 'audience' | 'trait';
  ast: QueryAst;
  deps: Dependencies;
  /** Events that arrived before this instant do not count (no historical data). */
  countsEventsFrom: number;
  definitionVersion: number;
}

export interface StoredValue {
  value: Value;
  /** definitionVersion the value was computed with. */
  version: number;
}

/** Incremental states of a profile's computations. */
export interface IncrementalStates {
  /** Marks the events these states have seen (an event id of this profile, eventIdOf: unique across profiles). */
  tok: string;
  /** The latest `now` the states were given (they answer for T >= h). */
  h: number;
  /** By computation id: the definition version and the state. */
  c: Record<string, { v: number; s: IncrementalState }>;
  /** How many entries `c` has (saves counting per event). */
  n?: number;
  /** States of merged profiles not combined yet (absorbProfile): the next sync combines them. */
  m?: PendingMerge;
}

export type StoredEvent = EngineEvent & { arrivedAt: number; /** token of the incremental states that saw it */ inc?: string };

export interface ProfileState {
  /** Oldest first, at most `maxEvents`. Each carries `arrivedAt` (ms), the time it was resolved. */
  events: StoredEvent[];
  traits: Record<string, unknown>;
  /**
   * Event time (ms) of the identify or group call that last set each trait:
   * an older call does not overwrite it (trait-times.ts). Absent for traits
   * stored before it existed.
   */
  traitTimes?: Record<string, number>;
  values: Record<string, StoredValue>;
  /** Absent on profiles stored before incremental evaluation: built from `events` on first use. */
  incremental?: IncrementalStates;
}

export interface ValueChange {
  computation: CompiledComputation;
  value: Value;
  previous: Value;
  /** The event that caused it (undefined for time-only or config-caused changes). */
  cause?: EngineEvent;
}

// One evaluator per parsed definition, shared by every profile.
const evaluators = new WeakMap<QueryAst, IncrementalEvaluator>();
function evaluatorOf(c: CompiledComputation): IncrementalEvaluator {
  let e = evaluators.get(c.ast);
  if (!e) {
    e = compileIncremental(c.ast);
    evaluators.set(c.ast, e);
  }
  return e;
}

export function compileComputation(c: Omit<CompiledComputation, 'deps'>, computationKeys: Set<string>): CompiledComputation {
  const compiled = { ...c, deps: dependenciesOf(c.ast, computationKeys) };
  evaluatorOf(compiled);
  return compiled;
}

/** Audiences and traits in dependency order: a computation after those it reads through trait(). */
export function dependencyOrder(computations: CompiledComputation[]): CompiledComputation[] {
  const byKey = new Map(computations.map((c) => [c.key, c]));
  const done = new Set<string>();
  const out: CompiledComputation[] = [];
  const visit = (c: CompiledComputation, stack: Set<string>) => {
    if (done.has(c.key) || stack.has(c.key)) return; // cycles are rejected by the control plane
    stack.add(c.key);
    for (const ref of c.deps.computations) {
      const dep = byKey.get(ref);
      if (dep) visit(dep, stack);
    }
    done.add(c.key);
    out.push(c);
  };
  for (const c of computations) visit(c, new Set());
  return out;
}

const readKeys = new WeakMap<CompiledComputation[], Set<string>>();
/** The computation keys that computations of `ordered` read through trait(). */
function readKeysOf(ordered: CompiledComputation[]): Set<string> {
  let keys = readKeys.get(ordered);
  if (!keys) {
    keys = new Set(ordered.flatMap((c) => c.deps.computations));
    readKeys.set(ordered, keys);
  }
  return keys;
}

const timedComputations = new WeakMap<CompiledComputation[], CompiledComputation[]>();
/** The computations of `ordered` whose value can change with time alone (window edges, relative dates). */
function timedOf(ordered: CompiledComputation[]): CompiledComputation[] {
  let timed = timedComputations.get(ordered);
  if (!timed) {
    timed = ordered.filter((c) => c.deps.timeDependent);
    timedComputations.set(ordered, timed);
  }
  return timed;
}

/**
 * Per `ordered` list (the registry rebuilds the list on every change of the
 * space's computations, so a list's identity stands for one set of
 * definitions): which computations an event name, a trait or a computed
 * value concerns, as positions in the list. An event then touches only the
 * few computations it concerns instead of testing all of them.
 */
interface OrderedIndex {
  /** Event name -> computations whose incremental state applies it. */
  appliers: Map<string, number[]>;
  /** Event name -> computations whose value it can change (deps.eventNames). */
  byEvent: Map<string, number[]>;
  /** Trait -> computations reading it. */
  byTrait: Map<string, number[]>;
  /** Computations reading the event's context (any named event affects them). */
  context: number[];
  /** Computation key -> computations reading its value through trait() (always later in the list). */
  readers: Map<string, number[]>;
}
const indexes = new WeakMap<CompiledComputation[], OrderedIndex>();
function indexOf(ordered: CompiledComputation[]): OrderedIndex {
  let index = indexes.get(ordered);
  if (index) return index;
  const push = (m: Map<string, number[]>, k: string, i: number) => {
    const list = m.get(k);
    if (list) list.push(i);
    else m.set(k, [i]);
  };
  index = { appliers: new Map(), byEvent: new Map(), byTrait: new Map(), context: [], readers: new Map() };
  ordered.forEach((c, i) => {
    for (const name of evaluatorOf(c).eventNames) push(index!.appliers, name, i);
    for (const name of c.deps.eventNames) push(index!.byEvent, name, i);
    for (const t of c.deps.traits) push(index!.byTrait, t, i);
    if (c.deps.usesContext) index!.context.push(i);
    for (const k of c.deps.computations) push(index!.readers, k, i);
  });
  indexes.set(ordered, index);
  return index;
}

/**
 * The list each in-memory state object was last brought in line with (sync)
 * and whose values were all last evaluated with (evaluateSynced): while it
 * is the same list, no computation is new, edited or dropped, so the per-
 * computation checks can be skipped. Objects decoded from storage start
 * unmarked. NOTE: code that changes `inc.c` outside this module must keep
 * `inc.n` right (history-handover's addHistory does): a count that differs
 * from the list's length also forces the full checks.
 */
const statesSyncedWith = new WeakMap<IncrementalStates, CompiledComputation[]>();
const valuesCurrentFor = new WeakMap<Record<string, StoredValue>, CompiledComputation[]>();

/** Default of a computation that has seen nothing: audiences are false, traits null. */
const initialValue = (c: CompiledComputation): Value => (c.class === 'audience' ? false : null);

const counts = (c: CompiledComputation, e: StoredEvent) => e.arrivedAt >= c.countsEventsFrom;

function firstUnseenOf(events: StoredEvent[], tok: string): number {
  for (let i = 0; i < events.length; i++) if (events[i]!.inc !== tok) return i;
  return -1;
}

/**
 * Brings the incremental states in line with `state.events` and `ordered`:
 * new or edited computations are built from the stored history, events no
 * state has seen (merges, backfills) are applied, dropped computations go.
 */
function sync(state: ProfileState, ordered: CompiledComputation[], now: number, knownFirstUnseen?: number): IncrementalStates {
  const inc = (state.incremental ??= { tok: '', h: now, c: {} });
  if (now > inc.h) inc.h = now;
  // A merge left states to combine: before anything reads the history's tokens (they tell the sides apart).
  if (inc.m) {
    combineAbsorbed(state, inc, ordered, { evaluatorOf, counts });
    knownFirstUnseen = -1;
    statesSyncedWith.delete(inc); // the combined states get the full checks below
  }
  if (!inc.tok && state.events.length) inc.tok = eventIdOf(state.events[0]!);
  // Usually every event is seen: one pass without allocating finds that out.
  const firstUnseen = knownFirstUnseen ?? firstUnseenOf(state.events, inc.tok);
  if (firstUnseen < 0 && statesSyncedWith.get(inc) === ordered && inc.n === ordered.length) return inc;
  const unseen = firstUnseen < 0 ? [] : state.events.slice(firstUnseen).filter((e) => e.inc !== inc.tok);
  for (const c of ordered) {
    const ev = evaluatorOf(c);
    const cur = inc.c[c.id];
    if (!cur || cur.v !== c.definitionVersion) {
      const s = ev.initState();
      for (const e of state.events) if (counts(c, e)) ev.apply(s, e, inc.h);
      if (!cur) inc.n = (inc.n ?? 0) + 1;
      inc.c[c.id] = { v: c.definitionVersion, s };
    } else if (unseen.length) for (const e of unseen) if (counts(c, e)) ev.apply(cur.s, e, inc.h);
  }
  // Every computation of `ordered` has a state now: more states than that means some were dropped from the space.
  if (inc.n === undefined || inc.n !== ordered.length) {
    const live = new Set(ordered.map((c) => c.id));
    for (const id of Object.keys(inc.c)) if (!live.has(id)) delete inc.c[id];
    inc.n = Object.keys(inc.c).length;
  }
  for (const e of unseen) e.inc = inc.tok;
  statesSyncedWith.set(inc, ordered);
  return inc;
}

/**
 * Whether applying events to this state needs its stored history in memory:
 * a computation of `ordered` is new or edited (its state is built from the
 * history), or the history holds events the states have not seen (appended by
 * a merge or a backfill). Otherwise `state.events` may hold just the events
 * being applied: the incremental states carry the effect of all the others.
 */
export function needsHistory(state: ProfileState & { unseenEvents?: boolean }, ordered: CompiledComputation[]): boolean {
  const inc = state.incremental;
  if (!inc || !inc.tok || inc.m || state.unseenEvents) return true;
  if (statesSyncedWith.get(inc) === ordered && inc.n === ordered.length) return false;
  for (const c of ordered) if (inc.c[c.id]?.v !== c.definitionVersion) return true;
  return false;
}

/**
 * A profile merge (identity): `merged`'s incremental states combine into
 * `survivor`'s (counts and sums add, windows and funnels unite, first/last by
 * time: profile-merge.ts) and its history joins the survivor's; `merged` is
 * left as it was. Values are not re-evaluated here (reevaluate does).
 */
export function mergeProfileStates(
  survivor: ProfileState,
  merged: ProfileState,
  ordered: CompiledComputation[],
  now: number,
  opts: { maxEvents: number },
): void {
  absorbProfile(survivor, merged, opts);
  sync(survivor, ordered, now);
}

/**
 * Re-evaluates `affected` computations (and everything reading them) at `now`
 * and returns the changed values; `state.values` is updated in place.
 */
export function reevaluate(
  state: ProfileState,
  ordered: CompiledComputation[],
  affected: (c: CompiledComputation) => boolean,
  now: number,
  cause?: EngineEvent,
): ValueChange[] {
  return evaluateSynced(state, sync(state, ordered, now), ordered, affected, cause);
}

function evaluateSynced(
  state: ProfileState,
  inc: IncrementalStates,
  ordered: CompiledComputation[],
  affected: (c: CompiledComputation) => boolean,
  cause?: EngineEvent,
): ValueChange[] {
  const T = inc.h;
  // Only the values some computation reads through trait() (most read none).
  const read = readKeysOf(ordered);
  const computed: Record<string, Value> = {};
  if (read.size) for (const c of ordered) if (read.has(c.key)) computed[c.key] = state.values[c.id]?.value ?? initialValue(c);
  const changedKeys = new Set<string>();
  const changes: ValueChange[] = [];
  for (const c of ordered) {
    const stored = state.values[c.id];
    const stale = !stored || stored.version !== c.definitionVersion;
    if (!stale && !affected(c) && (changedKeys.size === 0 || !c.deps.computations.some((k) => changedKeys.has(k)))) continue;
    const value = evaluatorOf(c).valueAt(inc.c[c.id]!.s, { traits: state.traits, computed }, T);
    const previous = stored?.value ?? initialValue(c);
    setValue(state, c, stored, value);
    if (read.has(c.key)) computed[c.key] = value;
    if (!sameValue(value, previous)) {
      changedKeys.add(c.key);
      changes.push({ computation: c, value, previous, cause });
    }
  }
  valuesCurrentFor.set(state.values, ordered);
  return changes;
}

/**
 * evaluateSynced for values already current for `ordered` (none stale): only
 * the computations at positions `first` and, when a value changes, those
 * reading it (later in the list), in list order. Same result, without a look
 * at every computation.
 */
function evaluateMarked(
  state: ProfileState,
  inc: IncrementalStates,
  ordered: CompiledComputation[],
  first: number[],
  cause?: EngineEvent,
): ValueChange[] {
  const changes: ValueChange[] = [];
  if (first.length === 0) return changes;
  const index = indexOf(ordered);
  const marked = new Uint8Array(ordered.length);
  let from = ordered.length;
  for (const i of first) {
    marked[i] = 1;
    if (i < from) from = i;
  }
  const read = readKeysOf(ordered);
  let computed: Record<string, Value> | null = null;
  for (let i = from; i < ordered.length; i++) {
    if (marked[i] === 0) continue;
    const c = ordered[i]!;
    if (computed === null) {
      computed = {};
      if (read.size) for (const r of ordered) if (read.has(r.key)) computed[r.key] = state.values[r.id]?.value ?? initialValue(r);
    }
    const stored = state.values[c.id];
    const value = evaluatorOf(c).valueAt(inc.c[c.id]!.s, { traits: state.traits, computed }, inc.h);
    const previous = stored?.value ?? initialValue(c);
    setValue(state, c, stored, value);
    if (read.has(c.key)) computed[c.key] = value;
    if (!sameValue(value, previous)) {
      changes.push({ computation: c, value, previous, cause });
      for (const j of index.readers.get(c.key) ?? []) marked[j] = 1;
    }
  }
  return changes;
}

/**
 * Stores a computation's value: in place when the entry is of this version
 * (the usual case: a long-lived state object, e.g. one the evaluator keeps
 * in memory, is not handed a new object per evaluation for the GC to promote
 * and collect), else a new entry.
 */
function setValue(state: ProfileState, c: CompiledComputation, stored: StoredValue | undefined, value: Value): void {
  if (stored !== undefined && stored.version === c.definitionVersion) stored.value = value;
  else state.values[c.id] = { value, version: c.definitionVersion };
}

function sameValue(a: Value, b: Value): boolean {
  if (a === null || b === null) return a === b;
  if (typeof a !== typeof b) return false;
  return valuesEqual(a, b);
}

/**
 * Applies one event: traits from identify/group calls, the event to the
 * incremental states and the bounded history (duplicates by event id within
 * the history ignored: redelivery is harmless), then re-evaluates the
 * computations it can affect. Returns the changes.
 */
export function applyEvent(
  state: ProfileState,
  event: EngineEvent & { arrivedAt: number },
  ordered: CompiledComputation[],
  opts: { maxEvents: number; now: number; /** receives trait keys left out for PROFILE_LIMITS */ refusedTraits?: string[] },
): ValueChange[] {
  // One pass over the history: a redelivery (same event id) changes nothing; note the first event the states have not seen.
  // NOTE: the event id, not the messageId: another event that reuses a messageId still counts.
  const tok = state.incremental?.tok ?? '';
  const id = eventIdOf(event);
  let firstUnseen = -1;
  for (let i = 0; i < state.events.length; i++) {
    const e = state.events[i]!;
    if (eventIdOf(e) === id) return [];
    if (firstUnseen < 0 && (e.inc !== tok || !tok)) firstUnseen = i;
  }
  const inc = sync(state, ordered, opts.now, firstUnseen);
  let changedTraits = new Set<string>();
  if (event.type === 'identify' || event.type === 'group') {
    // Bounded (profile-limits.ts): traits past a limit are left out and reported, the event still counts.
    // A trait a newer call has set keeps its value (trait-times.ts).
    const applied = newerTraits(event.traits, state.traitTimes, event.timestamp);
    const merge = mergeTraits(state.traits, applied);
    noteTraitTimes(state, applied, merge.refused, event.timestamp);
    changedTraits = new Set(merge.changed);
    if (merge.refused.length > 0) opts.refusedTraits?.push(...merge.refused);
  }
  const stored: StoredEvent = { ...event };
  if (!inc.tok) inc.tok = id;
  stored.inc = inc.tok;
  const name = eventNameOf(event);
  const index = indexOf(ordered);
  if (name !== undefined) {
    for (const i of index.appliers.get(name) ?? []) {
      const c = ordered[i]!;
      if (counts(c, stored)) evaluatorOf(c).apply(inc.c[c.id]!.s, stored, inc.h);
    }
  }
  // Keep time order for the history (events mostly arrive in order: insert from the end);
  // drop the oldest beyond the bound (the states keep their effect).
  const events = state.events;
  let at = events.length;
  while (
    at > 0 &&
    (events[at - 1]!.timestamp > stored.timestamp ||
      (events[at - 1]!.timestamp === stored.timestamp && events[at - 1]!.messageId > stored.messageId))
  )
    at--;
  events.splice(at, 0, stored);
  if (events.length > opts.maxEvents) events.splice(0, events.length - opts.maxEvents);
  if (valuesCurrentFor.get(state.values) === ordered) {
    const first = name === undefined ? [] : [...(index.byEvent.get(name) ?? []), ...index.context];
    for (const t of changedTraits) first.push(...(index.byTrait.get(t) ?? []));
    return evaluateMarked(state, inc, ordered, first, event);
  }
  return evaluateSynced(
    state,
    inc,
    ordered,
    (c) =>
      (name !== undefined && c.deps.eventNames.includes(name)) ||
      c.deps.traits.some((t) => changedTraits.has(t)) ||
      (c.deps.usesContext && name !== undefined),
    event,
  );
}

/**
 * The earliest instant after `now` at which some value can change with no new
 * event (a window edge or a relative date passing), or null: the minimum of
 * each time-dependent computation's own next change. A change that flows on
 * to readers through trait() is picked up when that wake-up re-evaluates.
 */
export function nextChangeAt(state: ProfileState, ordered: CompiledComputation[], now: number): number | null {
  const timed = timedOf(ordered);
  if (timed.length === 0) return null;
  const inc = sync(state, ordered, now);
  // Only the values some computation reads through trait(), as in evaluateSynced (called once per saved profile).
  const read = readKeysOf(ordered);
  const computed: Record<string, Value> = {};
  if (read.size) for (const c of ordered) if (read.has(c.key)) computed[c.key] = state.values[c.id]?.value ?? initialValue(c);
  let best: number | null = null;
  const T = Math.max(now, inc.h);
  const ctx = { traits: state.traits, computed };
  for (const c of timed) {
    const ev = evaluatorOf(c);
    const s = inc.c[c.id]!.s;
    // TRICKY: a value that changed with time but was never emitted (the
    // expiry did not run at its instant: the scheduler was down, and an
    // unrelated event saved the profile since) is due now; looking only
    // forward from T would find no change left and drop the wake-up for good.
    const stored = state.values[c.id];
    let current: Value | undefined;
    if (stored && stored.version === c.definitionVersion) {
      current = ev.valueAt(s, ctx, T);
      if (!sameValue(current, stored.value)) return T;
    }
    // The value at T, when just computed, is where the search for its next change starts.
    const t = ev.nextChangeAt(s, ctx, T, current);
    if (t !== null && (best === null || t < best)) best = t;
  }
  return best;
}
