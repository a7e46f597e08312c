// Backfill handover (DESIGN.md "Historical backfill"), pure: folds a state
// replayed from engage.events.resolved into a profile's own state. Built on
// the engine's public API only (reevaluate, the incremental evaluators'
// merge).
//
// `history` holds, per computation, a state built from the replayed events
// that arrived BEFORE its countsEventsFrom; the profile's own state holds
// those that arrived at or after it (real time, or built by the engine from
// the stored history, which counts only those too). The two sets are
// disjoint, so their merge counts every event once.
//
// NOTE: the mark of what a state took (`b` on the engine's per-computation
// entry, kept by the engine as long as the definition version holds: it
// replaces an entry only when the version changes) is written here, outside
// the engine's declared type; it only guards re-runs of a pass.
import {
  compileIncremental,
  reevaluate,
  type CompiledComputation,
  type IncrementalEvaluator,
  type IncrementalState,
  type ProfileState,
  type Value,
  type ValueChange,
} from '@engage/engine';

type Entry = { v: number; s: IncrementalState; /** backfill pass that added history, and its steps done */ b?: { p: string; s: string[] } };

export interface ReplayedHistory {
  computation: CompiledComputation;
  /** null: no replayed event for this profile (the state is only marked). */
  state: IncrementalState | null;
  /** The computation's backfill pass. */
  pass: string;
}

// Same plans as the engine's evaluator of the same definition: states are interchangeable.
const evaluators = new WeakMap<object, IncrementalEvaluator>();
function evaluatorOf(c: CompiledComputation): IncrementalEvaluator {
  let e = evaluators.get(c.ast);
  if (!e) evaluators.set(c.ast, (e = compileIncremental(c.ast)));
  return e;
}

/**
 * Adds the replayed history to the profile's states and re-evaluates those
 * computations; returns the changed values (one per computation).
 * Idempotent per (pass, step): a state that already took this step of this
 * pass (a re-run after a crash) is left alone; a state marked by an earlier
 * pass (a re-enable) is rebuilt before the history is added. A history of
 * another definition version than `ordered`'s is ignored (the new version
 * gets its own pass).
 */
export function addHistory(
  state: ProfileState,
  ordered: CompiledComputation[],
  history: ReplayedHistory[],
  step: string,
  now: number,
): ValueChange[] {
  const old = state.incremental;
  for (const { computation: c, pass } of history) {
    const cur = old?.c[c.id] as Entry | undefined;
    if (old && cur?.b && cur.b.p !== pass) {
      delete old.c[c.id];
      old.n = Object.keys(old.c).length;
    }
  }
  // Brings the states in line first (a new computation is built from the stored history, after-the-change events only).
  const synced = reevaluate(state, ordered, () => false, now);
  const inc = state.incremental!;
  const ids = new Set<string>();
  for (const { computation: c, state: h, pass } of history) {
    const cur = inc.c[c.id] as Entry | undefined;
    if (!cur || cur.v !== c.definitionVersion) continue;
    ids.add(c.id);
    cur.b ??= { p: pass, s: [] };
    if (cur.b.s.includes(step)) continue;
    if (h) {
      const ev = evaluatorOf(c);
      cur.s = ev.advance(ev.merge(h, cur.s), inc.h);
    }
    cur.b.s.push(step);
  }
  return coalesce([...synced, ...reevaluate(state, ordered, (c) => ids.has(c.id), now)]);
}

/** One change per computation: from the first previous value to the last value; none when they are equal. */
function coalesce(changes: ValueChange[]): ValueChange[] {
  const byId = new Map<string, ValueChange>();
  for (const c of changes) {
    const first = byId.get(c.computation.id);
    byId.set(c.computation.id, first ? { ...c, previous: first.previous } : c);
  }
  return [...byId.values()].filter((c) => !same(c.value, c.previous));
}

const same = (a: Value, b: Value) => a === b || JSON.stringify(a) === JSON.stringify(b);
