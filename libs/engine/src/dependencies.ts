// What a definition reads: the evaluator touches only the state an event can
// affect, and the control plane rejects reference cycles.
import type { BoolExpr, Filter, QueryAst, ScalarExpr, StreamExpr } from './ast';

export interface Dependencies {
  /** Event names whose arrival can change the value. */
  eventNames: string[];
  /** Every trait() name read (profile traits and computation keys alike). */
  traits: string[];
  /** trait() names that are keys of other computations of the space (given `computationKeys`), else all trait names. */
  computations: string[];
  usesContext: boolean;
  /** True when the value can change with time alone (windows, relative dates). */
  timeDependent: boolean;
}

export function dependenciesOf(ast: QueryAst, computationKeys?: Set<string>): Dependencies {
  const events = new Set<string>();
  const traits = new Set<string>();
  let usesContext = false;
  let timeDependent = false;

  const scalar = (e: ScalarExpr): void => {
    switch (e.kind) {
      case 'trait':
        traits.add(e.name);
        break;
      case 'context':
        usesContext = true;
        break;
      case 'reduce':
        stream(e.stream);
        if (e.reducer.fn !== 'count') scalar(e.reducer.of);
        break;
      case 'list_count':
        scalar(e.list);
        break;
      default:
        break;
    }
  };
  const stream = (s: StreamExpr) => {
    events.add(s.name);
    s.filters.forEach(filter);
  };
  const filter = (f: Filter) => {
    if (f.kind === 'where') bool(f.condition);
    if ((f.kind === 'within' || f.kind === 'between') && !f.parent) timeDependent = true;
  };
  const bool = (e: BoolExpr): void => {
    switch (e.kind) {
      case 'and':
      case 'or':
        e.items.forEach(bool);
        break;
      case 'not':
      case 'any':
      case 'all':
        bool(e.expr);
        break;
      case 'compare': {
        scalar(e.left);
        const c = e.comparison;
        if ('value' in c && typeof c.value === 'object') scalar(c.value);
        if (c.op === 'within_last' || c.op === 'within_next' || c.op === 'before_last' || c.op === 'after_next') timeDependent = true;
        break;
      }
    }
  };
  if (ast.type === 'trait') scalar(ast.root);
  else bool(ast.root);
  const traitList = [...traits].sort();
  return {
    eventNames: [...events].sort(),
    traits: traitList,
    computations: computationKeys ? traitList.filter((t) => computationKeys.has(t)) : traitList,
    usesContext,
    timeDependent,
  };
}

/** A cycle across computation references, as the key path closing it (`a -> b -> a`), or null. */
export function findCycle(defs: Array<{ key: string; ast: QueryAst }>): string[] | null {
  const keys = new Set(defs.map((d) => d.key));
  return findCycleInGraph(defs.map((d) => ({ key: d.key, references: dependenciesOf(d.ast, keys).computations })));
}

/**
 * The same over a plain reference graph, searched from the nodes in the order
 * given (put the node being created first to report the cycle from it).
 * References to keys that are not nodes (plain profile traits) are ignored.
 */
export function findCycleInGraph(nodes: Array<{ key: string; references: string[] }>): string[] | null {
  const refs = new Map(nodes.map((n) => [n.key, n.references]));
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (key: string): string[] | null => {
    if (state.get(key) === 'done') return null;
    if (state.get(key) === 'visiting') return [...path.slice(path.indexOf(key)), key];
    state.set(key, 'visiting');
    path.push(key);
    for (const ref of refs.get(key) ?? []) {
      if (!refs.has(ref)) continue;
      const cycle = visit(ref);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(key, 'done');
    return null;
  };
  for (const n of nodes) {
    const cycle = visit(n.key);
    if (cycle) return cycle;
  }
  return null;
}
