// GET /console/...: the operator console, a static build (console/ in the
// repository) served on the API's origin so it calls the API without CORS.
// Unknown paths under /console/ answer index.html: the console routes in the
// browser (history API), so /console/spaces/spa_1/audiences is a page, not a file.
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { Router, type Response } from 'express';
import { ApiError } from './api-error';

// NOTE: the build emits no inline script; styles may be inline (React style props).
const CSP =
  "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

function secureHeaders(res: Response) {
  res.setHeader('content-security-policy', CSP);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
}

export function consoleRouter(config: { dir: string }): Router {
  const router = Router();
  const index = path.join(config.dir, 'index.html');
  // Hashed file names: an asset never changes under its name.
  router.use('/console/assets', express.static(path.join(config.dir, 'assets'), { immutable: true, maxAge: '365d', index: false }));
  // A missing asset is a 404, not the page (a script answered with HTML fails obscurely).
  router.use('/console/assets', (req, _res, next) =>
    next(new ApiError(404, [{ type: 'not-found', message: `no console asset ${req.path}` }])),
  );
  router.get('/console{/*page}', (_req, res, next) => {
    if (!existsSync(index)) {
      return next(new ApiError(404, [{ type: 'not-found', message: `the console is not built (no ${index}): run npm run build` }]));
    }
    secureHeaders(res);
    res.setHeader('cache-control', 'no-cache');
    res.sendFile(index);
  });
  return router;
}
