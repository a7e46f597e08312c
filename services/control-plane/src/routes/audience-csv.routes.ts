// GET /spaces/{spaceId}/audiences/{id}/csv?format=unformatted|formatted|single_column&idType=email&hashed=true
// Streamed; see read/audience-export.ts for the snapshot and paging.
import { Router } from 'express';
import type { Logger } from '@engage/logging';
import { CSV_FORMATS, type CsvFormat } from '@engage/profile-store';
import type { ComputationsService } from '../computations.service';
import { ApiError } from '../http/api-error';
import { param } from '../http/params';
import type { AudienceExport } from '../read/audience-export';
import type { SpacesGuard } from './spaces.routes';

const ID_TYPE = /^[a-z][a-z0-9_.-]{0,63}$/i;

function query(req: { query: unknown }, name: string): string | undefined {
  const v = (req.query as Record<string, unknown>)[name];
  return typeof v === 'string' ? v : undefined;
}

export function parseCsvOptions(req: { query: unknown }): { format: CsvFormat; idType: string; hashed: boolean } {
  const format = (query(req, 'format') ?? 'unformatted') as CsvFormat;
  if (!CSV_FORMATS.includes(format))
    throw ApiError.badRequest(`format must be one of ${CSV_FORMATS.join(', ')}; got '${format}'`, 'format');
  const idType = query(req, 'idType') ?? 'email';
  if (!ID_TYPE.test(idType))
    throw ApiError.badRequest(`idType must be an external id type such as email or user_id; got '${idType}'`, 'idType');
  const hashedText = query(req, 'hashed') ?? 'true';
  if (hashedText !== 'true' && hashedText !== 'false')
    throw ApiError.badRequest(`hashed must be true or false; got '${hashedText}'`, 'hashed');
  return { format, idType, hashed: hashedText === 'true' };
}

export function audienceCsvRouter(deps: {
  computations: ComputationsService;
  spaces: SpacesGuard;
  exporter: AudienceExport;
  log: Logger;
}): Router {
  const router = Router();
  router.get('/spaces/:spaceId/audiences/:id/csv', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const audience = deps.computations.get('audience', spaceId, param(req, 'id'));
    const options = parseCsvOptions(req);
    res.status(200);
    res.setHeader('content-type', 'text/csv; charset=utf-8');
    const suffix = options.format === 'single_column' ? `-${options.idType}${options.hashed ? '-sha256' : ''}` : `-${options.format}`;
    res.setHeader('content-disposition', `attachment; filename="${audience.key}${suffix}.csv"`);
    try {
      const { profiles } = await deps.exporter.stream({ spaceId, computationId: audience.id, ...options }, res);
      deps.log.info({ audienceId: audience.id, format: options.format, profiles }, 'csv_exported');
      res.end();
    } catch (err) {
      // Headers are gone: the only honest signal left is a cut connection.
      deps.log.warn({ audienceId: audience.id, err }, 'csv_export_failed');
      res.destroy(err as Error);
    }
  });
  return router;
}
