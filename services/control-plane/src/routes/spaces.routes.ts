// /spaces and /spaces/{spaceId}/sources (write keys).
import { param } from '../http/params';
import { Router } from 'express';
import type { ConfigStore, ConfigWriter, SourceConfig, SpaceConfig } from '@engage/config-store';
import { newId, newWriteKey } from '../domain/ids';
import { createSourceBody, createSpaceBody, parseBody } from '../domain/requests';
import { ApiError } from '../http/api-error';
import { paginate } from '../http/pagination';

export class SpacesGuard {
  constructor(private readonly store: ConfigStore) {}
  /** The space id if the space exists, else a 404. */
  require(spaceId: string): string {
    if (!this.store.get('space', spaceId)) throw ApiError.notFound('space', spaceId);
    return spaceId;
  }
}

export function spacesRouter(deps: { store: ConfigStore; writer: ConfigWriter; spaces: SpacesGuard; now?: () => Date }): Router {
  const router = Router();
  const now = () => (deps.now?.() ?? new Date()).toISOString();

  router.post('/spaces', async (req, res) => {
    const body = parseBody(createSpaceBody, req.body);
    const at = now();
    const space: SpaceConfig = { id: newId('spa'), name: body.name, createdAt: at, updatedAt: at };
    await deps.writer.write('space', space.id, space.id, space);
    res.status(201).json({ data: { space } });
  });
  router.get('/spaces', (req, res) => {
    const page = paginate(deps.store.list('space'), req.query);
    res.json({ data: { spaces: page.items, pagination: page.pagination } });
  });
  router.get('/spaces/:spaceId', (req, res) => {
    res.json({ data: { space: deps.store.get('space', deps.spaces.require(param(req, 'spaceId'))) } });
  });

  router.post('/spaces/:spaceId/sources', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const body = parseBody(createSourceBody, req.body);
    const at = now();
    const source: SourceConfig = { id: newId('src'), spaceId, name: body.name, writeKey: newWriteKey(), enabled: body.enabled, rateLimit: body.rateLimit, createdAt: at, updatedAt: at };
    await deps.writer.write('source', source.id, spaceId, source);
    res.status(201).json({ data: { source } });
  });
  router.get('/spaces/:spaceId/sources', (req, res) => {
    const page = paginate(deps.store.list('source', deps.spaces.require(param(req, 'spaceId'))), req.query);
    res.json({ data: { sources: page.items, pagination: page.pagination } });
  });
  router.get('/spaces/:spaceId/sources/:id', (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const source = deps.store.get('source', param(req, 'id'));
    if (!source || source.spaceId !== spaceId) throw ApiError.notFound('source', param(req, 'id'));
    res.json({ data: { source } });
  });
  return router;
}
