// The incremental evaluator: compile(ast) once per definition, then per
// (profile, computation) a small JSON state updated one event at a time (in
// any timestamp order) that answers the value at any T >= its horizon without
// the event list, and the next instant the value can change with no new event.
// It must agree with the reference evaluator (property tests in
// incremental.property.test.ts); see ./README.md for the state bounds.
import type { BoolExpr, QueryAst, ScalarExpr } from '../ast';
import { compareValues, isRelativeDate, relativeDateFlipAfter, takesScalar, toTime } from '../comparison';
import { eventNameOf, type EngineEvent, type Value } from '../event';
import { evaluateScalarReference } from '../reference-evaluator';
import { mergeStates } from './merge';
import { leafKey, leafNames, planLeaf, type Entry, type LeafPlan, type LeafUsage, type StoredEvent } from './plan';
import {
  aggValue,
  compactEvents,
  compactList,
  foldAgg,
  initLeaf,
  insertEvent,
  insertSorted,
  listNextPoint,
  listValue,
  ts,
  type Agg,
  type LeafData,
} from './stores';

/**
 * Per (profile, computation): one slot per leaf, plain JSON. It holds no clock:
 * callers pass a non-decreasing `now` to apply/advance and ask valueAt /
 * nextChangeAt only for T >= the latest now given (the horizon).
 */
export type IncrementalState = LeafData[];

/** What valueAt reads besides the state: the profile's traits and the other computations' values. */
export interface IncrementalContext {
  traits: Record<string, unknown>;
  computed: Record<string, Value>;
  /** Account-level queries: each user of the account with its own state of this computation. */
  users?: Array<{ state: IncrementalState; traits: Record<string, unknown>; computed: Record<string, Value> }>;
}

export interface IncrementalEvaluator {
  readonly ast: QueryAst;
  /** Event names whose arrival can change the value: skip apply() for the rest. */
  readonly eventNames: ReadonlySet<string>;
  /** How each leaf is stored (for diagnostics and docs). */
  readonly leafKinds: string[];
  initState(): IncrementalState;
  /** Adds one event (mutates and returns `state`); `now` (default: the event's time) is the horizon. */
  apply(state: IncrementalState, event: EngineEvent, now?: number): IncrementalState;
  /** Drops what no answer at T >= now needs (apply does this for the leaves it touches). */
  advance(state: IncrementalState, now: number): IncrementalState;
  /**
   * The state of the union of both histories (profile merge); inputs are not
   * modified. `shared`: events both histories hold (applied to both states),
   * counted once: their contribution is taken out of b's copy first.
   */
  merge(a: IncrementalState, b: IncrementalState, shared?: EngineEvent[]): IncrementalState;
  /** The value at T (exact for T >= the horizon). */
  valueAt(state: IncrementalState, ctx: IncrementalContext, T: number): Value;
  /**
   * The earliest instant > T at which the value can change with no new event
   * and no change of ctx, or null if never. The value is constant on (T, result).
   */
  /** `current`: valueAt(state, ctx, T) when the caller has it already (spares computing it again). */
  nextChangeAt(state: IncrementalState, ctx: IncrementalContext, T: number, current?: Value): number | null;
}

/** How far nextChangeAt looks through instants where nothing flips before answering with one of them. */
const MAX_PROBES = 256;

const sameValue = (a: Value, b: Value) => a === b || JSON.stringify(a) === JSON.stringify(b);

export function compileIncremental(ast: QueryAst): IncrementalEvaluator {
  return new Compiled(ast);
}

class Compiled implements IncrementalEvaluator {
  readonly eventNames: ReadonlySet<string>;
  readonly leafKinds: string[];
  private readonly plans: LeafPlan[] = [];
  private readonly leafOf = new Map<ScalarExpr, number>();
  /** Leaves by event name, for apply(). */
  private readonly byName = new Map<string, number[]>();

  constructor(readonly ast: QueryAst) {
    // Pass 1: find the leaves and how each is used (count thresholds).
    const usages = new Map<string, LeafUsage>();
    const nodes = new Map<string, Array<Extract<ScalarExpr, { kind: 'reduce' }>>>();
    const use = (e: Extract<ScalarExpr, { kind: 'reduce' }>, cap: number | null, countOnly: boolean) => {
      const key = leafKey(e);
      const u = usages.get(key);
      if (!u) usages.set(key, { countCap: cap, countOnly });
      else {
        u.countCap = u.countCap === null || cap === null ? null : Math.max(u.countCap, cap);
        u.countOnly &&= countOnly;
      }
      nodes.set(key, [...(nodes.get(key) ?? []), e]);
    };
    /** cap: the threshold when this scalar is compared with a number literal. */
    const scalar = (e: ScalarExpr, cap: number | null = null): void => {
      if (e.kind === 'reduce') use(e, e.reducer.fn === 'count' ? cap : null, false);
      else if (e.kind === 'list_count' && e.list.kind === 'reduce') use(e.list, e.list.reducer.fn === 'unique' ? cap : null, true);
      else if (e.kind === 'list_count') scalar(e.list);
    };
    const bool = (b: BoolExpr): void => {
      if (b.kind === 'and' || b.kind === 'or') b.items.forEach(bool);
      else if (b.kind === 'not' || b.kind === 'any' || b.kind === 'all') bool(b.expr);
      else {
        const c = b.comparison;
        const right = takesScalar(c.op) ? (c as { value: ScalarExpr }).value : null;
        // count() <op> n is decided by min(count, cap): >= n and < n need ceil(n), the others floor(n) + 1.
        const n = right && right.kind === 'literal' && typeof right.value === 'number' ? right.value : null;
        const cap = n === null ? null : Math.max(0, c.op === 'at_least' || c.op === 'less_than' ? Math.ceil(n) : Math.floor(n) + 1);
        scalar(b.left, cap);
        if (right) scalar(right);
      }
    };
    if (ast.type === 'trait') scalar(ast.root);
    else bool(ast.root);
    // Pass 2: one plan per distinct leaf.
    for (const [key, usage] of usages) {
      const list = nodes.get(key)!;
      const index = this.plans.length;
      this.plans.push(planLeaf(list[0]!, usage));
      for (const n of list) this.leafOf.set(n, index);
    }
    const names = new Set<string>();
    this.plans.forEach((p, i) => {
      for (const n of leafNames(p)) {
        names.add(n);
        this.byName.set(n, [...(this.byName.get(n) ?? []), i]);
      }
    });
    this.eventNames = names;
    this.leafKinds = this.plans.map((p) => (p.kind === 'list' ? `list:${p.policy.kind}` : p.kind));
  }

  initState(): IncrementalState {
    return this.plans.map(initLeaf);
  }

  apply(state: IncrementalState, event: EngineEvent, now: number = event.timestamp): IncrementalState {
    const name = eventNameOf(event);
    const leaves = name === undefined ? undefined : this.byName.get(name);
    if (!leaves) return state;
    for (const i of leaves) {
      const p = this.plans[i]!;
      if (p.kind === 'fallback') {
        const list = state[i] as StoredEvent[];
        insertEvent(list, p.pack(event));
        compactEvents(p, list, now);
        continue;
      }
      if (!p.accept(event)) continue;
      if (p.extractMany) {
        for (const e of p.extractMany(event)) this.add(p, state, i, e, now);
      } else {
        const e = p.extract(event);
        if (e !== null) this.add(p, state, i, e, now);
      }
    }
    return state;
  }

  private add(p: Extract<LeafPlan, { kind: 'agg' | 'list' }>, state: IncrementalState, i: number, e: Entry, now: number): void {
    if (p.kind === 'agg') {
      const agg = state[i] as Agg;
      foldFuture(p, agg, now);
      if (ts(e) <= now) foldAgg(p.reducer, agg, e);
      else insertSorted((agg.f ??= []), e);
    } else {
      const list = state[i] as Entry[];
      insertSorted(list, e);
      state[i] = compactList(p, list, now);
    }
  }

  advance(state: IncrementalState, now: number): IncrementalState {
    this.plans.forEach((p, i) => {
      if (p.kind === 'agg') foldFuture(p, state[i] as Agg, now);
      else if (p.kind === 'list') state[i] = compactList(p, state[i] as Entry[], now);
      else compactEvents(p, state[i] as StoredEvent[], now);
    });
    return state;
  }

  merge(a: IncrementalState, b: IncrementalState, shared: EngineEvent[] = []): IncrementalState {
    return mergeStates(this.plans, this.byName, a, b, shared);
  }

  valueAt(state: IncrementalState, ctx: IncrementalContext, T: number): Value {
    return this.ast.type === 'trait' ? this.scalar(this.ast.root, state, ctx, T) : this.bool(this.ast.root, state, ctx, T);
  }

  nextChangeAt(state: IncrementalState, ctx: IncrementalContext, T: number, current?: Value): number | null {
    const v0 = current !== undefined ? current : this.valueAt(state, ctx, T);
    let t = T;
    for (let probe = 0; probe < MAX_PROBES; probe++) {
      const next = this.structuralNext(state, ctx, t);
      if (next === null) return null;
      if (!sameValue(this.valueAt(state, ctx, next), v0)) return next;
      t = next;
    }
    // Many instants where nothing flips: wake at the last one checked and ask again then.
    return t;
  }

  // ---------------------------------------------------------------- evaluation

  private leafValue(e: Extract<ScalarExpr, { kind: 'reduce' }>, state: IncrementalState, ctx: IncrementalContext, T: number): Value {
    const i = this.leafOf.get(e)!;
    const p = this.plans[i]!;
    const data = state[i]!;
    if (p.kind === 'agg') return aggValue(p.reducer, data as Agg, T);
    if (p.kind === 'list') return listValue(p.reducer, data as Entry[], T, p.a, p.b);
    return evaluateScalarReference(p.expr, {
      events: (data as StoredEvent[]).map(p.unpack),
      traits: ctx.traits,
      computed: ctx.computed,
      now: T,
    });
  }

  private scalar(e: ScalarExpr, state: IncrementalState, ctx: IncrementalContext, T: number): Value {
    switch (e.kind) {
      case 'literal':
        return e.value;
      case 'trait':
        if (e.name in ctx.computed) return ctx.computed[e.name] ?? null;
        return normaliseTrait(ctx.traits[e.name]);
      case 'property':
      case 'context':
        return null; // no current event at the top level (the reference's answer too)
      case 'reduce':
        return this.leafValue(e, state, ctx, T);
      case 'list_count': {
        const list = this.scalar(e.list, state, ctx, T);
        return Array.isArray(list) ? list.length : 0;
      }
    }
  }

  private bool(e: BoolExpr, state: IncrementalState, ctx: IncrementalContext, T: number): boolean {
    switch (e.kind) {
      case 'and':
        return e.items.every((i) => this.bool(i, state, ctx, T));
      case 'or':
        return e.items.some((i) => this.bool(i, state, ctx, T));
      case 'not':
        return !this.bool(e.expr, state, ctx, T);
      case 'any':
        return (ctx.users ?? []).some((u) => this.bool(e.expr, u.state, u, T));
      case 'all': {
        const users = ctx.users ?? [];
        return users.length > 0 && users.every((u) => this.bool(e.expr, u.state, u, T));
      }
      case 'compare': {
        const left = this.scalar(e.left, state, ctx, T);
        const c = e.comparison;
        const right = takesScalar(c.op) ? this.scalar((c as { value: ScalarExpr }).value, state, ctx, T) : null;
        return compareValues(left, c, right, T);
      }
    }
  }

  // ---------------------------------------------------------------- wake-ups

  /** The earliest instant > T at which any input of the value can move: a window edge or a relative date. */
  private structuralNext(state: IncrementalState, ctx: IncrementalContext, T: number): number | null {
    let best: number | null = null;
    const offer = (t: number | null) => {
      if (t !== null && t > T && (best === null || t < best)) best = t;
    };
    const scalar = (e: ScalarExpr, st: IncrementalState, c: IncrementalContext): void => {
      if (e.kind === 'reduce') offer(this.leafNextPoint(e, st, c, T));
      else if (e.kind === 'list_count') scalar(e.list, st, c);
    };
    const bool = (e: BoolExpr, st: IncrementalState, c: IncrementalContext): void => {
      if (e.kind === 'and' || e.kind === 'or') e.items.forEach((i) => bool(i, st, c));
      else if (e.kind === 'not') bool(e.expr, st, c);
      else if (e.kind === 'any' || e.kind === 'all') for (const u of c.users ?? []) bool(e.expr, u.state, u);
      else {
        scalar(e.left, st, c);
        const cmp = e.comparison;
        if (takesScalar(cmp.op)) scalar((cmp as { value: ScalarExpr }).value, st, c);
        if (isRelativeDate(cmp.op)) {
          // The left value is constant until the next leaf point, so its flip is exact up to there.
          const t = toTime(this.scalar(e.left, st, c, T));
          if (t !== null)
            offer(relativeDateFlipAfter(t, cmp.op, durationOf(cmp as { duration: { amount: number; unit: 'hour' | 'day' } }), T));
        }
      }
    };
    if (this.ast.type === 'trait') scalar(this.ast.root, state, ctx);
    else bool(this.ast.root, state, ctx);
    return best;
  }

  private leafNextPoint(
    e: Extract<ScalarExpr, { kind: 'reduce' }>,
    state: IncrementalState,
    ctx: IncrementalContext,
    T: number,
  ): number | null {
    const i = this.leafOf.get(e)!;
    const p = this.plans[i]!;
    const data = state[i]!;
    if (p.kind === 'agg') {
      const f = (data as Agg).f;
      if (!f) return null;
      for (const x of f) if (ts(x) > T) return ts(x);
      return null;
    }
    if (p.kind === 'list') return listNextPoint(data as Entry[], T, p.a, p.b);
    let best: number | null = null;
    const offer = (t: number | null) => {
      if (t !== null && t > T && (best === null || t < best)) best = t;
    };
    for (const stored of data as StoredEvent[]) {
      const ev = p.unpack(stored);
      for (const o of p.offsets) offer(ev.timestamp + o);
      for (const probe of p.dateProbes) {
        const t = toTime(probe.read(ev, ctx.traits));
        if (t !== null) offer(relativeDateFlipAfter(t, probe.op, probe.d, T));
      }
    }
    for (const probe of p.dateProbes) {
      const t = toTime(probe.read(null, ctx.traits));
      if (t !== null) offer(relativeDateFlipAfter(t, probe.op, probe.d, T));
    }
    return best;
  }
}

function durationOf(c: { duration?: { amount: number; unit: 'hour' | 'day' } }): number {
  const d = c.duration!;
  return d.amount * (d.unit === 'day' ? 86_400_000 : 3_600_000);
}

function normaliseTrait(v: unknown): Value {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.map(normaliseTrait);
  return JSON.stringify(v);
}

/** Future entries whose time has come join the aggregate. */
function foldFuture(p: Extract<LeafPlan, { kind: 'agg' }>, agg: Agg, now: number): void {
  const f = agg.f;
  if (!f || !f.length || ts(f[0]!) > now) return;
  while (f.length && ts(f[0]!) <= now) foldAgg(p.reducer, agg, f.shift()!);
  if (f.length === 0) delete agg.f;
}
