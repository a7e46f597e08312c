// POST /spaces/{spaceId}/destinations/{id}/test: the event tester (CONTRACT.md section 9).
import { Router } from 'express';
import { z } from 'zod';
import type { ConfigStore } from '@engage/config-store';
import type { DestinationHostGuard } from '../destination-host.guard';
import { isListDestination, untestable, type EventTester } from '../event-tester';
import { ApiError } from '../http/api-error';
import { param } from '../http/params';
import type { SpacesGuard } from './spaces.routes';

export const testEventBody = z
  .object({
    // Required for event destinations (checked below); list destinations send an add whatever it says.
    type: z.enum(['identify', 'track']).optional(),
    userId: z.string().min(1).max(512).optional(),
    traits: z.record(z.unknown()).optional(),
    properties: z.record(z.unknown()).optional(),
    computationKey: z
      .string()
      .regex(/^[a-z0-9_]{1,200}$/, 'must be lowercase letters, digits and underscores')
      .optional(),
  })
  .strict();

export function destinationTestRouter(deps: {
  store: ConfigStore;
  spaces: SpacesGuard;
  hosts: DestinationHostGuard;
  tester: EventTester;
}): Router {
  const router = Router();
  router.post('/spaces/:spaceId/destinations/:id/test', async (req, res) => {
    const spaceId = deps.spaces.require(param(req, 'spaceId'));
    const id = param(req, 'id');
    const destination = deps.store.get('destination', id);
    if (!destination || destination.spaceId !== spaceId) throw ApiError.notFound('destination', id);
    if (req.body === null || typeof req.body !== 'object' || Array.isArray(req.body))
      throw ApiError.badRequest('the request body must be a JSON object (Content-Type: application/json)');
    const parsed = testEventBody.safeParse(req.body);
    if (!parsed.success) {
      throw new ApiError(
        400,
        parsed.error.issues.flatMap((i) => {
          const at = i.path.join('.');
          const fields = i.code === 'unrecognized_keys' ? i.keys.map((k) => (at ? `${at}.${k}` : k)) : [at];
          const message = i.code === 'unrecognized_keys' ? 'unknown field' : i.message;
          return fields.map((field) => ({ type: 'validation', message: `${field}: ${message}`, field }));
        }),
      );
    }
    if (!parsed.data.type && !isListDestination(destination))
      throw new ApiError(400, [{ type: 'validation', message: 'type: Required (identify or track)', field: 'type' }]);
    const cannot = untestable(destination);
    if (cannot) throw ApiError.validation(cannot);
    // The host guard applies at send time too: the allow list may have changed since the destination was saved.
    const refused = await deps.hosts.issues(destination.settings);
    if (refused.length > 0)
      throw new ApiError(
        422,
        refused.map(([field, reason]) => ({ type: 'refused-host', message: `${field}: ${reason}`, field })),
      );
    res.json({ data: await deps.tester.test(destination, parsed.data) });
  });
  return router;
}
