// The control plane's HTTP app: ops endpoints (no auth), then the bearer-auth
// configuration API. Handlers throw ApiError; one error handler shapes it.
import { timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger } from '@engage/logging';
import { handleOpsRequest, type OpsHandlers } from '@engage/observability';
import { ApiError } from './api-error';

export interface AppDeps {
  log: Logger;
  ops: OpsHandlers;
  /** Mounted under bearer auth. */
  apiRouters: Router[];
  /** Mounted before bearer auth: routers with an auth of their own (the Profile API's Basic auth). */
  publicRouters?: Router[];
}

function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function bearerAuth(token: string) {
  return (req: Request, _res: Response, next: NextFunction) => {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(header);
    if (!m || !tokenMatches(m[1]!.trim(), token)) return next(ApiError.unauthorized());
    next();
  };
}

/**
 * Runs mutating requests one at a time in this process. The rules check the
 * store, then write (keys never reused, one connection per pair, a space empty
 * before deletion); two interleaved requests could both pass the check.
 * NOTE: this holds within one control-plane process; run one writer replica.
 */
export function serialWrites() {
  let tail: Promise<void> = Promise.resolve();
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
    const previous = tail;
    let release!: () => void;
    tail = new Promise<void>((resolve) => (release = resolve));
    res.once('finish', release);
    res.once('close', release);
    void previous.then(() => next());
  };
}

export function createApp(config: { token: string; maxBodyBytes: number }, deps: AppDeps) {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use((req, res, next) => {
    handleOpsRequest(req, res, deps.ops).then((handled) => (handled ? undefined : next()), next);
  });
  // Routers with an auth of their own (the Profile API's Basic auth) come first; they only read.
  for (const router of deps.publicRouters ?? []) app.use(router);
  // Auth before parsing: an unauthenticated caller learns nothing about bodies.
  app.use(bearerAuth(config.token));
  app.use(express.json({ limit: config.maxBodyBytes }));
  app.use(serialWrites());
  for (const router of deps.apiRouters) app.use(router);
  app.use((req, _res, next) => next(new ApiError(404, [{ type: 'not-found', message: `no route ${req.method} ${req.path}` }])));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof ApiError) return void res.status(err.status).json(err.body());
    const e = err as { type?: string; status?: number; message?: string; limit?: number };
    if (e.type === 'entity.parse.failed') return void res.status(400).json(ApiError.badRequest(`invalid JSON body: ${e.message}`).body());
    if (e.type === 'entity.too.large') {
      return void res
        .status(413)
        .json(new ApiError(413, [{ type: 'too-large', message: `request body exceeds the limit of ${e.limit} bytes` }]).body());
    }
    deps.log.error({ err, method: req.method, path: req.path }, 'request_failed');
    res.status(500).json({ errors: [{ type: 'internal', message: 'internal error' }] });
  });
  return app;
}
