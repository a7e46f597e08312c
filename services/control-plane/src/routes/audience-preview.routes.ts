// POST /spaces/{spaceId}/audiences/preview {definition} -> {data:{size, sample}}
import { Router } from 'express';
import { parseQuery } from '@engage/engine';
import type { ConfigStore } from '@engage/config-store';
import type { ComputationsService } from '../computations.service';
import { parseBody, previewBody } from '../domain/requests';
import { ApiError } from '../http/api-error';
import { param } from '../http/params';
import type { AudiencePreview } from '../read/audience-preview';
import type { SpacesGuard } from './spaces.routes';

export function audiencePreviewRouter(deps: {
  store: ConfigStore;
  computations: ComputationsService;
  spaces: SpacesGuard;
  preview: AudiencePreview;
}): Router {
  const router = Router();
  router.post('/spaces/:spaceId/audiences/preview', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const { definition } = parseBody(previewBody, req.body);
    // Same checks as a create: a 422 with line and column for an invalid query.
    deps.computations.check('audience', definition.query, definition.type);
    if (definition.type === 'accounts') {
      throw ApiError.validation(
        'preview of account audiences is not supported yet: create the audience and read its size',
        'definition.type',
      );
    }
    const ast = parseQuery(definition.query, { type: definition.type });
    const keysById = new Map(
      [...deps.store.list('audience', spaceId), ...deps.store.list('computed_trait', spaceId)].map((c) => [c.id, c.key]),
    );
    const started = Date.now();
    const result = await deps.preview.preview(spaceId, ast, keysById);
    res.json({ data: { size: result.size, sample: result.sample, scanned: result.scanned, tookMs: Date.now() - started } });
  });
  return router;
}
