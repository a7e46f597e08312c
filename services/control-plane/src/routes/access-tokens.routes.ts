// /spaces/{spaceId}/access-tokens: the Profile API's access tokens of a space
// (CONTRACT.md section 7). Behind the admin bearer token like the rest of the
// configuration API; the token itself is in the creation's answer only.
import { Router, type Request } from 'express';
import type { AccessTokenConfig, ConfigStore, ConfigWriter } from '@engage/config-store';
import { hashAccessToken, tokenView } from '../domain/access-tokens';
import { newAccessToken, newId } from '../domain/ids';
import { createAccessTokenBody, parseBody } from '../domain/requests';
import { ApiError } from '../http/api-error';
import { paginate } from '../http/pagination';
import { param } from '../http/params';
import type { SpacesGuard } from './spaces.routes';

export function accessTokensRouter(deps: { store: ConfigStore; writer: ConfigWriter; spaces: SpacesGuard; now?: () => Date }): Router {
  const router = Router();
  const now = () => (deps.now?.() ?? new Date()).toISOString();
  const spaceOf = (req: Request) => deps.store.get('space', deps.spaces.require(param(req, 'spaceId')))!;

  router.post('/spaces/:spaceId/access-tokens', async (req, res) => {
    const space = spaceOf(req);
    const body = parseBody(createAccessTokenBody, req.body);
    const token = newAccessToken();
    const at = now();
    const record: AccessTokenConfig = { id: newId('tok'), name: body.name, tokenHash: hashAccessToken(token), createdAt: at };
    // Serial writes (http/app.ts) make this read-modify-write of the space safe within the one writer replica.
    await deps.writer.write('space', space.id, space.id, {
      ...space,
      accessTokens: [...(space.accessTokens ?? []), record],
      updatedAt: at,
    });
    res.status(201).json({ data: { accessToken: { ...tokenView(record), token } } });
  });
  router.get('/spaces/:spaceId/access-tokens', (req, res) => {
    const page = paginate((spaceOf(req).accessTokens ?? []).map(tokenView), req.query);
    res.json({ data: { accessTokens: page.items, pagination: page.pagination } });
  });
  router.delete('/spaces/:spaceId/access-tokens/:id', async (req, res) => {
    const space = spaceOf(req);
    const id = param(req, 'id');
    const tokens = space.accessTokens ?? [];
    if (!tokens.some((t) => t.id === id)) throw ApiError.notFound('access token', id);
    // The Profile API checks the space record on every request: the token stops working once this write is applied.
    await deps.writer.write('space', space.id, space.id, { ...space, accessTokens: tokens.filter((t) => t.id !== id), updatedAt: now() });
    res.json({ data: { status: 'SUCCESS' } });
  });
  return router;
}
