// /spaces/{spaceId}/destinations and the connections of computations to them:
// /spaces/{spaceId}/audiences/{id}/destinations, /computed-traits/{id}/destinations.
import { unchanged } from '../domain/unchanged';
import { param } from '../http/params';
import { Router } from 'express';
import type { ConfigStore, ConfigWriter, ConnectionConfig, DestinationConfig } from '@engage/config-store';
import { newId } from '../domain/ids';
import {
  createConnectionBody,
  createDestinationBody,
  destinationSettingsIssues,
  LIST_DESTINATION_TYPES,
  parseBody,
  patchConnectionBody,
  patchDestinationBody,
} from '../domain/requests';
import { maskDestination, restoreSecrets } from '@engage/config-store';
import { createExternalAudience, createsAudiences, presetMappings, withDefaultSettings, type HttpOverrides } from '@engage/actions';
import { matchingMappings } from '@engage/delivery';
import { actionsRouter, actionsSecretFields, checkActionsSettings, checkAudienceSettings, requireSlug } from './actions.routes';
import type { DestinationHostGuard } from '../destination-host.guard';
import { ApiError } from '../http/api-error';
import { paginate } from '../http/pagination';
import type { StatusReader } from '../status.reader';
import type { SyncTrigger } from '../sync-trigger';
import type { SpacesGuard } from './spaces.routes';

export function destinationsRouter(deps: {
  store: ConfigStore;
  writer: ConfigWriter;
  spaces: SpacesGuard;
  status: StatusReader;
  syncTrigger: SyncTrigger;
  hosts: DestinationHostGuard;
  /** DESTINATION_HTTP_OVERRIDES, for the vendor calls of createAudience. */
  httpOverrides?: HttpOverrides;
  now?: () => Date;
}): Router {
  const router = Router();
  const now = () => (deps.now?.() ?? new Date()).toISOString();
  const destinationIn = (spaceId: string, id: string) => {
    const d = deps.store.get('destination', id);
    if (!d || d.spaceId !== spaceId) throw ApiError.notFound('destination', id);
    return d;
  };
  /**
   * Settings as they will be stored: masks replaced by the stored secrets they
   * stand for, and every URL's host allowed (422 naming the field otherwise).
   */
  const settingsToStore = async (
    type: string,
    incoming: Record<string, unknown>,
    stored?: Record<string, unknown>,
    secretFields?: string[],
  ) => {
    const { settings, issues } = restoreSecrets(incoming, stored, secretFields);
    const refused = issues.length === 0 ? await deps.hosts.issues(settings) : [];
    const items = [
      ...issues.map(([field, reason]) => ({ type: 'validation', message: `${field}: ${reason}`, field })),
      ...refused.map(([field, reason]) => ({ type: 'refused-host', message: `${field}: ${reason}`, field })),
      ...destinationSettingsIssues(type, settings).map(([field, reason]) => ({
        type: 'validation',
        message: `${field}: ${reason}`,
        field,
      })),
    ];
    if (items.length > 0) throw new ApiError(422, items);
    return settings;
  };
  // Catalog and mappings of Actions destinations (CONTRACT.md section 8).
  router.use(actionsRouter(deps));

  router.post('/spaces/:spaceId/destinations', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const body = parseBody(createDestinationBody, req.body);
    // An Actions destination: a slug from the catalog, settings valid for its definition, its presets as mappings.
    const slug = body.type === 'actions' ? requireSlug(body.slug) : undefined;
    const secretFields = slug ? actionsSecretFields(slug) : undefined;
    const settings = await settingsToStore(
      body.type,
      slug ? withDefaultSettings(slug, body.settings) : body.settings,
      undefined,
      secretFields,
    );
    if (slug) checkActionsSettings(slug, settings);
    const at = now();
    const destination: DestinationConfig = {
      id: newId('dst'),
      spaceId,
      ...body,
      settings,
      ...(slug ? { secretFields, mappings: presetMappings(slug, () => newId('map')) } : {}),
      createdAt: at,
      updatedAt: at,
    };
    await deps.writer.write('destination', destination.id, spaceId, destination);
    res.status(201).json({ data: { destination: maskDestination(destination) } });
  });
  // Reads show what the dispatchers counted (deliveryStatus) next to the configuration.
  router.get('/spaces/:spaceId/destinations', async (req, res) => {
    const page = paginate(deps.store.list('destination', deps.spaces.require(param(req, 'spaceId'))), req.query);
    res.json({ data: { destinations: await deps.status.destinations(page.items.map(maskDestination)), pagination: page.pagination } });
  });
  router.get('/spaces/:spaceId/destinations/:id', async (req, res) => {
    const current = destinationIn(deps.spaces.require(param(req, 'spaceId')), param(req, 'id'));
    const [destination] = await deps.status.destinations([maskDestination(current)]);
    res.json({ data: { destination } });
  });
  router.patch('/spaces/:spaceId/destinations/:id', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const current = destinationIn(spaceId, param(req, 'id'));
    const patch = parseBody(patchDestinationBody, req.body);
    const next: DestinationConfig = {
      ...current,
      name: patch.name ?? current.name,
      // Hosts are checked when settings are sent, so a destination whose host a
      // narrower allow-list now refuses can still be renamed or disabled.
      settings: patch.settings
        ? await settingsToStore(current.type, patch.settings, current.settings, current.secretFields)
        : current.settings,
      rateLimit: patch.rateLimit === null ? undefined : (patch.rateLimit ?? current.rateLimit),
      enabled: patch.enabled ?? current.enabled,
      updatedAt: now(),
    };
    if (current.type === 'actions' && current.slug && patch.settings) checkActionsSettings(current.slug, next.settings);
    if (unchanged(current, next)) return void res.json({ data: { destination: maskDestination(current) } });
    await deps.writer.write('destination', next.id, spaceId, next);
    res.json({ data: { destination: maskDestination(next) } });
  });
  // "Sync now": list destinations flush their pending adds/removes without waiting for the cadence.
  router.post('/spaces/:spaceId/destinations/:id/sync', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const destination = destinationIn(spaceId, param(req, 'id'));
    await deps.syncTrigger.request(destination.id);
    res.status(202).json({ data: { status: 'SYNC_REQUESTED', destinationId: destination.id } });
  });

  router.delete('/spaces/:spaceId/destinations/:id', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const current = destinationIn(spaceId, param(req, 'id'));
    await deps.writer.write('destination', current.id, spaceId, current, { deleted: true });
    res.json({ data: { status: 'SUCCESS' } });
  });

  /**
   * Connection views with `matchingMappings` (CONTRACT.md section 8): how many
   * of an Actions destination's mappings the connection's calls match,
   * enabled or not; null for other destinations (Segment's "Not applicable").
   */
  const withMatching = <V extends ConnectionConfig>(views: V[], computation: { key: string }, computationClass: 'audience' | 'trait') =>
    views.map((view) => {
      const destination = deps.store.get('destination', view.destinationId);
      const mappings = destination?.type === 'actions' ? (destination.mappings ?? []) : undefined;
      return { ...view, matchingMappings: matchingMappings(mappings, view.settings, { key: computation.key, class: computationClass }) };
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
      if (!destination || destination.spaceId !== spaceId)
        throw ApiError.validation(`destinationId: destination ${body.destinationId} not found in this space`, 'destinationId');
      if (computationClass === 'trait' && LIST_DESTINATION_TYPES.has(destination.type)) {
        throw ApiError.validation(
          `destinationId: ${destination.type} is a list destination and takes audiences only, not computed traits`,
          'destinationId',
        );
      }
      const existing = deps.store
        .list('connection', spaceId)
        .find((c) => c.computationId === computation.id && c.destinationId === destination.id);
      if (existing)
        throw ApiError.conflict(
          `${computation.key} is already connected to ${destination.id} (connection ${existing.id})`,
          'destinationId',
        );
      if (body.audienceSettings) {
        if (destination.type !== 'actions')
          throw ApiError.validation('audienceSettings: only Actions audience destinations take audience settings', 'audienceSettings');
        checkAudienceSettings(requireSlug(destination.slug), body.audienceSettings);
      }
      // An Actions audience destination (Iterable Lists, ...): the audience is created on the vendor's side now, its id kept.
      const externalAudienceId =
        destination.type === 'actions' && computationClass === 'audience' && createsAudiences(destination.slug)
          ? await createExternalAudience(
              destination,
              { id: computation.id, key: computation.key, name: computation.name, spaceId },
              deps.httpOverrides ?? {},
              body.audienceSettings,
            ).catch((err: Error & { response?: { status?: number } }) => {
              const status = err.response?.status ?? (err as { status?: number }).status;
              throw new ApiError(502, [
                {
                  type: 'destination',
                  message: `${destination.name} refused to create the audience${status ? ` (HTTP ${status})` : ''}: ${err.message}`,
                  field: 'destinationId',
                },
              ]);
            })
          : undefined;
      const at = now();
      const connection: ConnectionConfig = {
        id: newId('con'),
        spaceId,
        computationId: computation.id,
        computationClass,
        destinationId: destination.id,
        settings: body.settings,
        ...(externalAudienceId ? { externalAudienceId } : {}),
        ...(body.audienceSettings ? { audienceSettings: body.audienceSettings } : {}),
        enabled: body.enabled,
        createdAt: at,
        updatedAt: at,
      };
      await deps.writer.write('connection', connection.id, spaceId, connection);
      const [view] = withMatching(
        await deps.status.connections([connection], new Map([[destination.id, destination]])),
        computation,
        computationClass,
      );
      res.status(201).json({ data: { connection: view } });
    });
    router.get(`/spaces/:spaceId/${path}/:id/destinations`, async (req, res) => {
      const spaceId = deps.spaces.require(param(req, 'spaceId'));
      const computation = computationIn(spaceId, param(req, 'id'));
      const connections = deps.store.list('connection', spaceId).filter((c) => c.computationId === computation.id);
      const page = paginate(connections, req.query);
      const destinations = new Map(page.items.map((c) => [c.destinationId, deps.store.get('destination', c.destinationId)]));
      const views = withMatching(await deps.status.connections(page.items, destinations), computation, computationClass);
      res.json({ data: { connections: views, pagination: page.pagination } });
    });
    // A connection is addressed by its id or by its destination's id (as Segment addresses it).
    const connectionIn = (spaceId: string, computationId: string, ref: string) => {
      computationIn(spaceId, computationId);
      const connection =
        deps.store.get('connection', ref) ??
        deps.store.list('connection', spaceId).find((c) => c.computationId === computationId && c.destinationId === ref);
      if (!connection || connection.computationId !== computationId) throw ApiError.notFound('connection', ref);
      return connection;
    };
    const viewOf = async (connection: ConnectionConfig) =>
      withMatching(
        await deps.status.connections(
          [connection],
          new Map([[connection.destinationId, deps.store.get('destination', connection.destinationId)]]),
        ),
        computationIn(connection.spaceId, connection.computationId),
        computationClass,
      )[0];
    router.get(`/spaces/:spaceId/${path}/:id/destinations/:connectionId`, async (req, res) => {
      const spaceId = deps.spaces.require(param(req, 'spaceId'));
      res.json({ data: { connection: await viewOf(connectionIn(spaceId, param(req, 'id'), param(req, 'connectionId'))) } });
    });
    router.patch(`/spaces/:spaceId/${path}/:id/destinations/:connectionId`, async (req, res) => {
      const spaceId = deps.spaces.require(param(req, 'spaceId'));
      const current = connectionIn(spaceId, param(req, 'id'), param(req, 'connectionId'));
      const patch = parseBody(patchConnectionBody, req.body);
      const next: ConnectionConfig = {
        ...current,
        settings: patch.settings ?? current.settings,
        enabled: patch.enabled ?? current.enabled,
        updatedAt: now(),
      };
      if (unchanged(current, next)) return void res.json({ data: { connection: await viewOf(current) } });
      await deps.writer.write('connection', next.id, spaceId, next);
      res.json({ data: { connection: await viewOf(next) } });
    });
    router.delete(`/spaces/:spaceId/${path}/:id/destinations/:connectionId`, async (req, res) => {
      const spaceId = deps.spaces.require(param(req, 'spaceId'));
      const connection = connectionIn(spaceId, param(req, 'id'), param(req, 'connectionId'));
      await deps.writer.write('connection', connection.id, spaceId, { ...connection, enabled: false, updatedAt: now() }, { deleted: true });
      res.json({ data: { status: 'SUCCESS' } });
    });
  }
  return router;
}
