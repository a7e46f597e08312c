// POST /spaces/{spaceId}/audiences/check and /computed-traits/check {definition}
// -> {data:{valid, normalized, references, errors:[{line, column, message, expected}]}}
// A cheap syntax and language check for editors that check as the user types:
// no profile is read (the preview does that) and an invalid query is a 200
// with the error's position, so a client tells "your query is wrong" from "your
// request is wrong" (a 4xx) without parsing messages.
import { Router } from 'express';
import { QueryCheckError, type QueryChecker, type QueryKind } from '../domain/query-checker';
import { parseBody, previewBody } from '../domain/requests';
import { param } from '../http/params';
import type { SpacesGuard } from './spaces.routes';

export interface QueryCheckResult {
  valid: boolean;
  /** The query as the language prints it back (null when invalid). */
  normalized: string | null;
  /** Keys of the audiences and computed traits it reads. */
  references: string[];
  errors: Array<{ line: number; column: number; message: string; expected: string | null }>;
}

export function checkQuery(checker: QueryChecker, query: string, kind: QueryKind): QueryCheckResult {
  try {
    const checked = checker.check(query, kind, kind === 'accounts' ? 'account' : 'user');
    return { valid: true, normalized: checked.normalized, references: checked.references, errors: [] };
  } catch (err) {
    if (!(err instanceof QueryCheckError)) throw err;
    const { line, column } = err.position;
    return {
      valid: false,
      normalized: null,
      references: [],
      errors: [{ line, column, message: err.message, expected: err.expected ?? null }],
    };
  }
}

export function queryCheckRouter(deps: { checker: QueryChecker; spaces: SpacesGuard }): Router {
  const router = Router();
  for (const [path, isTrait] of [
    ['audiences', false],
    ['computed-traits', true],
  ] as const) {
    router.post(`/spaces/:spaceId/${path}/check`, (req, res) => {
      deps.spaces.require(param(req, 'spaceId'));
      const { definition } = parseBody(previewBody, req.body);
      res.json({ data: checkQuery(deps.checker, definition.query, isTrait ? 'trait' : definition.type) });
    });
  }
  return router;
}
