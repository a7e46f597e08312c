// Compile-time analysis for the incremental evaluator: every reducer node at
// the top level of a definition (not inside a where(...) or a reducer argument)
// becomes a "leaf" with a storage plan chosen from what the definition needs.
//
// Plans (state bounds, documented in ./README.md):
// - agg: an all-time stream (no within/between): O(1) aggregates (count, sum,
//   min/max, first/last) or bounded value tables (unique, mode).
// - list: a windowed stream: the matching events' (time[, value]) inside the
//   window, pruned as the horizon passes, and cut further where the comparison
//   allows it (count() >= n keeps the n latest; last() keeps one; min/max keep
//   only undominated entries).
// - fallback: a stream whose filter reads something other than the event
//   itself (nested event conditions / parent funnels, trait() inside where,
//   relative dates inside where, a reducer over a non-event value): the
//   matching raw events (only the fields read), evaluated by the reference
//   evaluator; bounded by the longest window and FALLBACK_CAP events.
import { durationMs, type BoolExpr, type Filter, type Reducer, type ScalarExpr, type StreamExpr } from '../ast';
import { compareValues, isRelativeDate, present, toNumber } from '../comparison';
import { eventNameOf, readPath, tieKey, type EngineEvent, type Value } from '../event';
import { printScalar } from '../printer';
import { normalise } from '../reference-evaluator';

/** One stored observation: count keeps bare times; others [time, value, tieKey(messageId)?]. */
export type Entry = number | [number, Value, string?];

export interface StreamMatch {
  name: string;
  /** sources + where, evaluated on the event alone. */
  accept: (ev: EngineEvent) => boolean;
  /** The entry the event contributes, or null when the reducer ignores its value. */
  extract: (ev: EngineEvent) => Entry | null;
  /** mode() over array values: one entry per element (extract is unused then). */
  extractMany?: (ev: EngineEvent) => Entry[];
}

export type ListPolicy =
  | { kind: 'all' }
  | { kind: 'keepLast'; n: number }
  | { kind: 'dominance'; better: (a: Value, b: Value) => boolean }
  /** unique(...).count(): a value is in the window iff its latest occurrence is; n caps the distinct values kept. */
  | { kind: 'latestPerValue'; n: number | null };

export type LeafPlan =
  | ({ kind: 'agg'; reducer: Reducer } & StreamMatch)
  | ({ kind: 'list'; reducer: Reducer; /** window [T - b, T - a] */ a: number; b: number; policy: ListPolicy } & StreamMatch)
  | {
      kind: 'fallback';
      expr: ScalarExpr;
      names: Set<string>;
      /** Events older than horizon - keepFor can no longer matter (Infinity: keep up to the cap). */
      keepFor: number;
      /** Offsets from an event's time at which a window edge passes it. */
      offsets: number[];
      /** Relative-date comparisons inside: their flips are wake-up candidates. */
      dateProbes: Array<{
        read: (ev: EngineEvent | null, traits: Record<string, unknown>) => unknown;
        op: 'within_last' | 'within_next' | 'before_last' | 'after_next';
        d: number;
      }>;
      /** Events are stored as compact tuples (see StoredEvent) and rebuilt for the reference evaluator. */
      pack: (ev: EngineEvent) => StoredEvent;
      unpack: (e: StoredEvent) => EngineEvent;
    };

/** A fallback event: [time, index of its name in the plan, tieKey(messageId), properties read, sourceId?, context read?]. */
export type StoredEvent = [number, number, string, Record<string, unknown>, string?, Record<string, unknown>?];

export const FALLBACK_CAP = 100;

// ------------------------------------------------------------------ locality

/** True when a scalar reads only the current event (property/context/literal). */
function localScalar(e: ScalarExpr): boolean {
  return e.kind === 'literal' || e.kind === 'context' || (e.kind === 'property' && !e.parent);
}

function localBool(e: BoolExpr): boolean {
  switch (e.kind) {
    case 'and':
    case 'or':
      return e.items.every(localBool);
    case 'not':
      return localBool(e.expr);
    case 'any':
    case 'all':
      return false;
    case 'compare': {
      if (!localScalar(e.left) || isRelativeDate(e.comparison.op)) return false;
      const c = e.comparison;
      return !('value' in c && typeof c.value === 'object' && c.value !== null) || localScalar(c.value);
    }
  }
}

function streamIsLocal(s: StreamExpr, r: Reducer): boolean {
  return s.filters.every((f) => f.kind !== 'where' || localBool(f.condition)) && (r.fn === 'count' || localScalar(r.of));
}

// ------------------------------------------------------------------ closures

function compileScalar(e: ScalarExpr): (ev: EngineEvent) => Value {
  switch (e.kind) {
    case 'literal': {
      const v = e.value;
      return () => v;
    }
    case 'property': {
      const name = e.name;
      return name.includes('.') ? (ev) => normalise(readPath(ev.properties, name)) : (ev) => normalise(ev.properties[name]);
    }
    case 'context': {
      const path = e.path;
      if (path.includes('$')) return (ev) => normalise(readPath(ev.context, path));
      const parts = path.split('.');
      // readPath's rule, without splitting the path per event: a literal dotted key wins.
      return (ev) => {
        const ctx = ev.context;
        if (path in ctx) return normalise(ctx[path]);
        let cur: unknown = ctx;
        for (const part of parts) {
          if (cur === null || typeof cur !== 'object') return null;
          cur = (cur as Record<string, unknown>)[part];
        }
        return normalise(cur);
      };
    }
    default:
      throw new Error(`not an event-local scalar: ${e.kind}`);
  }
}

function compileBool(e: BoolExpr): (ev: EngineEvent) => boolean {
  switch (e.kind) {
    case 'and': {
      const items = e.items.map(compileBool);
      return (ev) => items.every((f) => f(ev));
    }
    case 'or': {
      const items = e.items.map(compileBool);
      return (ev) => items.some((f) => f(ev));
    }
    case 'not': {
      const inner = compileBool(e.expr);
      return (ev) => !inner(ev);
    }
    case 'compare': {
      const left = compileScalar(e.left);
      const c = e.comparison;
      const right = 'value' in c && typeof c.value === 'object' && c.value !== null ? compileScalar(c.value) : () => null;
      // NaN: no relative-date comparator reaches here (they are not event-local).
      return (ev) => compareValues(left(ev), c, right(ev), NaN);
    }
    default:
      throw new Error(`not an event-local condition: ${e.kind}`);
  }
}

function compileAccept(filters: Filter[]): (ev: EngineEvent) => boolean {
  const checks: Array<(ev: EngineEvent) => boolean> = [];
  for (const f of filters) {
    if (f.kind === 'where') checks.push(compileBool(f.condition));
    if (f.kind === 'sources') {
      const ids = new Set(f.ids);
      checks.push(f.mode === 'exclude' ? (ev) => !ids.has(ev.sourceId) : (ev) => ids.has(ev.sourceId));
    }
  }
  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0]!;
  return (ev) => checks.every((c) => c(ev));
}

const asString = (v: Exclude<Value, null>) => (Array.isArray(v) ? JSON.stringify(v) : String(v));

/** What one event contributes to a reducer, mirroring the reference's filtering. */
function compileExtract(r: Reducer): Pick<StreamMatch, 'extract' | 'extractMany'> {
  if (r.fn === 'count') return { extract: (ev) => ev.timestamp };
  const read = compileScalar(r.of);
  switch (r.fn) {
    case 'sum':
    case 'avg':
      return {
        extract: (ev) => {
          const n = toNumber(read(ev));
          return n === null ? null : [ev.timestamp, n];
        },
      };
    case 'min':
    case 'max':
      return {
        extract:
          r.as === 'string'
            ? (ev) => {
                const v = read(ev);
                return present(v) ? [ev.timestamp, asString(v)] : null;
              }
            : (ev) => {
                const n = toNumber(read(ev));
                return n === null ? null : [ev.timestamp, n];
              },
      };
    case 'first':
    case 'last':
    case 'unique':
      return {
        extract: (ev) => {
          const v = read(ev);
          return present(v) ? [ev.timestamp, v, tieKey(ev.messageId)] : null;
        },
      };
    case 'mode': {
      const perElement = r.as !== 'array';
      const extract = (ev: EngineEvent): Entry[] => {
        const v = read(ev);
        if (!present(v)) return [];
        if (Array.isArray(v) && perElement) return v.map((x) => [ev.timestamp, String(x)] as Entry);
        return [[ev.timestamp, asString(v)]];
      };
      return { extract: () => null, extractMany: extract };
    }
  }
}

// ------------------------------------------------------------------ windows

/** The stream's window as [T - b, T - a]; b = Infinity when all-time. */
export function windowOf(filters: Filter[]): { a: number; b: number } {
  let a = 0;
  let b = Infinity;
  for (const f of filters) {
    if (f.kind === 'within' && !f.parent) b = Math.min(b, durationMs(f.duration));
    if (f.kind === 'between' && !f.parent) {
      a = Math.max(a, durationMs(f.start));
      b = Math.min(b, durationMs(f.end));
    }
  }
  return { a, b };
}

// ------------------------------------------------------------------ leaves

/** A comparison usage of a leaf: `count() <op> <literal n>` lets a windowed count keep only n + 1 times. */
export interface LeafUsage {
  /** The count (of events, or of unique values) that decides every comparison; null once any use needs the exact value. */
  countCap: number | null;
  /** unique(...) read only through .count(): the order of first occurrences does not matter. */
  countOnly: boolean;
}

export function leafKey(e: ScalarExpr): string {
  return printScalar(e);
}

export function planLeaf(e: Extract<ScalarExpr, { kind: 'reduce' }>, usage: LeafUsage): LeafPlan {
  const { stream, reducer } = e;
  if (!streamIsLocal(stream, reducer)) return planFallback(e);
  const match: StreamMatch = { name: stream.name, accept: compileAccept(stream.filters), ...compileExtract(reducer) };
  const { a, b } = windowOf(stream.filters);
  if (b === Infinity) return { kind: 'agg', reducer, ...match };
  let policy: ListPolicy = { kind: 'all' };
  if (a === 0) {
    if (reducer.fn === 'count' && usage.countCap !== null) policy = { kind: 'keepLast', n: usage.countCap };
    else if (reducer.fn === 'last') policy = { kind: 'keepLast', n: 1 };
    else if (reducer.fn === 'unique' && usage.countOnly) policy = { kind: 'latestPerValue', n: usage.countCap };
    else if (reducer.fn === 'max') policy = { kind: 'dominance', better: (x, y) => (x as number | string) > (y as number | string) };
    else if (reducer.fn === 'min') policy = { kind: 'dominance', better: (x, y) => (x as number | string) < (y as number | string) };
  }
  return { kind: 'list', reducer, a, b, policy, ...match };
}

function planFallback(e: Extract<ScalarExpr, { kind: 'reduce' }>): LeafPlan {
  const names = new Set<string>();
  const offsets = new Set<number>([0]);
  const props = new Set<string>();
  const ctxPaths = new Set<string>();
  const dateProbes: Extract<LeafPlan, { kind: 'fallback' }>['dateProbes'] = [];
  let keepFor = 0;
  const scalar = (s: ScalarExpr): void => {
    if (s.kind === 'property') props.add(s.name);
    if (s.kind === 'context') ctxPaths.add(s.path);
    if (s.kind === 'reduce') {
      names.add(s.stream.name);
      const hasParentWindow = s.stream.filters.some((f) => (f.kind === 'within' || f.kind === 'between') && f.parent);
      const w = windowOf(s.stream.filters);
      // A parent-relative window lies inside its parent's, which is counted already.
      if (!hasParentWindow || w.b !== Infinity) keepFor = Math.max(keepFor, w.b);
      if (w.b !== Infinity) offsets.add(w.a).add(w.b + 1);
      for (const f of s.stream.filters) if (f.kind === 'where') bool(f.condition);
      if (s.reducer.fn !== 'count') scalar(s.reducer.of);
    }
    if (s.kind === 'list_count') scalar(s.list);
  };
  const bool = (b: BoolExpr): void => {
    if (b.kind === 'and' || b.kind === 'or') b.items.forEach(bool);
    else if (b.kind === 'not' || b.kind === 'any' || b.kind === 'all') bool(b.expr);
    else {
      scalar(b.left);
      const c = b.comparison;
      if ('value' in c && typeof c.value === 'object' && c.value !== null) scalar(c.value);
      if (isRelativeDate(c.op)) {
        const left = b.left;
        const read =
          left.kind === 'trait'
            ? (_ev: EngineEvent | null, traits: Record<string, unknown>) => traits[left.name]
            : left.kind === 'property' || left.kind === 'context'
              ? (ev: EngineEvent | null) =>
                  ev
                    ? readPath(left.kind === 'property' ? ev.properties : ev.context, left.kind === 'property' ? left.name : left.path)
                    : undefined
              : null;
        // A relative date over a nested reducer's value: covered only by the event offsets (documented limit).
        if (read)
          dateProbes.push({
            read,
            op: c.op as 'within_last',
            d: durationMs((c as { duration: { amount: number; unit: 'hour' | 'day' } }).duration),
          });
      }
    }
  };
  scalar(e);
  const propList = [...props].flatMap((p) => [p, p.split('.')[0]!]);
  const ctxList = [...ctxPaths].flatMap((p) => [p, p.split('.')[0]!]);
  const usesSources = hasSources(e);
  const nameList = [...names];
  const pick = (obj: Record<string, unknown>, keys: string[]) => {
    const out: Record<string, unknown> = {};
    for (const k of keys) if (k in obj) out[k] = obj[k];
    return out;
  };
  // Only what the definition reads is kept; page/screen calls come back as
  // track calls of their Engage name, which the reference reads the same way.
  const pack = (ev: EngineEvent): StoredEvent => {
    const out: StoredEvent = [ev.timestamp, nameList.indexOf(eventNameOf(ev)!), tieKey(ev.messageId), pick(ev.properties, propList)];
    if (usesSources || ctxList.length) out.push(ev.sourceId);
    if (ctxList.length) out.push(pick(ev.context, ctxList));
    return out;
  };
  const unpack = (x: StoredEvent): EngineEvent => ({
    type: 'track',
    event: nameList[x[1]],
    timestamp: x[0],
    messageId: x[2],
    properties: x[3],
    sourceId: x[4] ?? '',
    traits: {},
    context: x[5] ?? {},
  });
  return { kind: 'fallback', expr: e, names, keepFor, offsets: [...offsets], dateProbes, pack, unpack };
}

function hasSources(e: ScalarExpr): boolean {
  return JSON.stringify(e).includes('"kind":"sources"');
}

/** The stream names a leaf reads. */
export function leafNames(p: LeafPlan): string[] {
  return p.kind === 'fallback' ? [...p.names] : [p.name];
}

export const eventName = eventNameOf;
