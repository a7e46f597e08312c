// /spaces/{spaceId}/journeys (CONTRACT.md section 9): the draft is edited with
// POST / PATCH, published as frozen versions, paused, resumed and archived.
// Reads add `draftChanged` and per-step `stats` (JourneyStepStats).
import { Router } from 'express';
import type { JourneyConfig } from '@engage/config-store';
import { journeyInputSchema, journeyPatchSchema } from '@engage/journeys';
import type { z } from 'zod';
import { parseBody } from '../domain/requests';
import { ApiError } from '../http/api-error';
import { paginate } from '../http/pagination';
import { param } from '../http/params';
import type { JourneysService } from '../journeys.service';
import type { StatusReader } from '../status.reader';
import type { SpacesGuard } from './spaces.routes';

/**
 * The body as the schema reads it, or a 400 listing every bad field. Journeys
 * answer 400 for a body of the wrong shape and keep 422 for a well-formed
 * definition that cannot run (graph problems, unknown audience or destination,
 * a query the language refuses).
 */
function parseJourneyBody<S extends z.ZodTypeAny>(schema: S, body: unknown): z.infer<S> {
  try {
    return parseBody(schema, body);
  } catch (err) {
    if (err instanceof ApiError && err.status === 422) throw new ApiError(400, err.items);
    throw err;
  }
}

export function journeysRouter(deps: { journeys: JourneysService; status: StatusReader; spaces: SpacesGuard }): Router {
  const base = '/spaces/:spaceId/journeys';
  const router = Router();
  const views = async (list: JourneyConfig[]) => {
    const stats = await deps.status.journeys(list);
    return list.map((j, i) => ({ ...j, draftChanged: deps.journeys.draftChanged(j), stats: stats[i]! }));
  };
  const one = async (j: JourneyConfig) => ({ data: { journey: (await views([j]))[0] } });

  router.post(base, async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const created = await deps.journeys.create(spaceId, parseJourneyBody(journeyInputSchema, req.body));
    res.status(201).json(await one(created));
  });
  router.get(base, async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const page = paginate(deps.journeys.list(spaceId), req.query);
    res.json({ data: { journeys: await views(page.items), pagination: page.pagination } });
  });
  router.get(`${base}/:id`, async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    res.json(await one(deps.journeys.get(spaceId, param(req, 'id'))));
  });
  router.patch(`${base}/:id`, async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const updated = await deps.journeys.update(spaceId, param(req, 'id'), parseJourneyBody(journeyPatchSchema, req.body));
    res.json(await one(updated));
  });
  // DELETE archives (the record and its key stay); a second DELETE answers the same.
  router.delete(`${base}/:id`, async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const archived = await deps.journeys.archive(spaceId, param(req, 'id'), { idempotent: true });
    res.json({ data: { status: 'SUCCESS', journey: { id: archived.id, key: archived.key } } });
  });
  for (const action of ['publish', 'pause', 'resume', 'archive'] as const) {
    router.post(`${base}/:id/${action}`, async (req, res) => {
      const spaceId = deps.spaces.require(param(req, 'spaceId'));
      const journey = await deps.journeys[action](spaceId, param(req, 'id'));
      res.json(await one(journey));
    });
  }
  return router;
}
