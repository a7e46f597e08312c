// QueryChecker over the language library (@engage/engine).
import { dependenciesOf, parseQuery, printQuery, QueryError } from '@engage/engine';
import { traitReads } from './domain/reference-levels';
import { QueryCheckError, type CheckedQuery, type QueryChecker, type QueryKind } from './domain/query-checker';

export class EngineQueryChecker implements QueryChecker {
  check(query: string, kind: QueryKind, traitLevel: 'user' | 'account' = 'user'): CheckedQuery {
    try {
      const ast = parseQuery(query, { type: kind });
      return { normalized: printQuery(ast), references: dependenciesOf(ast).computations, reads: traitReads(ast, traitLevel) };
    } catch (err) {
      if (err instanceof QueryError) throw new QueryCheckError(err.message, { line: err.line, column: err.column }, err.expected);
      throw err;
    }
  }
}
