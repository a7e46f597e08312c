// The reference evaluator: the value of a definition at time `now`, computed
// from scratch over a profile's whole event list. Written to be obviously
// right, not fast; it is the oracle the incremental evaluator is tested against.
//
// Semantics (where the reference is silent, documented here):
// - Only events with timestamp <= now exist at `now` (time is event time).
// - within(d): now - d <= t <= now. between(a, b): now - b <= t <= now - a.
// - within(parent: d) in a nested condition: parent.t <= t <= parent.t + d
//   ("Shoes Returned within 5 days after Shoes Bought"); between(parent: a, b):
//   parent.t + a <= t <= parent.t + b.
// - Values: numbers compare numerically (numeric strings count as numbers);
//   anything else compares by strict equality of strings/booleans. A missing
//   or null value satisfies only absent() (and NOT ...): `differs` is true only
//   when the value exists and is not equal (the reference's note).
// - sum/avg/min/max read numeric values only; avg/min/max of nothing is null,
//   sum of nothing is 0. `as string` orders by JavaScript string order.
// - first/last: the earliest/latest event (by timestamp, then tieKey(messageId)) in
//   the stream whose property is present.
// - mode: values compared as strings (`as array`: arrays as JSON text, else
//   each element counts); the most frequent value with at least minFrequency
//   occurrences; TIE RULE: the higher count wins, then the value whose latest
//   occurrence is most recent, then the smaller string. Returns the string.
// - unique: distinct present values in order of first occurrence.
// - ANY / ALL over an account's users; ALL over an account with no users is false.
import { compareValues, present, takesScalar, toNumber, valuesEqual } from './comparison';
import {
  durationMs,
  type BoolExpr,
  type Comparison,
  type Filter,
  type QueryAst,
  type Reducer,
  type ScalarExpr,
  type StreamExpr,
} from './ast';
import { eventNameOf, readPath, tieKey, type EngineEvent, type Value } from './event';

export interface EvaluationContext {
  events: EngineEvent[];
  /** Profile traits (identify/group calls). */
  traits: Record<string, unknown>;
  /** Values of other computations of the space, by key (audiences: true/false). */
  computed: Record<string, Value>;
  now: number;
  /** For account-level queries: the account's users. */
  users?: EvaluationContext[];
}

interface Scope {
  ctx: EvaluationContext;
  /** The event whose where(...) is being evaluated. */
  current?: EngineEvent;
  /** The event of the enclosing stream, for parent: references. */
  parent?: EngineEvent;
}

export function evaluateReference(ast: QueryAst, ctx: EvaluationContext): Value {
  return ast.type === 'trait' ? evalScalar(ast.root, { ctx }) : evalBool(ast.root, { ctx });
}

/** One scalar (e.g. a reducer node) evaluated from scratch: the incremental evaluator's bounded fallback. */
export function evaluateScalarReference(expr: ScalarExpr, ctx: EvaluationContext): Value {
  return evalScalar(expr, { ctx });
}

/** Time order; ties by tieKey(messageId), then messageId (see event.ts). */
export function byTime(a: EngineEvent, b: EngineEvent): number {
  if (a.timestamp !== b.timestamp) return a.timestamp - b.timestamp;
  const ka = tieKey(a.messageId);
  const kb = tieKey(b.messageId);
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.messageId < b.messageId ? -1 : a.messageId > b.messageId ? 1 : 0;
}

function evalBool(e: BoolExpr, scope: Scope): boolean {
  switch (e.kind) {
    case 'and':
      return e.items.every((i) => evalBool(i, scope));
    case 'or':
      return e.items.some((i) => evalBool(i, scope));
    case 'not':
      return !evalBool(e.expr, scope);
    case 'any':
      return (scope.ctx.users ?? []).some((u) => evalBool(e.expr, { ctx: u }));
    case 'all': {
      const users = scope.ctx.users ?? [];
      return users.length > 0 && users.every((u) => evalBool(e.expr, { ctx: u }));
    }
    case 'compare':
      return compare(evalScalar(e.left, scope), e.comparison, scope);
  }
}

export { toNumber, valuesEqual };

export function compare(left: Value, c: Comparison, scope: Scope): boolean {
  // The operand is evaluated only when the comparator takes one and the left value exists.
  const right = takesScalar(c.op) && present(left) ? evalScalar((c as { value: ScalarExpr }).value, scope) : null;
  return compareValues(left, c, right, scope.ctx.now);
}

function evalScalar(e: ScalarExpr, scope: Scope): Value {
  switch (e.kind) {
    case 'literal':
      return e.value;
    case 'trait': {
      // Computed values (other audiences/traits) shadow plain profile traits of the same key.
      if (e.name in scope.ctx.computed) return scope.ctx.computed[e.name] ?? null;
      return normalise(scope.ctx.traits[e.name]);
    }
    case 'property': {
      const source = e.parent ? scope.parent : scope.current;
      return source ? normalise(readPath(source.properties, e.name)) : null;
    }
    case 'context':
      return scope.current ? normalise(readPath(scope.current.context, e.path)) : null;
    case 'reduce':
      return reduce(e.reducer, streamEvents(e.stream, scope), scope);
    case 'list_count': {
      const list = evalScalar(e.list, scope);
      return Array.isArray(list) ? list.length : 0;
    }
  }
}

export function normalise(v: unknown): Value {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.map(normalise);
  return JSON.stringify(v);
}

/** The stream's events at `now`, in time order. */
export function streamEvents(stream: StreamExpr, scope: Scope): EngineEvent[] {
  const now = scope.ctx.now;
  return scope.ctx.events
    .filter((ev) => ev.timestamp <= now && eventNameOf(ev) === stream.name && stream.filters.every((f) => passes(f, ev, scope)))
    .sort(byTime);
}

function passes(f: Filter, ev: EngineEvent, scope: Scope): boolean {
  const now = scope.ctx.now;
  switch (f.kind) {
    case 'where':
      return evalBool(f.condition, { ctx: scope.ctx, current: ev, parent: scope.current });
    case 'sources':
      return f.mode === 'exclude' ? !f.ids.includes(ev.sourceId) : f.ids.includes(ev.sourceId);
    case 'within': {
      const anchor = f.parent ? scope.current?.timestamp : undefined;
      if (anchor !== undefined) return ev.timestamp >= anchor && ev.timestamp <= anchor + durationMs(f.duration);
      return ev.timestamp >= now - durationMs(f.duration);
    }
    case 'between': {
      const anchor = f.parent ? scope.current?.timestamp : undefined;
      if (anchor !== undefined) return ev.timestamp >= anchor + durationMs(f.start) && ev.timestamp <= anchor + durationMs(f.end);
      return ev.timestamp >= now - durationMs(f.end) && ev.timestamp <= now - durationMs(f.start);
    }
  }
}

function reduce(r: Reducer, events: EngineEvent[], scope: Scope): Value {
  if (r.fn === 'count') return events.length;
  // The reducer's argument is read per event (property()/context() of that event).
  const read = (ev: EngineEvent) => evalScalar(r.of, { ctx: scope.ctx, current: ev, parent: scope.current });
  const pairs = events.map((ev) => ({ ev, v: read(ev) })).filter((p) => present(p.v));
  switch (r.fn) {
    case 'sum':
    case 'avg': {
      const nums = pairs.map((p) => toNumber(p.v)).filter((n): n is number => n !== null);
      const sum = nums.reduce((a, b) => a + b, 0);
      return r.fn === 'sum' ? sum : nums.length ? sum / nums.length : null;
    }
    case 'min':
    case 'max': {
      if (r.as === 'string') {
        const strs = pairs.map((p) => (Array.isArray(p.v) ? JSON.stringify(p.v) : String(p.v))).sort();
        return strs.length ? (r.fn === 'min' ? strs[0]! : strs[strs.length - 1]!) : null;
      }
      const nums = pairs.map((p) => toNumber(p.v)).filter((n): n is number => n !== null);
      return nums.length ? (r.fn === 'min' ? Math.min(...nums) : Math.max(...nums)) : null;
    }
    case 'first':
      return pairs.length ? pairs[0]!.v : null;
    case 'last':
      return pairs.length ? pairs[pairs.length - 1]!.v : null;
    case 'unique': {
      const seen = new Map<string, Value>();
      for (const p of pairs) {
        const k = JSON.stringify(p.v);
        if (!seen.has(k)) seen.set(k, p.v);
      }
      return [...seen.values()];
    }
    case 'mode': {
      const stats = new Map<string, { count: number; latest: number }>();
      for (const p of pairs) {
        const keys =
          Array.isArray(p.v) && r.as !== 'array' ? p.v.map((x) => String(x)) : [Array.isArray(p.v) ? JSON.stringify(p.v) : String(p.v)];
        for (const k of keys) {
          const s = stats.get(k) ?? { count: 0, latest: -Infinity };
          s.count++;
          s.latest = Math.max(s.latest, p.ev.timestamp);
          stats.set(k, s);
        }
      }
      let best: [string, { count: number; latest: number }] | null = null;
      for (const entry of stats) {
        if (entry[1].count < r.minFrequency) continue;
        if (!best || modeBeats(entry, best)) best = entry;
      }
      return best ? best[0] : null;
    }
  }
}

/** The documented tie rule of mode(). */
export function modeBeats(a: [string, { count: number; latest: number }], b: [string, { count: number; latest: number }]): boolean {
  if (a[1].count !== b[1].count) return a[1].count > b[1].count;
  if (a[1].latest !== b[1].latest) return a[1].latest > b[1].latest;
  return a[0] < b[0];
}
