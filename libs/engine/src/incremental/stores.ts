// The per-leaf state and its operations. All state is plain JSON (numbers,
// strings, arrays, objects; no Infinity, no Map) so it can live in Redis as is.
//
// "Past" entries have time <= the horizon h (the latest `now` the state was
// given; callers pass a non-decreasing now and ask only for T >= it), so past
// entries are in the stream at every T asked and only their window edge
// matters. "Future" entries (time > h: clock skew, scheduled timestamps) are
// kept apart until h passes them.
import type { Reducer } from '../ast';
import type { Value } from '../event';
import { modeBeats } from '../reference-evaluator';
import { FALLBACK_CAP, type Entry, type LeafPlan, type StoredEvent } from './plan';

export const UNIQUE_CAP = 100;
export const MODE_CAP = 100;

/** All-time aggregates. n: count; s: sum; m: min/max; e: first/last entry; u: unique [value, time, tieKey]; c: mode key -> [count, latest]; f: future entries. */
export interface Agg {
  n?: number;
  s?: number;
  m?: Value;
  e?: Entry | null;
  u?: Array<[Value, number, string]>;
  c?: Record<string, [number, number]>;
  f?: Entry[];
}

export type LeafData = Agg | Entry[] | StoredEvent[];

export const ts = (e: Entry): number => (typeof e === 'number' ? e : e[0]);

/** Entry order: time, then tieKey(messageId) (the reference's byTime) where one is stored. */
export function entryBefore(x: Entry, y: Entry): boolean {
  const tx = ts(x);
  const ty = ts(y);
  if (tx !== ty) return tx < ty;
  if (typeof x === 'number' || typeof y === 'number') return false;
  return (x[2] ?? '') < (y[2] ?? '');
}

export function insertSorted(list: Entry[], e: Entry): void {
  let lo = 0;
  let hi = list.length;
  // Appends (the common in-order case) take one comparison.
  if (hi === 0 || !entryBefore(e, list[hi - 1]!)) {
    list.push(e);
    return;
  }
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (entryBefore(e, list[mid]!)) hi = mid;
    else lo = mid + 1;
  }
  list.splice(lo, 0, e);
}

/** Index of the first entry with time >= t. */
export function lowerBound(list: Entry[], t: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ts(list[mid]!) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ------------------------------------------------------------------ init

export function initLeaf(p: LeafPlan): LeafData {
  if (p.kind === 'list' || p.kind === 'fallback') return [];
  switch (p.reducer.fn) {
    case 'count':
      return { n: 0 };
    case 'sum':
    case 'avg':
      return { n: 0, s: 0 };
    case 'min':
    case 'max':
      return { m: null };
    case 'first':
    case 'last':
      return { e: null };
    case 'unique':
      return { u: [] };
    case 'mode':
      return { c: {} };
  }
}

// ------------------------------------------------------------------ agg

export function foldAgg(r: Reducer, a: Agg, e: Entry): void {
  switch (r.fn) {
    case 'count':
      a.n = (a.n ?? 0) + 1;
      return;
    case 'sum':
    case 'avg':
      a.n = (a.n ?? 0) + 1;
      a.s = (a.s ?? 0) + ((e as [number, number])[1] as number);
      return;
    case 'min':
    case 'max': {
      const v = (e as [number, Value])[1] as number | string;
      const m = a.m as number | string | null | undefined;
      if (m === null || m === undefined || (r.fn === 'max' ? v > m : v < m)) a.m = v;
      return;
    }
    case 'first':
      if (!a.e || entryBefore(e, a.e)) a.e = e;
      return;
    case 'last':
      if (!a.e || entryBefore(a.e, e)) a.e = e;
      return;
    case 'unique': {
      const [t, v, mid] = e as [number, Value, string];
      const u = (a.u ??= []);
      const key = uniqueKey(v);
      const at = u.findIndex((x) => uniqueKey(x[0]) === key);
      if (at >= 0) {
        const old = u[at]!;
        if (!(t < old[1] || (t === old[1] && mid < old[2]))) return;
        u.splice(at, 1);
      }
      let i = u.length;
      while (i > 0 && (t < u[i - 1]![1] || (t === u[i - 1]![1] && mid < u[i - 1]![2]))) i--;
      u.splice(i, 0, [v, t, mid]);
      // NOTE: beyond UNIQUE_CAP distinct values the latest-first-seen are dropped (documented bound).
      if (u.length > UNIQUE_CAP) u.length = UNIQUE_CAP;
      return;
    }
    case 'mode': {
      const [t, key] = e as [number, string];
      const c = (a.c ??= {});
      const cur = c[key];
      if (cur) {
        cur[0]++;
        if (t > cur[1]) cur[1] = t;
        return;
      }
      c[key] = [1, t];
      const keys = Object.keys(c);
      if (keys.length > MODE_CAP) {
        // NOTE: beyond MODE_CAP distinct values the weakest (by the tie rule) is dropped (documented bound).
        let worst = keys[0]!;
        for (const k of keys)
          if (modeBeats([worst, { count: c[worst]![0], latest: c[worst]![1] }], [k, { count: c[k]![0], latest: c[k]![1] }])) worst = k;
        delete c[worst];
      }
      return;
    }
  }
}

function cloneAgg(a: Agg): Agg {
  return JSON.parse(JSON.stringify(a)) as Agg;
}

export function aggValue(r: Reducer, a: Agg, T: number): Value {
  let view = a;
  if (a.f && a.f.length && ts(a.f[0]!) <= T) {
    view = cloneAgg(a);
    for (const e of a.f) if (ts(e) <= T) foldAgg(r, view, e);
  }
  switch (r.fn) {
    case 'count':
      return view.n ?? 0;
    case 'sum':
      return view.s ?? 0;
    case 'avg':
      return view.n ? (view.s ?? 0) / view.n : null;
    case 'min':
    case 'max':
      return view.m ?? null;
    case 'first':
    case 'last':
      return view.e && typeof view.e !== 'number' ? view.e[1] : null;
    case 'unique':
      return (view.u ?? []).map((x) => x[0]);
    case 'mode': {
      let best: string | null = null;
      let bc = 0;
      let bl = 0;
      const c = view.c ?? {};
      for (const k in c) {
        const [count, latest] = c[k]!;
        if (count < r.minFrequency) continue;
        if (best === null || count > bc || (count === bc && (latest > bl || (latest === bl && k < best)))) {
          best = k;
          bc = count;
          bl = latest;
        }
      }
      return best;
    }
  }
}

/** Distinctness of unique(): the reference compares JSON texts; strings (the common case) need no stringify. */
export const uniqueKey = (v: Value): string => (typeof v === 'string' ? `s${v}` : JSON.stringify(v));

function pickMode(stats: Array<[string, { count: number; latest: number }]>, minFrequency: number): Value {
  let best: [string, { count: number; latest: number }] | null = null;
  for (const entry of stats) {
    if (entry[1].count < minFrequency) continue;
    if (!best || modeBeats(entry, best)) best = entry;
  }
  return best ? best[0] : null;
}

// ------------------------------------------------------------------ list

/** The reducer over the entries in [T - b, T - a] (sorted): the reference's reduce on pre-extracted values. */
export function listValue(r: Reducer, list: Entry[], T: number, a: number, b: number): Value {
  const from = b === Infinity ? 0 : lowerBound(list, T - b);
  const to = lowerBound(list, T - a + 1); // exclusive: times <= T - a (integer ms)
  if (r.fn === 'count') return Math.max(0, to - from);
  if (to <= from) return r.fn === 'sum' ? 0 : r.fn === 'unique' ? [] : null;
  switch (r.fn) {
    case 'sum':
    case 'avg': {
      let s = 0;
      for (let i = from; i < to; i++) s += (list[i] as [number, number])[1];
      return r.fn === 'sum' ? s : s / (to - from);
    }
    case 'min':
    case 'max': {
      let m = (list[from] as [number, Value])[1] as number | string;
      for (let i = from + 1; i < to; i++) {
        const v = (list[i] as [number, Value])[1] as number | string;
        if (r.fn === 'max' ? v > m : v < m) m = v;
      }
      return m;
    }
    case 'first':
      return (list[from] as [number, Value])[1];
    case 'last':
      return (list[to - 1] as [number, Value])[1];
    case 'unique': {
      const seen = new Set<string>();
      const out: Value[] = [];
      for (let i = from; i < to; i++) {
        const v = (list[i] as [number, Value])[1];
        const k = uniqueKey(v);
        if (!seen.has(k)) {
          seen.add(k);
          out.push(v);
        }
      }
      return out;
    }
    case 'mode': {
      const stats = new Map<string, { count: number; latest: number }>();
      for (let i = from; i < to; i++) {
        const [t, k] = list[i] as [number, string];
        const s = stats.get(k);
        if (s) {
          s.count++;
          if (t > s.latest) s.latest = t;
        } else stats.set(k, { count: 1, latest: t });
      }
      return pickMode([...stats], r.minFrequency);
    }
  }
}

/** Drops what no answer at T >= h can read. Runs on every insert, so the common cases allocate nothing. */
export function compactList(p: Extract<LeafPlan, { kind: 'list' }>, list: Entry[], h: number): Entry[] {
  if (list.length === 0) return list;
  if (ts(list[0]!) < h - p.b) list.splice(0, lowerBound(list, h - p.b));
  const policy = p.policy;
  if (policy.kind === 'all' || list.length === 0) return list;
  if (policy.kind === 'keepLast') {
    if (list.length <= policy.n) return list;
    const pastEnd = lowerBound(list, h + 1);
    if (pastEnd > policy.n) list.splice(0, pastEnd - policy.n);
    return list;
  }
  const pastEnd = lowerBound(list, h + 1);
  if (policy.kind === 'latestPerValue') {
    const cap = policy.n;
    const seen = new Set<string>();
    let write = pastEnd;
    // Walk the past from the latest, keeping the first (latest) entry per value, packed to the end of the past.
    for (let i = pastEnd - 1; i >= 0; i--) {
      const e = list[i]!;
      const k = uniqueKey((e as [number, Value])[1]);
      if (seen.has(k) || (cap !== null && seen.size >= cap)) continue;
      seen.add(k);
      list[--write] = e;
    }
    if (write > 0) list.splice(0, write);
    return list;
  }
  // dominance: a past entry no later than another past entry with a value at
  // least as good can never be the answer (the later one stays in the window
  // longer). Same packing walk as above.
  const better = policy.better;
  let best: Value | undefined;
  let write = pastEnd;
  for (let i = pastEnd - 1; i >= 0; i--) {
    const e = list[i]!;
    const v = (e as [number, Value])[1];
    if (best !== undefined && !better(v, best)) continue;
    best = v;
    list[--write] = e;
  }
  if (write > 0) list.splice(0, write);
  return list;
}

/** The earliest instant > T at which a window edge passes an entry. */
export function listNextPoint(list: Entry[], T: number, a: number, b: number): number | null {
  let best: number | null = null;
  const i = lowerBound(list, T - a + 1); // first entry entering after T
  if (i < list.length) best = ts(list[i]!) + a;
  if (b !== Infinity) {
    const j = lowerBound(list, T - b); // first entry still in (or not yet in) at T leaves at time + b + 1
    if (j < list.length) {
      const leave = ts(list[j]!) + b + 1;
      if (best === null || leave < best) best = leave;
    }
  }
  return best;
}

// ------------------------------------------------------------------ fallback

export function insertEvent(list: StoredEvent[], ev: StoredEvent): void {
  let i = list.length;
  while (i > 0 && (ev[0] < list[i - 1]![0] || (ev[0] === list[i - 1]![0] && ev[2] < list[i - 1]![2]))) i--;
  list.splice(i, 0, ev);
}

export function compactEvents(p: Extract<LeafPlan, { kind: 'fallback' }>, list: StoredEvent[], h: number): void {
  if (p.keepFor !== Infinity) {
    let cut = 0;
    while (cut < list.length && list[cut]![0] < h - p.keepFor) cut++;
    if (cut) list.splice(0, cut);
  }
  // NOTE: beyond FALLBACK_CAP events the oldest are dropped (documented bound).
  if (list.length > FALLBACK_CAP) list.splice(0, list.length - FALLBACK_CAP);
}
