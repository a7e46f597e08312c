// The typed AST of Segment's query language (segment-docs
// src/api/public-api/query-language.md). Return types of the reference map to
// node kinds: VectorExtractor/StreamFilter/WindowedFilter -> StreamExpr,
// Scalar/ScalarExtractor/ListScalar -> ScalarExpr, Comparator/Junction -> BoolExpr.

export type TimeUnit = 'hour' | 'day';

export interface Duration {
  amount: number;
  unit: TimeUnit;
}

export type LiteralValue = string | number | boolean | null;

export type ScalarExpr =
  | { kind: 'literal'; value: LiteralValue }
  | { kind: 'trait'; name: string }
  | { kind: 'property'; name: string; parent: boolean }
  | { kind: 'context'; path: string }
  | { kind: 'reduce'; stream: StreamExpr; reducer: Reducer }
  /** `unique(...).count()`: the size of a ListScalar. */
  | { kind: 'list_count'; list: ScalarExpr };

export interface StreamExpr {
  kind: 'event';
  name: string;
  filters: Filter[];
}

export type Filter =
  | { kind: 'where'; condition: BoolExpr }
  | { kind: 'within'; duration: Duration; parent: boolean }
  | { kind: 'between'; start: Duration; end: Duration; parent: boolean }
  | { kind: 'sources'; mode: 'include' | 'exclude'; ids: string[] };

export type ValueType = 'number' | 'string' | 'array';

export type Reducer =
  | { fn: 'count' }
  | { fn: 'sum' | 'avg' | 'first' | 'last' | 'unique'; of: ScalarExpr }
  | { fn: 'min' | 'max'; of: ScalarExpr; as: 'number' | 'string' }
  | { fn: 'mode'; of: ScalarExpr; as: ValueType; minFrequency: number };

/** Comparators taking one scalar (sugar: = != > >= < <=). */
export type ScalarComparator = 'equals' | 'differs' | 'greater_than' | 'at_least' | 'less_than' | 'at_most';
export type ListComparator = 'contains' | 'one_of';
export type StringComparator = 'omits' | 'starts_with' | 'ends_with' | 'before_date' | 'after_date';
export type DurationComparator = 'within_last' | 'within_next' | 'before_last' | 'after_next';
export type PresenceComparator = 'exists' | 'absent';

export type Comparison =
  | { op: ScalarComparator; value: ScalarExpr }
  | { op: ListComparator; values: LiteralValue[] }
  | { op: StringComparator; value: string }
  | { op: DurationComparator; duration: Duration }
  | { op: PresenceComparator };

export type BoolExpr =
  | { kind: 'compare'; left: ScalarExpr; comparison: Comparison }
  | { kind: 'and'; items: BoolExpr[] }
  | { kind: 'or'; items: BoolExpr[] }
  | { kind: 'not'; expr: BoolExpr }
  | { kind: 'any'; expr: BoolExpr }
  | { kind: 'all'; expr: BoolExpr };

export type QueryType = 'users' | 'accounts' | 'trait';

/** An audience query is a BoolExpr; a computed-trait query a ScalarExpr. */
export type QueryAst = { type: 'users' | 'accounts'; root: BoolExpr } | { type: 'trait'; root: ScalarExpr };

export const SUGAR: Record<ScalarComparator, string> = {
  equals: '=',
  differs: '!=',
  greater_than: '>',
  at_least: '>=',
  less_than: '<',
  at_most: '<=',
};

export const MS: Record<TimeUnit, number> = { hour: 3_600_000, day: 86_400_000 };
export const durationMs = (d: Duration) => d.amount * MS[d.unit];
