// The control plane's view of the language library: check a query, list the
// computations it references, find reference cycles. Kept as an interface so
// the rules in computation-rules.ts stay pure and testable.

export interface QueryPosition {
  line: number;
  column: number;
}

export class QueryCheckError extends Error {
  constructor(
    message: string,
    readonly position: QueryPosition,
    readonly expected?: string,
  ) {
    super(message);
    this.name = 'QueryCheckError';
  }
}

export type QueryKind = 'users' | 'accounts' | 'trait';

export interface CheckedQuery {
  normalized: string;
  /** Keys of audiences / computed traits the query reads through trait(). */
  references: string[];
  /** Every trait() read with the level (user or account) it is read at. */
  reads?: Array<{ name: string; level: 'user' | 'account' }>;
}

export interface QueryChecker {
  /** Throws QueryCheckError when the query is invalid. */
  check(query: string, kind: QueryKind, traitLevel?: 'user' | 'account'): CheckedQuery;
}
