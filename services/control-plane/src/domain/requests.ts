// Request bodies of the configuration API (CONTRACT.md section 2), validated
// with zod. Every failure becomes a 422 naming the field and the reason.
import { z } from 'zod';
import { traitActivationFields } from '@engage/delivery';
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
export const createAccessTokenBody = z.object({ name }).strict();
export const patchSpaceBody = z.object({ name: name.optional() }).strict();
export const createSourceBody = z.object({ name, enabled: z.boolean().default(true), rateLimit: rateLimit.optional() }).strict();
/** `rateLimit: null` removes the source's own limit (the ingest default applies again). */
export const patchSourceBody = z
  .object({ name: name.optional(), enabled: z.boolean().optional(), rateLimit: rateLimit.nullable().optional() })
  .strict();

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
    options: z
      .object({ includeHistoricalData: z.boolean().optional(), computeMode: z.enum(['realtime', 'batch']).optional() })
      .strict()
      .optional(),
  })
  .strict();

export const previewBody = z.object({ definition }).strict();

export const DESTINATION_TYPES = [
  'webhook',
  // Segment's open Actions definitions, by `slug` (CONTRACT.md section 8; GET /catalog/destinations lists them).
  'actions',
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

/** Destination types whose settings this API checks (the delivery library sends to them). */
const URL_TYPES = new Set<string>(['webhook', 'list-webhook']);

/** Checks `settings` for a destination type; returns [field, reason] pairs (empty when valid). */
export function destinationSettingsIssues(type: string, settings: Record<string, unknown>): Array<[string, string]> {
  const issues: Array<[string, string]> = [];
  if (URL_TYPES.has(type)) {
    const url = settings.url;
    if (url === undefined || url === null || url === '') issues.push(['settings.url', `is required for type ${type}`]);
    else if (typeof url !== 'string') issues.push(['settings.url', 'must be a string']);
    else if (!isHttpUrl(url)) issues.push(['settings.url', `must be an absolute http(s) URL, got '${url.slice(0, 200)}'`]);
    const headers = settings.headers;
    if (
      headers !== undefined &&
      (typeof headers !== 'object' ||
        headers === null ||
        Array.isArray(headers) ||
        Object.values(headers).some((v) => typeof v !== 'string'))
    ) {
      issues.push(['settings.headers', 'must be an object of string header values']);
    }
  }
  if (LIST_BATCH_LIMITS[type] !== undefined) {
    // NOTE: a batch size that is not a whole number in range would make every flush send nothing, so it is refused here.
    const max = LIST_BATCH_LIMITS[type]!;
    const size = settings.batchSize;
    if (size !== undefined && (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > max))
      issues.push(['settings.batchSize', `must be a whole number from 1 to ${max} for type ${type}, got ${JSON.stringify(size)}`]);
    const interval = settings.syncIntervalSeconds;
    if (interval !== undefined && (typeof interval !== 'number' || !(interval > 0)))
      issues.push(['settings.syncIntervalSeconds', `must be a number of seconds > 0, got ${JSON.stringify(interval)}`]);
  }
  if (type === 'facebook-custom-audiences') {
    for (const field of ['accessToken', 'adAccountId'] as const) {
      const v = settings[field];
      if (typeof v !== 'string' || v.trim() === '') issues.push([`settings.${field}`, `is required for type ${type} (a non-empty string)`]);
    }
    const base = settings.apiBaseUrl;
    if (base !== undefined && (typeof base !== 'string' || !isHttpUrl(base)))
      issues.push(['settings.apiBaseUrl', `must be an absolute http(s) URL, got ${JSON.stringify(base)}`]);
  }
  return issues;
}

/** Most identifiers per request of each list destination type (Facebook's documented 10,000; ours for list-webhook). */
const LIST_BATCH_LIMITS: Record<string, number> = { 'list-webhook': 100_000, 'facebook-custom-audiences': 10_000 };

function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

const settingsObject = z.record(z.unknown());

export const createDestinationBody = z
  .object({
    name,
    type: z.enum(DESTINATION_TYPES),
    /** type `actions`: the definition's slug; its settings are checked against the definition's schema (400). */
    slug: z.string().min(1, 'must not be empty').max(100, 'must be at most 100 characters').optional(),
    settings: settingsObject.default({}),
    rateLimit: rateLimit.optional(),
    enabled: z.boolean().default(true),
  })
  .strict()
  .superRefine((body, ctx) => {
    for (const [field, message] of destinationSettingsIssues(body.type, body.settings))
      ctx.addIssue({ code: 'custom', path: field.split('.'), message });
    if (body.type === 'actions' && body.slug === undefined)
      ctx.addIssue({ code: 'custom', path: ['slug'], message: 'is required for type actions (see GET /catalog/destinations)' });
    if (body.type !== 'actions' && body.slug !== undefined)
      ctx.addIssue({ code: 'custom', path: ['slug'], message: 'is only for type actions' });
  });

const fql = z.string().trim().min(1, 'must not be empty').max(10000, 'must be at most 10000 characters');

/** An Actions destination's mapping (CONTRACT.md section 8); actionId and FQL are checked against the definition (400). */
export const createMappingBody = z
  .object({
    name: name.optional(),
    actionId: z.string().min(1, 'must not be empty'),
    subscribe: fql,
    mapping: settingsObject.default({}),
    enabled: z.boolean().default(true),
  })
  .strict();

export const patchMappingBody = z
  .object({
    name: name.optional(),
    actionId: z.string().min(1, 'must not be empty').optional(),
    subscribe: fql.optional(),
    mapping: settingsObject.optional(),
    enabled: z.boolean().optional(),
  })
  .strict();

/** The type cannot change (a different type is a different destination); settings are checked against it after merging. */
export const patchDestinationBody = z
  .object({
    name: name.optional(),
    settings: settingsObject.optional(),
    rateLimit: rateLimit.nullable().optional(),
    enabled: z.boolean().optional(),
  })
  .strict();

/** Destinations that take lists of members: audiences only, never computed traits. */
export const LIST_DESTINATION_TYPES = new Set<string>(['list-webhook', 'facebook-custom-audiences']);

export const IDENTIFIER_TYPES = ['user_id', 'anonymous_id', 'email', 'phone', 'ios.id', 'android.id', 'advertisingId', 'group_id'];

const eventName = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const connectionSettings = z
  .object({
    identify: z.boolean().default(true),
    track: z.boolean().default(false),
    group: z.boolean().optional(),
    enteredEvent: eventName.optional(),
    exitedEvent: eventName.optional(),
    identifierTypes: z
      .array(z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'must be an identifier type such as user_id or email'))
      .min(1, 'must name at least one identifier type')
      .optional(),
    // Trait Enrichment and ID Sync: the same fields (and checks) as a journey send step's destination settings.
    ...traitActivationFields,
  })
  .strict();

export const createConnectionBody = z
  .object({
    destinationId: z.string().min(1, 'must not be empty'),
    enabled: z.boolean().default(true),
    settings: connectionSettings.default({ identify: true, track: false }),
    /** Actions audience destinations: the definition's audienceFields (TikTok's advertiserId), checked against them. */
    audienceSettings: z.record(z.unknown()).optional(),
  })
  .strict();

/** `settings` replaces the connection's settings as a whole (omitted fields take their defaults). */
export const patchConnectionBody = z.object({ enabled: z.boolean().optional(), settings: connectionSettings.optional() }).strict();

/** Parses `body` or throws a 422 listing every bad field. */
export function parseBody<S extends z.ZodTypeAny>(schema: S, body: unknown): z.infer<S> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw ApiError.badRequest('the request body must be a JSON object (Content-Type: application/json)');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  throw new ApiError(
    422,
    result.error.issues.flatMap((i) => {
      const at = i.path.join('.');
      // One item per unknown field, so a client can point at each of them.
      if (i.code === 'unrecognized_keys') {
        return i.keys.map((k) => {
          const field = at ? `${at}.${k}` : k;
          return { type: 'validation', message: `${field}: unknown field`, field };
        });
      }
      return [{ type: 'validation', message: at ? `${at}: ${i.message}` : i.message, field: at || undefined }];
    }),
  );
}
