// /spaces/{spaceId}/identity-rules: a space's identity resolution rules
// (Segment's Identity Resolution settings: priority, limits with windows,
// blocked values, custom identifiers, merge cap). Stored as the
// `identity_rules` config object with the space id as its id; the resolver
// applies them to events that arrive after the write (as Segment does).
import { Router } from 'express';
import type { ConfigStore, ConfigWriter } from '@engage/config-store';
import { DEFAULT_IDENTITY_RULES, parseIdentityRules, type IdentityRules } from '@engage/identity';
import { ApiError } from '../http/api-error';
import { param } from '../http/params';
import type { SpacesGuard } from './spaces.routes';

export function identityRulesRouter(deps: { store: ConfigStore; writer: ConfigWriter; spaces: SpacesGuard; now?: () => Date }): Router {
  const router = Router();
  const view = (spaceId: string) => {
    const stored = deps.store.get('identity_rules', spaceId) as (IdentityRules & { updatedAt?: string }) | undefined;
    return { spaceId, ...(stored ?? DEFAULT_IDENTITY_RULES), isDefault: !stored };
  };

  router.get('/spaces/:spaceId/identity-rules', (req, res) => {
    res.json({ data: { identityRules: view(deps.spaces.require(param(req, 'spaceId'))) } });
  });

  // PUT replaces the rules; fields left out take Segment's defaults.
  router.put('/spaces/:spaceId/identity-rules', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const { rules, errors } = parseIdentityRules(req.body);
    if (errors.length > 0)
      throw new ApiError(
        422,
        errors.map((e) => ({ type: 'validation', message: e.message, field: e.field })),
      );
    const updatedAt = (deps.now?.() ?? new Date()).toISOString();
    await deps.writer.write('identity_rules', spaceId, spaceId, { ...rules, updatedAt } as unknown as Record<string, unknown>);
    res.json({ data: { identityRules: view(spaceId) } });
  });
  return router;
}
