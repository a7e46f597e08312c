// Time series for the console's charts (libs/config-store history.ts keeps them):
//   GET /spaces/{spaceId}/audiences/{id}/size-history?since=&until=
//   GET /spaces/{spaceId}/computed-traits/{id}/size-history?since=&until= (profiles with a value)
//   GET /spaces/{spaceId}/destinations/{id}/delivery-history?since=&until=
// since/until: ISO 8601 times; default the last 24 hours. Ranges within the
// last 2 days (and no longer) come at the recent points' spacing, others at
// hourly points; at most 90 days.
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { HISTORY_MAX_RANGE_MS, type ConfigStore, type HistoryStore } from '@engage/config-store';
import type { ComputationsService } from '../computations.service';
import { ApiError } from '../http/api-error';
import { param } from '../http/params';
import type { SpacesGuard } from './spaces.routes';

const DEFAULT_RANGE_MS = 24 * 3600 * 1000;

export const historyQuery = z
  .object({
    since: z.string().datetime({ offset: true }).optional().describe('ISO 8601; default until minus 24 hours'),
    until: z.string().datetime({ offset: true }).optional().describe('ISO 8601, exclusive; default now'),
  })
  .passthrough();

const RESOLUTION = { m: 'recent', h: 'hour' } as const;

/** since/until of a request as ms, checked: 400 naming the parameter otherwise. */
export function parseHistoryRange(query: unknown, now: number): { since: number; until: number } {
  const parsed = historyQuery.safeParse(query ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.');
    throw ApiError.badRequest(`${field}: must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z`, field);
  }
  const until = parsed.data.until ? Date.parse(parsed.data.until) : now;
  const since = parsed.data.since ? Date.parse(parsed.data.since) : until - DEFAULT_RANGE_MS;
  if (since >= until) throw ApiError.badRequest('since: must be before until', 'since');
  if (until - since > HISTORY_MAX_RANGE_MS)
    throw ApiError.badRequest(`since: the range may span at most ${HISTORY_MAX_RANGE_MS / (24 * 3600 * 1000)} days`, 'since');
  return { since, until };
}

export function historyRouter(deps: {
  computations: ComputationsService;
  store: ConfigStore;
  spaces: SpacesGuard;
  history: HistoryStore;
  now?: () => number;
}): Router {
  const router = Router();
  const now = () => deps.now?.() ?? Date.now();
  const iso = (ms: number) => new Date(ms).toISOString();

  // An audience's size: its members; a computed trait's: the profiles with a value.
  const sizeHistory = (kind: 'audience' | 'computed_trait', idField: 'audienceId' | 'computedTraitId') =>
    async function handler(req: Request, res: Response) {
      const spaceId = deps.spaces.require(param(req, 'spaceId'));
      const computation = deps.computations.get(kind, spaceId, param(req, 'id'));
      const at = now();
      const range = parseHistoryRange(req.query, at);
      const { tier, points } = await deps.history.sizes(computation.id, { ...range, now: at });
      res.json({
        data: {
          [idField]: computation.id,
          since: iso(range.since),
          until: iso(range.until),
          resolution: RESOLUTION[tier],
          points: points.map((p) => ({ at: iso(p.at), size: p.size })),
        },
      });
    };
  router.get('/spaces/:spaceId/audiences/:id/size-history', sizeHistory('audience', 'audienceId'));
  router.get('/spaces/:spaceId/computed-traits/:id/size-history', sizeHistory('computed_trait', 'computedTraitId'));

  router.get('/spaces/:spaceId/destinations/:id/delivery-history', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const destination = deps.store.get('destination', param(req, 'id'));
    if (!destination || destination.spaceId !== spaceId) throw ApiError.notFound('destination', param(req, 'id'));
    const at = now();
    const range = parseHistoryRange(req.query, at);
    const { tier, bucketMs, buckets } = await deps.history.deliveries(destination.id, { ...range, now: at });
    res.json({
      data: {
        destinationId: destination.id,
        since: iso(range.since),
        until: iso(range.until),
        resolution: RESOLUTION[tier],
        bucketMs,
        buckets: buckets.map((b) => ({ ...b, at: iso(b.at) })),
      },
    });
  });
  return router;
}
