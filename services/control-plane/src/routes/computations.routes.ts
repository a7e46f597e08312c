// /spaces/{spaceId}/audiences and /spaces/{spaceId}/computed-traits (same shape).
import { param } from '../http/params';
import { Router } from 'express';
import type { ComputationsService, ComputationKind } from '../computations.service';
import { createComputationBody, parseBody, patchComputationBody } from '../domain/requests';
import { paginate } from '../http/pagination';
import type { StatusReader } from '../status.reader';
import type { SpacesGuard } from './spaces.routes';

const PATHS: Record<ComputationKind, { path: string; one: string; many: string }> = {
  audience: { path: 'audiences', one: 'audience', many: 'audiences' },
  computed_trait: { path: 'computed-traits', one: 'computedTrait', many: 'computedTraits' },
};

export function computationsRouter(
  kind: ComputationKind,
  deps: { computations: ComputationsService; status: StatusReader; spaces: SpacesGuard },
): Router {
  const { path, one, many } = PATHS[kind];
  const base = `/spaces/:spaceId/${path}`;
  const router = Router();
  const view = async (c: Parameters<StatusReader['computations']>[0][number]) => (await deps.status.computations([c]))[0];

  router.post(base, async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const created = await deps.computations.create(kind, spaceId, parseBody(createComputationBody, req.body));
    res.status(201).json({ data: { [one]: await view(created) } });
  });
  router.get(base, async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    // A journey's audiences (its entry and split queries) are the journey's: GET by id shows them, lists do not.
    const page = paginate(
      deps.computations.list(kind, spaceId).filter((c) => !c.journeyId),
      req.query,
    );
    res.json({ data: { [many]: await deps.status.computations(page.items), pagination: page.pagination } });
  });
  router.get(`${base}/:id`, async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    res.json({ data: { [one]: await view(deps.computations.get(kind, spaceId, param(req, 'id'))) } });
  });
  router.patch(`${base}/:id`, async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const updated = await deps.computations.update(kind, spaceId, param(req, 'id'), parseBody(patchComputationBody, req.body));
    res.json({ data: { [one]: await view(updated) } });
  });
  router.delete(`${base}/:id`, async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const removed = await deps.computations.remove(kind, spaceId, param(req, 'id'));
    res.json({ data: { status: 'SUCCESS', [one]: { id: removed.id, key: removed.key } } });
  });
  return router;
}
