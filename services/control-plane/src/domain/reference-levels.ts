// Which level (user or account) each trait() read happens at, so a query cannot
// read an account-level computation where a user is evaluated, or the reverse.
// In an account audience, conditions are about the account except inside
// ANY / ALL, which quantify over its users (CONTRACT.md section 4).
import type { BoolExpr, QueryAst, ScalarExpr } from '@engage/engine';

export type Level = 'user' | 'account';

export interface TraitRead {
  name: string;
  level: Level;
}

/** Every trait() read of a query with the level it is read at; `traitLevel` is the level of a computed trait's query. */
export function traitReads(ast: QueryAst, traitLevel: Level = 'user'): TraitRead[] {
  const out: TraitRead[] = [];
  const scalar = (e: ScalarExpr, level: Level): void => {
    if (e.kind === 'trait') out.push({ name: e.name, level });
    else if (e.kind === 'list_count') scalar(e.list, level);
    else if (e.kind === 'reduce') {
      for (const f of e.stream.filters) if (f.kind === 'where') bool(f.condition, level);
      if (e.reducer.fn !== 'count') scalar(e.reducer.of, level);
    }
  };
  const bool = (e: BoolExpr, level: Level): void => {
    switch (e.kind) {
      case 'and':
      case 'or':
        return e.items.forEach((i) => bool(i, level));
      case 'not':
        return bool(e.expr, level);
      case 'any':
      case 'all':
        return bool(e.expr, 'user');
      case 'compare':
        scalar(e.left, level);
        if ('value' in e.comparison && typeof e.comparison.value === 'object') scalar(e.comparison.value, level);
    }
  };
  if (ast.type === 'trait') scalar(ast.root, traitLevel);
  else bool(ast.root, ast.type === 'accounts' ? 'account' : 'user');
  return out;
}
