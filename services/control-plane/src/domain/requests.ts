// Request bodies of the configuration API (CONTRACT.md section 2), validated
// with zod. Every failure becomes a 422 naming the field and the reason.
import { z } from 'zod';
import { ApiError } from '../http/api-error';

const name = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const key = z
  .string()
  .regex(/^[a-z0-9_]+$/, 'must be snake_case: lowercase letters, digits and _')
  .max(100, 'must be at most 100 characters');
const rateLimit = z
  .object({
    requestsPerSecond: z.number().positive('must be > 0').max(100000, 'must be at most 100000'),
    burst: z.number().int().positive('must be > 0').optional(),
  })
  .strict();

export const createSpaceBody = z.object({ name }).strict();
export const createSourceBody = z.object({ name, enabled: z.boolean().default(true), rateLimit: rateLimit.optional() }).strict();

const definition = z
  .object({
    query: z.string().trim().min(1, 'must not be empty').max(20000, 'must be at most 20000 characters'),
    type: z.enum(['users', 'accounts']).default('users'),
  })
  .strict();
const options = z
  .object({
    includeHistoricalData: z.boolean().default(false),
    computeMode: z.enum(['realtime', 'batch']).default('realtime'),
  })
  .strict();

export const createComputationBody = z
  .object({
    name,
    key: key.optional(),
    description: z.string().max(2000, 'must be at most 2000 characters').default(''),
    enabled: z.boolean().default(true),
    definition,
    options: options.default({ includeHistoricalData: false, computeMode: 'realtime' }),
  })
  .strict();

export const patchComputationBody = z
  .object({
    name: name.optional(),
    description: z.string().max(2000, 'must be at most 2000 characters').optional(),
    enabled: z.boolean().optional(),
    definition: definition.optional(),
    options: z.object({ includeHistoricalData: z.boolean().optional(), computeMode: z.enum(['realtime', 'batch']).optional() }).strict().optional(),
  })
  .strict();

export const previewBody = z.object({ definition }).strict();

export const DESTINATION_TYPES = [
  'webhook',
  'list-webhook',
  'facebook-custom-audiences',
  'braze',
  'customerio',
  'hubspot',
  'intercom',
  'iterable',
  'mailchimp',
  'marketo',
  'pardot',
  'responsys',
  'sendgrid',
  'salesforce',
  'salesforce-marketing-cloud',
  'zendesk',
] as const;

export const createDestinationBody = z
  .object({
    name,
    type: z.enum(DESTINATION_TYPES),
    settings: z.record(z.unknown()).default({}),
    rateLimit: rateLimit.optional(),
    enabled: z.boolean().default(true),
  })
  .strict()
  .superRefine((body, ctx) => {
    if (body.type === 'webhook' || body.type === 'list-webhook') {
      const url = body.settings.url;
      if (typeof url !== 'string' || !/^https?:\/\/[^\s]+$/.test(url)) {
        ctx.addIssue({ code: 'custom', path: ['settings', 'url'], message: `is required for type ${body.type}: an http(s) URL` });
      }
      const headers = body.settings.headers;
      if (headers !== undefined && (typeof headers !== 'object' || headers === null || Object.values(headers).some((v) => typeof v !== 'string'))) {
        ctx.addIssue({ code: 'custom', path: ['settings', 'headers'], message: 'must be an object of string header values' });
      }
    }
  });

export const patchDestinationBody = z
  .object({ name: name.optional(), settings: z.record(z.unknown()).optional(), rateLimit: rateLimit.nullable().optional(), enabled: z.boolean().optional() })
  .strict();

export const IDENTIFIER_TYPES = ['user_id', 'anonymous_id', 'email', 'phone', 'ios.id', 'android.id', 'advertisingId', 'group_id'];

export const createConnectionBody = z
  .object({
    destinationId: z.string().min(1, 'must not be empty'),
    enabled: z.boolean().default(true),
    settings: z
      .object({
        identify: z.boolean().default(true),
        track: z.boolean().default(false),
        enteredEvent: z.string().min(1).max(200).optional(),
        exitedEvent: z.string().min(1).max(200).optional(),
        identifierTypes: z.array(z.string().min(1)).min(1, 'must name at least one identifier type').optional(),
      })
      .strict()
      .default({ identify: true, track: false }),
  })
  .strict();

/** Parses `body` or throws a 422 listing every bad field. */
export function parseBody<S extends z.ZodTypeAny>(schema: S, body: unknown): z.infer<S> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw ApiError.badRequest('the request body must be a JSON object');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  throw new ApiError(
    422,
    result.error.issues.map((i) => {
      const field = i.path.join('.');
      const message = i.code === 'unrecognized_keys' ? `unknown field(s): ${i.keys.join(', ')}` : i.message;
      return { type: 'validation', message: field ? `${field}: ${message}` : message, field: field || undefined };
    }),
  );
}
