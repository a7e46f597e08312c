// Actions destinations (CONTRACT.md section 8): the catalog of Segment's open
// definitions available here (GET /catalog/destinations) and each Actions
// destination's mappings (/spaces/{spaceId}/destinations/{id}/mappings).
// Mounted by destinationsRouter, which also creates them (settings checked
// against the definition's schema, presets as the first mappings).
import { Router } from 'express';
import {
  catalog,
  catalogEntry,
  isActionsSlug,
  mappingIssues,
  mappingWithDefaults,
  settingsIssues,
  audienceSettingsIssues,
  secretFieldsOf,
  ACTIONS_SLUGS,
} from '@engage/actions';
import type { ActionMapping, ConfigStore, ConfigWriter, DestinationConfig } from '@engage/config-store';
import { ApiError } from '../http/api-error';
import { param } from '../http/params';
import { newId } from '../domain/ids';
import { createMappingBody, parseBody, patchMappingBody } from '../domain/requests';
import type { SpacesGuard } from './spaces.routes';

/** 400 naming each field (CONTRACT.md section 8: settings are checked against the slug's schema). */
const badRequest = (issues: Array<[string, string]>) =>
  new ApiError(
    400,
    issues.map(([field, reason]) => ({ type: 'validation', message: `${field}: ${reason}`, field })),
  );

/** The slug, checked against the allow-list (400 naming `slug`). */
export function requireSlug(slug: string | undefined): string {
  if (!isActionsSlug(slug))
    throw badRequest([['slug', `'${slug}' is not an Actions destination available here (${ACTIONS_SLUGS.join(', ')})`]]);
  return slug;
}

/** Secret settings of the slug's definition (its password fields). */
export const actionsSecretFields = (slug: string) => secretFieldsOf(slug);

/** Settings (secrets already restored) checked against the definition: 400 naming each bad field. */
export function checkActionsSettings(slug: string, settings: Record<string, unknown>): void {
  const issues = settingsIssues(slug, settings);
  if (issues.length > 0) throw badRequest(issues);
}

/** A connection's audience settings checked against the definition's audienceFields: 400 naming each bad field. */
export function checkAudienceSettings(slug: string, audienceSettings: Record<string, unknown>): void {
  const issues = audienceSettingsIssues(slug, audienceSettings);
  if (issues.length > 0) throw badRequest(issues);
}

export function actionsRouter(deps: { store: ConfigStore; writer: ConfigWriter; spaces: SpacesGuard; now?: () => Date }): Router {
  const router = Router();
  const now = () => (deps.now?.() ?? new Date()).toISOString();

  router.get('/catalog/destinations', (_req, res) => {
    res.json({ data: { destinations: catalog() } });
  });
  router.get('/catalog/destinations/:slug', (req, res) => {
    const slug = param(req, 'slug');
    if (!isActionsSlug(slug)) throw ApiError.notFound('catalog destination', slug);
    res.json({ data: { destination: catalogEntry(slug) } });
  });

  const actionsDestinationIn = (spaceId: string, id: string): DestinationConfig & { slug: string } => {
    const d = deps.store.get('destination', id);
    if (!d || d.spaceId !== spaceId) throw ApiError.notFound('destination', id);
    if (d.type !== 'actions' || !d.slug)
      throw ApiError.badRequest(`destination ${id} is of type ${d.type}: only Actions destinations have mappings`);
    return d as DestinationConfig & { slug: string };
  };
  const mappingIn = (destination: DestinationConfig, mappingId: string) => {
    const m = destination.mappings?.find((x) => x.id === mappingId);
    if (!m) throw ApiError.notFound('mapping', mappingId);
    return m;
  };
  const check = (slug: string, mapping: ActionMapping) => {
    const issues = mappingIssues(slug, mapping);
    if (issues.length > 0) throw badRequest(issues);
  };
  const save = async (destination: DestinationConfig, mappings: ActionMapping[]) => {
    const next: DestinationConfig = { ...destination, mappings, updatedAt: now() };
    await deps.writer.write('destination', next.id, next.spaceId, next);
    return next;
  };

  router.get('/spaces/:spaceId/destinations/:id/mappings', (req, res) => {
    const destination = actionsDestinationIn(deps.spaces.require(param(req, 'spaceId')), param(req, 'id'));
    res.json({ data: { mappings: destination.mappings ?? [] } });
  });
  router.post('/spaces/:spaceId/destinations/:id/mappings', async (req, res) => {
    const destination = actionsDestinationIn(deps.spaces.require(param(req, 'spaceId')), param(req, 'id'));
    const body = parseBody(createMappingBody, req.body);
    const mapping: ActionMapping = {
      id: newId('map'),
      ...body,
      mapping: mappingWithDefaults(destination.slug, body.actionId, body.mapping),
    };
    check(destination.slug, mapping);
    await save(destination, [...(destination.mappings ?? []), mapping]);
    res.status(201).json({ data: { mapping } });
  });
  router.get('/spaces/:spaceId/destinations/:id/mappings/:mappingId', (req, res) => {
    const destination = actionsDestinationIn(deps.spaces.require(param(req, 'spaceId')), param(req, 'id'));
    res.json({ data: { mapping: mappingIn(destination, param(req, 'mappingId')) } });
  });
  router.patch('/spaces/:spaceId/destinations/:id/mappings/:mappingId', async (req, res) => {
    const destination = actionsDestinationIn(deps.spaces.require(param(req, 'spaceId')), param(req, 'id'));
    const current = mappingIn(destination, param(req, 'mappingId'));
    const patch = parseBody(patchMappingBody, req.body);
    const next: ActionMapping = { ...current, ...patch };
    check(destination.slug, next);
    if (JSON.stringify(next) !== JSON.stringify(current))
      await save(
        destination,
        (destination.mappings ?? []).map((m) => (m.id === current.id ? next : m)),
      );
    res.json({ data: { mapping: next } });
  });
  router.delete('/spaces/:spaceId/destinations/:id/mappings/:mappingId', async (req, res) => {
    const destination = actionsDestinationIn(deps.spaces.require(param(req, 'spaceId')), param(req, 'id'));
    const current = mappingIn(destination, param(req, 'mappingId'));
    await save(
      destination,
      (destination.mappings ?? []).filter((m) => m.id !== current.id),
    );
    res.json({ data: { status: 'SUCCESS' } });
  });
  return router;
}
