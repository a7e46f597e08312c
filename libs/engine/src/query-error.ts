/** A query that does not parse or type-check: where (1-based) and what was expected. */
export class QueryError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
    readonly expected?: string,
  ) {
    super(message);
    this.name = 'QueryError';
  }

  /** `line:column: message`, as the CLI prints it. */
  format(): string {
    return `${this.line}:${this.column}: ${this.message}`;
  }
}
