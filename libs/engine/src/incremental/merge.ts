// Profile merges for the incremental evaluator: the state of the union of two
// histories from the two states alone (no events), so a merge keeps what a
// bounded history no longer holds. Per leaf:
// - agg (all-time): counts and sums add; min/max, first/last (by time, then
//   tieKey) and unique (earliest occurrence per value) combine as one more
//   fold; mode frequencies add (latest: the later one). Futures stay apart.
// - list (windows): the union of the entries; the next apply/advance compacts
//   it. Every list policy keeps, per state, a superset of what its side
//   contributes to any answer at T >= the horizon (the n latest, the
//   undominated, the latest per value), so the union does for the union.
// - fallback (funnels, nested conditions): the union of the stored events,
//   cut to FALLBACK_CAP on the next compaction, as one profile would be.
// Events both states saw (`shared`) are taken out of the second one first.
import type { EngineEvent } from '../event';
import { eventNameOf } from '../event';
import type { Entry, LeafPlan, StoredEvent } from './plan';
import { modeBeats } from '../reference-evaluator';
import { foldAgg, insertEvent, insertSorted, MODE_CAP, type Agg, type LeafData } from './stores';

export function mergeStates(
  plans: LeafPlan[],
  byName: ReadonlyMap<string, number[]>,
  a: LeafData[],
  b: LeafData[],
  shared: EngineEvent[],
): LeafData[] {
  const A = JSON.parse(JSON.stringify(a)) as LeafData[];
  const B = JSON.parse(JSON.stringify(b)) as LeafData[];
  for (const ev of shared) removeEvent(plans, byName, B, ev);
  // Pasts combine directly (both are past for the merged horizon); futures
  // stay apart until the next apply/advance; lists are compacted then too.
  // NOTE: the union keeps every entry of both: two different events may look
  // alike (same time, value and messageId); only `shared` ones are one event.
  return plans.map((p, i) => {
    if (p.kind === 'fallback') {
      const list = A[i] as StoredEvent[];
      for (const e of B[i] as StoredEvent[]) insertEvent(list, e);
      return list;
    }
    if (p.kind === 'list') {
      const list = A[i] as Entry[];
      for (const e of B[i] as Entry[]) insertSorted(list, e);
      return list;
    }
    return mergeAgg(p, A[i] as Agg, B[i] as Agg);
  });
}

/**
 * Takes one event's contribution out of a state it was applied to (an event
 * both merged profiles hold). Exact for every leaf: counts, sums and mode
 * frequencies subtract; lists (windows, a funnel's events) lose one equal
 * entry, and equal entries are interchangeable (if the event's own entry was
 * compacted away, an equal one left answers the same or none is left);
 * min/max, first/last and unique stay: the other state holds the same entry
 * and folding it twice changes nothing.
 */
function removeEvent(plans: LeafPlan[], byName: ReadonlyMap<string, number[]>, state: LeafData[], event: EngineEvent): void {
  const name = eventNameOf(event);
  const leaves = name === undefined ? undefined : byName.get(name);
  if (!leaves) return;
  for (const i of leaves) {
    const p = plans[i]!;
    if (p.kind === 'fallback') {
      removeEqual(state[i] as StoredEvent[], p.pack(event));
      continue;
    }
    if (!p.accept(event)) continue;
    const entries = p.extractMany ? p.extractMany(event) : [p.extract(event)];
    for (const e of entries) {
      if (e === null) continue;
      if (p.kind === 'list') removeEqual(state[i] as Entry[], e);
      else unfoldAgg(p, state[i] as Agg, e);
    }
  }
}

/** Removes one element equal to `x` (same JSON), if any. */
function removeEqual<T>(list: T[], x: T): boolean {
  const key = JSON.stringify(x);
  const at = list.findIndex((y) => JSON.stringify(y) === key);
  if (at >= 0) list.splice(at, 1);
  return at >= 0;
}

/** foldAgg undone for one entry: a future entry leaves `f`, a past one is subtracted where the aggregate adds. */
function unfoldAgg(p: Extract<LeafPlan, { kind: 'agg' }>, agg: Agg, e: Entry): void {
  if (agg.f && removeEqual(agg.f, e)) {
    if (agg.f.length === 0) delete agg.f;
    return;
  }
  switch (p.reducer.fn) {
    case 'count':
      if (agg.n) agg.n--;
      return;
    case 'sum':
    case 'avg':
      if (agg.n) {
        agg.n--;
        // No rounding residue once nothing is left (sums of non-integers).
        agg.s = agg.n === 0 ? 0 : (agg.s ?? 0) - (e as [number, number])[1];
      }
      return;
    case 'mode': {
      // Its latest time stays: the other state holds the same occurrence.
      // NOTE: a value dropped beyond MODE_CAP has nothing to subtract from (documented bound).
      const key = (e as [number, string])[1];
      const cur = agg.c?.[key];
      if (cur && --cur[0] <= 0) delete agg.c![key];
      return;
    }
    default:
      return; // min/max, first/last, unique: idempotent under merge
  }
}

function mergeAgg(p: Extract<LeafPlan, { kind: 'agg' }>, a: Agg, b: Agg): Agg {
  const future = [...(a.f ?? []), ...(b.f ?? [])];
  delete a.f;
  combinePast(p, a, { ...b, f: undefined });
  for (const e of future) insertSorted((a.f ??= []), e);
  return a;
}

function combinePast(p: Extract<LeafPlan, { kind: 'agg' }>, into: Agg, from: Agg): void {
  const r = p.reducer;
  switch (r.fn) {
    case 'count':
      into.n = (into.n ?? 0) + (from.n ?? 0);
      return;
    case 'sum':
    case 'avg':
      into.n = (into.n ?? 0) + (from.n ?? 0);
      into.s = (into.s ?? 0) + (from.s ?? 0);
      return;
    case 'min':
    case 'max':
      if (from.m !== null && from.m !== undefined) foldAgg(r, into, [0, from.m]);
      return;
    case 'first':
    case 'last':
      if (from.e) foldAgg(r, into, from.e);
      return;
    case 'unique':
      for (const [v, t, mid] of from.u ?? []) foldAgg(r, into, [t, v, mid]);
      return;
    case 'mode':
      for (const [k, [count, latest]] of Object.entries(from.c ?? {})) {
        const cur = (into.c ??= {})[k];
        if (cur) {
          cur[0] += count;
          if (latest > cur[1]) cur[1] = latest;
        } else into.c[k] = [count, latest];
      }
      capMode(into.c ?? {});
      return;
  }
}

/** Two tables of up to MODE_CAP values each: the strongest MODE_CAP stay, as foldAgg keeps them one at a time. */
function capMode(c: Record<string, [number, number]>): void {
  const keys = Object.keys(c);
  if (keys.length <= MODE_CAP) return;
  const stat = (k: string): [string, { count: number; latest: number }] => [k, { count: c[k]![0], latest: c[k]![1] }];
  keys.sort((x, y) => (modeBeats(stat(x), stat(y)) ? -1 : modeBeats(stat(y), stat(x)) ? 1 : 0));
  for (const k of keys.slice(MODE_CAP)) delete c[k];
}
