// Evaluation of one profile's computations as its events arrive: the pure core
// of the realtime evaluator (the service only loads and saves the state).
//
// NOTE (honest limit): this evaluates definitions with the reference evaluator
// over a BOUNDED per-profile history (the last `maxEvents` events), not with
// per-condition incremental state. It is correct for histories within the
// bound and within the longest window, and the bound keeps state and work per
// event constant; an incremental evaluator (time buckets per condition) is the
// planned replacement and must agree with this one.
import type { QueryAst } from './ast';
import { dependenciesOf, type Dependencies } from './dependencies';
import { eventNameOf, type EngineEvent, type Value } from './event';
import { evaluateReference, type EvaluationContext } from './reference-evaluator';
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

export interface ProfileState {
  /** Oldest first. Each carries `arrivedAt` (ms), the time it was resolved. */
  events: Array<EngineEvent & { arrivedAt: number }>;
  traits: Record<string, unknown>;
  values: Record<string, StoredValue>;
}

export interface ValueChange {
  computation: CompiledComputation;
  value: Value;
  previous: Value;
  /** The event that caused it (undefined for time-only or config-caused changes). */
  cause?: EngineEvent;
}

export function compileComputation(c: Omit<CompiledComputation, 'deps'>, computationKeys: Set<string>): CompiledComputation {
  return { ...c, deps: dependenciesOf(c.ast, computationKeys) };
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

function contextFor(state: ProfileState, c: CompiledComputation, computed: Record<string, Value>, now: number): EvaluationContext {
  return { events: state.events.filter((e) => e.arrivedAt >= c.countsEventsFrom), traits: state.traits, computed, now };
}

/** Default of a computation that has seen nothing: audiences are false, traits null. */
const initialValue = (c: CompiledComputation): Value => (c.class === 'audience' ? false : null);

/**
 * Re-evaluates `affected` computations (and everything reading them) at `now`
 * and returns the changed values; `state.values` is updated in place.
 */
export function reevaluate(state: ProfileState, ordered: CompiledComputation[], affected: (c: CompiledComputation) => boolean, now: number, cause?: EngineEvent): ValueChange[] {
  const computed: Record<string, Value> = {};
  for (const c of ordered) computed[c.key] = state.values[c.id]?.value ?? initialValue(c);
  const changedKeys = new Set<string>();
  const changes: ValueChange[] = [];
  for (const c of ordered) {
    const stored = state.values[c.id];
    const stale = !stored || stored.version !== c.definitionVersion;
    if (!stale && !affected(c) && !c.deps.computations.some((k) => changedKeys.has(k))) continue;
    const value = evaluateReference(c.ast, contextFor(state, c, computed, now));
    const previous = stored?.value ?? initialValue(c);
    state.values[c.id] = { value, version: c.definitionVersion };
    computed[c.key] = value;
    if (!sameValue(value, previous)) {
      changedKeys.add(c.key);
      changes.push({ computation: c, value, previous, cause });
    }
  }
  return changes;
}

function sameValue(a: Value, b: Value): boolean {
  if (a === null || b === null) return a === b;
  if (typeof a !== typeof b) return false;
  return valuesEqual(a, b);
}

/**
 * Applies one event: traits from identify/group calls, the event to the
 * bounded history (duplicates by messageId ignored: redelivery is harmless),
 * then re-evaluates the computations it can affect. Returns the changes.
 */
export function applyEvent(state: ProfileState, event: EngineEvent & { arrivedAt: number }, ordered: CompiledComputation[], opts: { maxEvents: number; now: number }): ValueChange[] {
  if (state.events.some((e) => e.messageId === event.messageId)) return [];
  const changedTraits = new Set<string>();
  if (event.type === 'identify' || event.type === 'group') {
    for (const [k, v] of Object.entries(event.traits)) {
      if (JSON.stringify(state.traits[k]) !== JSON.stringify(v)) changedTraits.add(k);
      state.traits[k] = v;
    }
  }
  state.events.push(event);
  // Keep time order for first/last; drop the oldest beyond the bound.
  state.events.sort((a, b) => a.timestamp - b.timestamp || (a.messageId < b.messageId ? -1 : 1));
  if (state.events.length > opts.maxEvents) state.events.splice(0, state.events.length - opts.maxEvents);
  const name = eventNameOf(event);
  return reevaluate(
    state,
    ordered,
    (c) => (name !== undefined && c.deps.eventNames.includes(name)) || c.deps.traits.some((t) => changedTraits.has(t)) || (c.deps.usesContext && name !== undefined),
    opts.now,
    event,
  );
}

/**
 * The earliest instant after `now` at which some value can change with no new
 * event, or null. Candidates are the instants where an event or a date trait
 * crosses a window edge; each is checked by evaluating just after it.
 */
export function nextChangeAt(state: ProfileState, ordered: CompiledComputation[], now: number): number | null {
  const timed = ordered.filter((c) => c.deps.timeDependent);
  if (timed.length === 0) return null;
  const durations = new Set<number>();
  for (const c of timed) for (const d of windowDurations(c.ast)) durations.add(d);
  const anchors: number[] = state.events.map((e) => e.timestamp);
  for (const v of Object.values(state.traits)) {
    const t = typeof v === 'string' ? Date.parse(v) : NaN;
    if (!Number.isNaN(t)) anchors.push(t);
  }
  const candidates = new Set<number>();
  for (const a of anchors) for (const d of [0, ...durations]) for (const t of [a + d, a + d + 1, a - d, a - d + 1]) if (t > now) candidates.add(t);
  const sorted = [...candidates].sort((x, y) => x - y).slice(0, 200);
  for (const t of sorted) {
    const probe: ProfileState = { ...state, values: { ...state.values } };
    if (reevaluate(probe, ordered, (c) => c.deps.timeDependent, t).length > 0) return t;
  }
  return null;
}

function windowDurations(ast: QueryAst): number[] {
  const out: number[] = [];
  const walk = (node: unknown) => {
    if (!node || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    if ((n.kind === 'within' || n.kind === 'between') && n.parent === false) {
      for (const key of ['duration', 'start', 'end']) if (n[key]) out.push(durationOf(n[key]));
    }
    if ('duration' in n && typeof n.op === 'string') out.push(durationOf(n.duration));
    for (const v of Object.values(n)) if (typeof v === 'object') walk(v);
  };
  walk(ast);
  return out;
}

function durationOf(d: unknown): number {
  const { amount, unit } = d as { amount: number; unit: 'hour' | 'day' };
  return amount * (unit === 'day' ? 86_400_000 : 3_600_000);
}
