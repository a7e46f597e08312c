// /spaces/{spaceId}/destinations and the connections of computations to them:
// /spaces/{spaceId}/audiences/{id}/destinations, /computed-traits/{id}/destinations.
import { param } from '../http/params';
import { Router } from 'express';
import type { ConfigStore, ConfigWriter, ConnectionConfig, DestinationConfig } from '@engage/config-store';
import { newId } from '../domain/ids';
import { createConnectionBody, createDestinationBody, parseBody, patchDestinationBody } from '../domain/requests';
import { ApiError } from '../http/api-error';
import { paginate } from '../http/pagination';
import type { StatusReader } from '../status.reader';
import type { SpacesGuard } from './spaces.routes';

export function destinationsRouter(deps: { store: ConfigStore; writer: ConfigWriter; spaces: SpacesGuard; status: StatusReader; now?: () => Date }): Router {
  const router = Router();
  const now = () => (deps.now?.() ?? new Date()).toISOString();
  const destinationIn = (spaceId: string, id: string) => {
    const d = deps.store.get('destination', id);
    if (!d || d.spaceId !== spaceId) throw ApiError.notFound('destination', id);
    return d;
  };

  router.post('/spaces/:spaceId/destinations', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const body = parseBody(createDestinationBody, req.body);
    const at = now();
    const destination: DestinationConfig = { id: newId('dst'), spaceId, ...body, createdAt: at, updatedAt: at };
    await deps.writer.write('destination', destination.id, spaceId, destination);
    res.status(201).json({ data: { destination } });
  });
  router.get('/spaces/:spaceId/destinations', (req, res) => {
    const page = paginate(deps.store.list('destination', deps.spaces.require(param(req, 'spaceId'))), req.query);
    res.json({ data: { destinations: page.items, pagination: page.pagination } });
  });
  router.get('/spaces/:spaceId/destinations/:id', (req, res) => {
    res.json({ data: { destination: destinationIn(deps.spaces.require(param(req, 'spaceId')), param(req, 'id')) } });
  });
  router.patch('/spaces/:spaceId/destinations/:id', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const current = destinationIn(spaceId, param(req, 'id'));
    const patch = parseBody(patchDestinationBody, req.body);
    const next: DestinationConfig = {
      ...current,
      name: patch.name ?? current.name,
      settings: patch.settings ?? current.settings,
      rateLimit: patch.rateLimit === null ? undefined : (patch.rateLimit ?? current.rateLimit),
      enabled: patch.enabled ?? current.enabled,
      updatedAt: now(),
    };
    await deps.writer.write('destination', next.id, spaceId, next);
    res.json({ data: { destination: next } });
  });
  router.delete('/spaces/:spaceId/destinations/:id', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const current = destinationIn(spaceId, param(req, 'id'));
    await deps.writer.write('destination', current.id, spaceId, current, { deleted: true });
    res.json({ data: { status: 'SUCCESS' } });
  });

  for (const [path, kind, computationClass] of [
    ['audiences', 'audience', 'audience'],
    ['computed-traits', 'computed_trait', 'trait'],
  ] as const) {
    const computationIn = (spaceId: string, id: string) => {
      const c = deps.store.get(kind, id);
      if (!c || c.spaceId !== spaceId) throw ApiError.notFound(kind === 'audience' ? 'audience' : 'computed trait', id);
      return c;
    };
    router.post(`/spaces/:spaceId/${path}/:id/destinations`, async (req, res) => {
      const spaceId = deps.spaces.require(param(req, 'spaceId'));
      const computation = computationIn(spaceId, param(req, 'id'));
      const body = parseBody(createConnectionBody, req.body);
      const destination = deps.store.get('destination', body.destinationId);
      if (!destination || destination.spaceId !== spaceId) throw ApiError.validation(`destinationId: destination ${body.destinationId} not found in this space`, 'destinationId');
      const existing = deps.store.list('connection', spaceId).find((c) => c.computationId === computation.id && c.destinationId === destination.id);
      if (existing) throw ApiError.conflict(`${computation.key} is already connected to ${destination.id} (connection ${existing.id})`, 'destinationId');
      const at = now();
      const connection: ConnectionConfig = {
        id: newId('con'),
        spaceId,
        computationId: computation.id,
        computationClass,
        destinationId: destination.id,
        settings: body.settings,
        enabled: body.enabled,
        createdAt: at,
        updatedAt: at,
      };
      await deps.writer.write('connection', connection.id, spaceId, connection);
      const [view] = await deps.status.connections([connection], new Map([[destination.id, destination]]));
      res.status(201).json({ data: { connection: view } });
    });
    router.get(`/spaces/:spaceId/${path}/:id/destinations`, async (req, res) => {
      const spaceId = deps.spaces.require(param(req, 'spaceId'));
      const computation = computationIn(spaceId, param(req, 'id'));
      const connections = deps.store.list('connection', spaceId).filter((c) => c.computationId === computation.id);
      const page = paginate(connections, req.query);
      const destinations = new Map(page.items.map((c) => [c.destinationId, deps.store.get('destination', c.destinationId)]));
      res.json({ data: { connections: await deps.status.connections(page.items, destinations), pagination: page.pagination } });
    });
    router.delete(`/spaces/:spaceId/${path}/:id/destinations/:connectionId`, async (req, res) => {
      const spaceId = deps.spaces.require(param(req, 'spaceId'));
      computationIn(spaceId, param(req, 'id'));
      const connection = deps.store.get('connection', param(req, 'connectionId'));
      if (!connection || connection.computationId !== param(req, 'id')) throw ApiError.notFound('connection', param(req, 'connectionId'));
      await deps.writer.write('connection', connection.id, spaceId, connection, { deleted: true });
      res.json({ data: { status: 'SUCCESS' } });
    });
  }
  return router;
}
