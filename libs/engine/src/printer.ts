// The normalised text of a query: quoted names, sugar for the six scalar
// comparators, parentheses only where AND/OR precedence needs them.
// parseQuery(printQuery(ast)) deep-equals ast.
import {
  SUGAR,
  type BoolExpr,
  type Comparison,
  type Duration,
  type Filter,
  type LiteralValue,
  type QueryAst,
  type Reducer,
  type ScalarExpr,
  type StreamExpr,
} from './ast';

const quote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const literal = (v: LiteralValue) => (typeof v === 'string' ? quote(v) : String(v));
const duration = (d: Duration) => `${d.amount} ${d.unit}${d.amount === 1 ? '' : 's'}`;

export function printQuery(ast: QueryAst): string {
  return ast.type === 'trait' ? printScalar(ast.root) : printBool(ast.root);
}

export function printBool(e: BoolExpr): string {
  switch (e.kind) {
    case 'and':
      return e.items.map((i) => (i.kind === 'or' ? `(${printBool(i)})` : printBool(i))).join(' AND ');
    case 'or':
      return e.items.map(printBool).join(' OR ');
    case 'not':
      return `NOT (${printBool(e.expr)})`;
    case 'any':
      return `ANY (${printBool(e.expr)})`;
    case 'all':
      return `ALL (${printBool(e.expr)})`;
    case 'compare':
      return printComparison(printScalar(e.left), e.comparison);
  }
}

function printComparison(left: string, c: Comparison): string {
  switch (c.op) {
    case 'equals':
    case 'differs':
    case 'greater_than':
    case 'at_least':
    case 'less_than':
    case 'at_most':
      return `${left} ${SUGAR[c.op]} ${printScalar(c.value)}`;
    case 'exists':
    case 'absent':
      return `${left}.${c.op}()`;
    case 'contains':
    case 'one_of':
      return `${left}.${c.op}(${c.values.map(literal).join(', ')})`;
    case 'within_last':
    case 'within_next':
    case 'before_last':
    case 'after_next':
      return `${left}.${c.op}(${duration(c.duration)})`;
    default:
      return `${left}.${c.op}(${quote(c.value)})`;
  }
}

export function printScalar(e: ScalarExpr): string {
  switch (e.kind) {
    case 'literal':
      return literal(e.value);
    case 'trait':
      return `trait(${quote(e.name)})`;
    case 'property':
      return e.parent ? `property(parent: ${quote(e.name)})` : `property(${quote(e.name)})`;
    case 'context':
      return `context(${quote(e.path)})`;
    case 'reduce':
      return `${printStream(e.stream)}.${printReducer(e.reducer)}`;
    case 'list_count':
      return `${printScalar(e.list)}.count()`;
  }
}

function printStream(s: StreamExpr): string {
  return `event(${quote(s.name)})${s.filters.map((f) => `.${printFilter(f)}`).join('')}`;
}

function printFilter(f: Filter): string {
  switch (f.kind) {
    case 'where':
      return `where(${printBool(f.condition)})`;
    case 'within':
      return `within(${f.parent ? 'parent: ' : ''}${duration(f.duration)})`;
    case 'between':
      return `between(${f.parent ? 'parent: ' : ''}${duration(f.start)}, ${duration(f.end)})`;
    case 'sources':
      return `sources(${f.mode}: ${f.ids.map(quote).join(', ')})`;
  }
}

function printReducer(r: Reducer): string {
  switch (r.fn) {
    case 'count':
      return 'count()';
    case 'min':
    case 'max':
      return `${r.fn}(${printScalar(r.of)}${r.as === 'string' ? ' as string' : ''})`;
    case 'mode':
      return `mode(${printScalar(r.of)}${r.as === 'string' ? '' : ` as ${r.as}`}, ${r.minFrequency})`;
    default:
      return `${r.fn}(${printScalar(r.of)})`;
  }
}
