// /spaces and /spaces/{spaceId}/sources (write keys).
import { unchanged } from '../domain/unchanged';
import { param } from '../http/params';
import { Router } from 'express';
import type { ConfigStore, ConfigWriter, SourceConfig, SpaceConfig } from '@engage/config-store';
import { spaceView } from '../domain/access-tokens';
import { newId, newWriteKey } from '../domain/ids';
import { createSourceBody, createSpaceBody, parseBody, patchSourceBody, patchSpaceBody } from '../domain/requests';
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
    res.status(201).json({ data: { space: spaceView(space) } });
  });
  router.get('/spaces', (req, res) => {
    const page = paginate(deps.store.list('space'), req.query);
    res.json({ data: { spaces: page.items.map(spaceView), pagination: page.pagination } });
  });
  router.get('/spaces/:spaceId', (req, res) => {
    res.json({ data: { space: spaceView(deps.store.get('space', deps.spaces.require(param(req, 'spaceId')))!) } });
  });
  router.patch('/spaces/:spaceId', async (req, res) => {
    const current = deps.store.get('space', deps.spaces.require(param(req, 'spaceId')))!;
    const patch = parseBody(patchSpaceBody, req.body);
    const space: SpaceConfig = { ...current, name: patch.name ?? current.name, updatedAt: now() };
    if (unchanged(current, space)) return void res.json({ data: { space: spaceView(current) } });
    await deps.writer.write('space', space.id, space.id, space);
    res.json({ data: { space: spaceView(space) } });
  });
  router.delete('/spaces/:spaceId', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    // Deleting a space with live objects would orphan them in every service: delete those first.
    const left = (['source', 'audience', 'computed_trait', 'destination', 'connection'] as const)
      .map((kind) => [kind, deps.store.list(kind, spaceId).length] as const)
      .filter(([, n]) => n > 0);
    // Archived journeys stay (their keys are never reused) but hold nothing any service runs.
    const journeys = deps.store.list('journey', spaceId).filter((j) => j.status !== 'Archived').length;
    if (journeys > 0) left.push(['journey' as never, journeys]);
    if (left.length > 0)
      throw ApiError.conflict(`space ${spaceId} is not empty: ${left.map(([k, n]) => `${n} ${k}(s)`).join(', ')}; delete them first`);
    const current = deps.store.get('space', spaceId)!;
    await deps.writer.write('space', spaceId, spaceId, { ...current, updatedAt: now() }, { deleted: true });
    res.json({ data: { status: 'SUCCESS' } });
  });

  router.post('/spaces/:spaceId/sources', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const body = parseBody(createSourceBody, req.body);
    const at = now();
    const source: SourceConfig = {
      id: newId('src'),
      spaceId,
      name: body.name,
      writeKey: newWriteKey(),
      enabled: body.enabled,
      rateLimit: body.rateLimit,
      createdAt: at,
      updatedAt: at,
    };
    await deps.writer.write('source', source.id, spaceId, source);
    res.status(201).json({ data: { source } });
  });
  router.get('/spaces/:spaceId/sources', (req, res) => {
    const page = paginate(deps.store.list('source', deps.spaces.require(param(req, 'spaceId'))), req.query);
    res.json({ data: { sources: page.items, pagination: page.pagination } });
  });
  const sourceIn = (spaceId: string, id: string) => {
    const source = deps.store.get('source', id);
    if (!source || source.spaceId !== spaceId) throw ApiError.notFound('source', id);
    return source;
  };
  router.get('/spaces/:spaceId/sources/:id', (req, res) => {
    res.json({ data: { source: sourceIn(deps.spaces.require(param(req, 'spaceId')), param(req, 'id')) } });
  });
  router.patch('/spaces/:spaceId/sources/:id', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const current = sourceIn(spaceId, param(req, 'id'));
    const patch = parseBody(patchSourceBody, req.body);
    const source: SourceConfig = {
      ...current,
      name: patch.name ?? current.name,
      enabled: patch.enabled ?? current.enabled,
      rateLimit: patch.rateLimit === null ? undefined : (patch.rateLimit ?? current.rateLimit),
      updatedAt: now(),
    };
    if (unchanged(current, source)) return void res.json({ data: { source: current } });
    await deps.writer.write('source', source.id, spaceId, source);
    res.json({ data: { source } });
  });
  router.delete('/spaces/:spaceId/sources/:id', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const current = sourceIn(spaceId, param(req, 'id'));
    // The ingest drops the write key as soon as it sees the deletion.
    await deps.writer.write('source', current.id, spaceId, { ...current, enabled: false, updatedAt: now() }, { deleted: true });
    res.json({ data: { status: 'SUCCESS' } });
  });
  return router;
}
