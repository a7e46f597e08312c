// GET /openapi.json: the control plane's API reference (OpenAPI 3.1), built
// from the zod schemas the routes validate request bodies with
// (domain/requests.ts), so a documented body cannot drift from the checked
// one. Response shapes are written here as zod schemas too.
//
// Every route an express router registers must be documented here:
// openapi.test.ts walks the app's routers and fails on a route missing from
// this document, and openapi.int.test.ts calls every documented route on a
// running control plane. To add routes: add a `section` below (or extend one).
import { testEventBody } from '../routes/destination-test.routes';
import { historyQuery } from '../routes/history.routes';
import { journeyEntrySchema, journeyInputSchema, journeyPatchSchema, journeyStepSchema } from '@engage/journeys';
import { traitActivationFields } from '@engage/delivery';
import { Router } from 'express';
import { OpenAPIRegistry, OpenApiGeneratorV31, extendZodWithOpenApi, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z, type ZodTypeAny } from 'zod';
import {
  createAccessTokenBody,
  createComputationBody,
  createConnectionBody,
  createDestinationBody,
  createMappingBody,
  createSourceBody,
  createSpaceBody,
  patchComputationBody,
  patchConnectionBody,
  patchDestinationBody,
  patchMappingBody,
  patchSourceBody,
  patchSpaceBody,
  previewBody,
} from '../domain/requests';

type Method = RouteConfig['method'];

// ---- shared shapes -------------------------------------------------------

// Built after extendZodWithOpenApi (openApiDocument): `.openapi(name)` makes a
// named component, so generated clients get readable types (components.schemas.Computation).
function shapes() {
  const apiErrors = z
    .object({
      errors: z.array(
        z.object({
          type: z
            .string()
            .describe('validation, invalid-query, not-found, conflict, unauthorized, bad-request, too-large, refused-host, internal'),
          message: z.string(),
          field: z.string().optional().describe('The request field the error concerns, as a dotted path (definition.query)'),
        }),
      ),
    })
    .describe("Segment Public API's error shape")
    .openapi('Errors');
  const profileApiError = z
    .object({ error: z.object({ code: z.string(), message: z.string() }) })
    .describe("Segment Profile API's error shape")
    .openapi('ProfileApiError');
  const pagination = z
    .object({
      current: z.string(),
      next: z.string().nullable().describe('Pass as pagination.cursor for the next page; null on the last'),
      totalEntries: z.number().int(),
    })
    .openapi('Pagination');
  const success = z.object({ data: z.object({ status: z.literal('SUCCESS') }) });
  const timestamps = { createdAt: z.string().datetime(), updatedAt: z.string().datetime() };
  const rateLimit = z.object({ requestsPerSecond: z.number(), burst: z.number().int().optional() });

  const space = z.object({ id: z.string().describe('spa_...'), name: z.string(), ...timestamps }).openapi('Space');
  const source = z
    .object({
      id: z.string().describe('src_...'),
      spaceId: z.string(),
      name: z.string(),
      writeKey: z.string().describe('The Segment write key: Basic auth username (or body writeKey) on the ingest'),
      enabled: z.boolean(),
      rateLimit: rateLimit.optional(),
      ...timestamps,
    })
    .openapi('Source');
  const computation = z
    .object({
      id: z.string().describe('aud_... or tra_...'),
      spaceId: z.string(),
      name: z.string(),
      key: z.string(),
      description: z.string(),
      enabled: z.boolean(),
      definition: z.object({ query: z.string(), type: z.enum(['users', 'accounts']) }),
      options: z.object({ includeHistoricalData: z.boolean(), computeMode: z.enum(['realtime', 'batch']) }),
      definitionVersion: z.number().int(),
      definitionUpdatedAt: z.string().datetime(),
      journeyId: z
        .string()
        .optional()
        .describe("Set on a journey's audiences (its entry and split queries): not listed, not editable through this API (409)"),
      ...timestamps,
      status: z.enum(['Preparing', 'Computing', 'Live', 'Not Computing', 'Disabled', 'Failed']),
      size: z.number().int(),
      progress: z.number().min(0).max(1).nullable().describe('0..1 while a backfill runs, else null'),
    })
    .openapi('Computation');
  const mapping = z
    .object({
      id: z.string().describe('map_...'),
      name: z.string().optional(),
      actionId: z.string().describe("An action of the destination's definition (GET /catalog/destinations)"),
      subscribe: z.string().describe('Segment\'s FQL, e.g. type = "identify"'),
      mapping: z.record(z.unknown()).describe('The action\'s fields: values or directives such as {"@path": "$.traits.email"}'),
      enabled: z.boolean(),
    })
    .openapi('Mapping');
  const destination = z
    .object({
      id: z.string().describe('dst_...'),
      spaceId: z.string(),
      name: z.string(),
      type: z.string(),
      slug: z.string().optional().describe("type actions: the definition's slug"),
      settings: z.record(z.unknown()).describe('Secret settings are shown as "********"; send the mask back to keep them'),
      secretFields: z.array(z.string()).optional().describe("type actions: settings secret by the definition's schema"),
      mappings: z.array(mapping).optional().describe('type actions: which action each call runs'),
      rateLimit: rateLimit.optional(),
      enabled: z.boolean(),
      ...timestamps,
    })
    .openapi('Destination');
  const destinationWithStatus = destination
    .extend({
      status: z.enum(['Enabled', 'Disabled']),
      deliveryStatus: z.object({
        sent: z.number().int(),
        retried: z.number().int(),
        failed: z.number().int(),
        throttled: z.number().int(),
        deadLettered: z.number().int(),
        lastSentAt: z.string().datetime().nullable(),
        lastError: z.string().nullable().describe('The latest failure or retry reason; null once a call was sent after it'),
        lastErrorAt: z.string().datetime().nullable(),
        credentialsRefused: z
          .object({ at: z.string().datetime().nullable(), error: z.string().nullable() })
          .nullable()
          .describe('The vendor refused the credentials (401/403) and nothing was sent since'),
      }),
    })
    .openapi('DestinationWithStatus');
  const catalogDestination = z
    .object({
      slug: z.string(),
      name: z.string(),
      description: z.string().optional(),
      category: z.enum(['event', 'list']),
      settings: z.record(z.unknown()).describe('JSON schema of the settings; secret fields have writeOnly and x-secret'),
      actions: z.array(
        z.object({
          id: z.string(),
          title: z.string(),
          description: z.string().optional(),
          fields: z.record(z.unknown()),
          defaultSubscription: z.string().nullable(),
          batching: z.boolean(),
        }),
      ),
      presets: z.array(z.object({ name: z.string(), actionId: z.string(), subscribe: z.string(), mapping: z.record(z.unknown()) })),
      rateLimit: z
        .object({
          requestsPerSecond: z.number(),
          source: z
            .enum(['segment', 'engage'])
            .describe("segment: Segment's documented rate limit for the vendor; engage: this system's default where none is documented"),
          note: z.string(),
        })
        .nullable()
        .describe('The default rate of a destination of this slug (its own rateLimit wins); null: none'),
    })
    .openapi('CatalogDestination');
  const connection = z
    .object({
      id: z.string().describe('con_...'),
      spaceId: z.string(),
      computationId: z.string(),
      computationClass: z.enum(['audience', 'trait']),
      destinationId: z.string(),
      settings: z.object({
        identify: z.boolean(),
        track: z.boolean(),
        group: z.boolean().optional(),
        enteredEvent: z.string().optional(),
        exitedEvent: z.string().optional(),
        identifierTypes: z.array(z.string()).optional(),
        ...traitActivationFields,
      }),
      enabled: z.boolean(),
      ...timestamps,
      status: z.enum(['Connected', 'Disconnected', 'Disabled']),
      syncStatus: z.object({
        state: z.string(),
        lastSyncAt: z.string().datetime().nullable(),
        matched: z.number().int(),
        sent: z.number().int(),
        failed: z.number().int(),
        lastError: z.string().nullable().describe("The latest sync's error; null once a sync finished without one"),
      }),
      externalAudienceId: z
        .string()
        .optional()
        .describe("Actions audience destinations: the vendor's id of the audience, created when the connection was made"),
      audienceSettings: z
        .record(z.unknown())
        .optional()
        .describe("Actions audience destinations: the audience's settings on the vendor's side (the definition's audienceFields)"),
      matchingMappings: z
        .object({ matching: z.number().int(), enabled: z.number().int(), disabled: z.number().int() })
        .nullable()
        .describe("Actions destinations: the mappings the connection's calls match; null otherwise (not applicable)"),
    })
    .openapi('Connection');
  const accessToken = z
    .object({ id: z.string().describe('tok_...'), name: z.string(), createdAt: z.string().datetime() })
    .openapi('AccessToken');
  const identifierLimit = z.object({
    limit: z.number().int().positive(),
    window: z.enum(['ever', 'daily', 'weekly', 'monthly', 'annually']),
  });
  // NOTE: identity rules are checked by @engage/identity's parseIdentityRules, not by zod; this mirrors its IdentityRules.
  const identityRulesBody = z
    .object({
      priority: z.array(z.string()).optional().describe('Identifier types from highest to lowest priority'),
      limits: z.record(identifierLimit).optional(),
      defaultLimit: identifierLimit.optional(),
      blockedValues: z.array(z.string()).optional(),
      blockedPatterns: z.array(z.string()).optional().describe('Regular expressions, case-insensitive'),
      maxMergesPerProfile: z.number().int().positive().optional(),
      customIdentifiers: z.array(z.object({ type: z.string(), key: z.string() })).optional(),
    })
    .openapi('IdentityRulesBody');
  const identityRules = identityRulesBody
    .required()
    .extend({
      spaceId: z.string(),
      isDefault: z.boolean().describe('True while the space has no rules of its own (Segment defaults apply)'),
      updatedAt: z.string().datetime().optional(),
    })
    .openapi('IdentityRules');
  const externalId = z.object({ type: z.string(), id: z.string() });
  const previewResult = z
    .object({
      size: z.number().int(),
      sample: z.array(
        z.object({
          id: z.string(),
          user_id: z.string().nullable(),
          anonymous_id: z.string().nullable(),
          external_ids: z.array(externalId),
          traits: z.record(z.unknown()),
        }),
      ),
      scanned: z.number().int().describe('Profiles of the space read'),
      tookMs: z.number(),
    })
    .openapi('PreviewResult');
  const queryCheck = z
    .object({
      valid: z.boolean(),
      normalized: z.string().nullable(),
      references: z.array(z.string()).describe('Keys of audiences and computed traits the query reads'),
      errors: z.array(z.object({ line: z.number().int(), column: z.number().int(), message: z.string(), expected: z.string().nullable() })),
    })
    .openapi('QueryCheck');
  const cursor = z.object({ url: z.string(), has_more: z.boolean(), next: z.string(), limit: z.number().int() }).openapi('ProfileCursor');
  const profileExternalId = z
    .object({
      source_id: z.string().nullable(),
      collection: z.string(),
      id: z.string(),
      type: z.string(),
      created_at: z.string().nullable(),
      encoding: z.string(),
    })
    .openapi('ProfileExternalId');
  return {
    apiErrors,
    profileApiError,
    pagination,
    success,
    timestamps,
    rateLimit,
    space,
    source,
    computation,
    destination,
    destinationWithStatus,
    mapping,
    catalogDestination,
    connection,
    accessToken,
    identifierLimit,
    identityRulesBody,
    identityRules,
    externalId,
    previewResult,
    queryCheck,
    cursor,
    profileExternalId,
  };
}
type Shapes = ReturnType<typeof shapes>;

// ---- helpers -------------------------------------------------------------

const json = (schema: ZodTypeAny) => ({ content: { 'application/json': { schema } } });
const data = (shape: Record<string, ZodTypeAny>) => z.object({ data: z.object(shape) });
const id = (...names: string[]) => z.object(Object.fromEntries(names.map((n) => [n, z.string()])));
const pageQuery = z.object({
  'pagination.count': z.string().optional().describe('1-200, default 50'),
  'pagination.cursor': z.string().optional().describe('pagination.next of the previous page'),
});

/** A route of the configuration API (bearer auth, Public API errors). */
interface ApiRoute {
  method: Method;
  path: string;
  summary: string;
  params?: z.AnyZodObject;
  query?: z.AnyZodObject;
  body?: ZodTypeAny;
  status?: number;
  response: ZodTypeAny | { description: string; content: Record<string, { schema: ZodTypeAny }> };
  errors?: number[];
}

class Doc {
  readonly registry = new OpenAPIRegistry();
  readonly s: Shapes = shapes();
  constructor() {
    this.registry.registerComponent('securitySchemes', 'adminToken', {
      type: 'http',
      scheme: 'bearer',
      description: 'CONTROL_PLANE_TOKEN',
    });
    this.registry.registerComponent('securitySchemes', 'profileToken', {
      type: 'http',
      scheme: 'basic',
      description: "A space's access token (or the admin token) as the username, empty password",
    });
  }

  /** A page of a list: `{data:{<name>:[...], pagination}}`. */
  page(name: string, item: ZodTypeAny) {
    return data({ [name]: z.array(item), pagination: this.s.pagination });
  }

  api(tag: string, r: ApiRoute) {
    const { apiErrors } = this.s;
    const errors: Record<string, { description: string } & ReturnType<typeof json>> = {
      '401': { description: 'Missing or wrong bearer token', ...json(apiErrors) },
    };
    for (const status of r.errors ?? []) errors[String(status)] = { description: ERROR_TEXT[status] ?? 'Error', ...json(apiErrors) };
    if (r.body) errors['400'] ??= { description: ERROR_TEXT[400]!, ...json(apiErrors) };
    if (r.body) errors['422'] ??= { description: ERROR_TEXT[422]!, ...json(apiErrors) };
    if (r.params?.shape.spaceId) errors['404'] ??= { description: ERROR_TEXT[404]!, ...json(apiErrors) };
    const response = r.response instanceof z.ZodType ? { description: 'OK', ...json(r.response) } : r.response;
    this.registry.registerPath({
      method: r.method,
      path: r.path,
      tags: [tag],
      summary: r.summary,
      operationId: operationId(r.method, r.path),
      security: [{ adminToken: [] }],
      request: {
        params: r.params,
        query: r.query,
        body: r.body ? { required: true, ...json(r.body) } : undefined,
      },
      responses: { [String(r.status ?? 200)]: response, ...errors },
    });
  }

  raw(route: Omit<RouteConfig, 'operationId'>) {
    this.registry.registerPath({ ...route, operationId: operationId(route.method, route.path) });
  }
}

const ERROR_TEXT: Record<number, string> = {
  400: 'Malformed request: not a JSON object, invalid JSON, a bad query parameter',
  404: 'The space or object does not exist',
  409: 'Conflict: a key already used in the space, an existing connection, a non-empty space',
  413: 'Body larger than CONTROL_PLANE_MAX_BODY_BYTES',
  422: 'Validation failed: every bad field is listed with `field`',
  502: "The destination's vendor refused a call made on its behalf (creating an audience)",
};

/** getSpacesBySpaceIdAudiences: stable, readable and unique per method and path. */
function operationId(method: string, path: string): string {
  const words = path
    .split('/')
    .filter(Boolean)
    .map((seg) => (seg.startsWith('{') ? `by-${seg.slice(1, -1)}` : seg))
    .flatMap((seg) => seg.split(/[-_.]/))
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1));
  return method + words.join('');
}

// ---- sections ------------------------------------------------------------

function ops(doc: Doc) {
  const { apiErrors } = doc.s;
  const health = z.object({
    status: z.enum(['ok', 'unavailable']),
    checks: z.array(z.object({ name: z.string(), ok: z.boolean() }).passthrough()),
  });
  for (const [path, summary] of [
    ['/healthz', 'Liveness: fails only when the process is stuck'],
    ['/readyz', 'Readiness: Kafka, the schema registry, Redis and the config store answer'],
  ] as const) {
    doc.raw({
      method: 'get',
      path,
      tags: ['Operations'],
      summary,
      responses: { '200': { description: 'OK', ...json(health) }, '503': { description: 'Not live / not ready', ...json(health) } },
    });
  }
  doc.raw({
    method: 'get',
    path: '/metrics',
    tags: ['Operations'],
    summary: 'Prometheus metrics',
    responses: { '200': { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } } },
  });
  doc.raw({
    method: 'get',
    path: '/openapi.json',
    tags: ['Operations'],
    summary: 'This document',
    responses: { '200': { description: 'OpenAPI 3.1', ...json(z.record(z.unknown())) } },
  });
  doc.raw({
    method: 'get',
    path: '/console/{page}',
    tags: ['Operations'],
    summary: 'The operator console (a single-page app: every page answers its index.html)',
    request: { params: z.object({ page: z.string().describe('Any console page, e.g. spaces/spa_1/audiences') }) },
    responses: {
      '200': { description: 'The console', content: { 'text/html': { schema: z.string() } } },
      '404': { description: 'The console is not built', ...json(apiErrors) },
    },
  });
}

function spaces(doc: Doc) {
  const { space, source, success } = doc.s;
  const t = 'Spaces and sources';
  const one = data({ space });
  doc.api(t, { method: 'post', path: '/spaces', summary: 'Create a space', body: createSpaceBody, status: 201, response: one });
  doc.api(t, {
    method: 'get',
    path: '/spaces',
    summary: 'List spaces',
    query: pageQuery,
    response: doc.page('spaces', space),
    errors: [400],
  });
  doc.api(t, { method: 'get', path: '/spaces/{spaceId}', summary: 'Get a space', params: id('spaceId'), response: one });
  doc.api(t, {
    method: 'patch',
    path: '/spaces/{spaceId}',
    summary: 'Rename a space',
    params: id('spaceId'),
    body: patchSpaceBody,
    response: one,
  });
  doc.api(t, {
    method: 'delete',
    path: '/spaces/{spaceId}',
    summary: 'Delete an empty space (409 while it holds sources, computations, destinations or connections)',
    params: id('spaceId'),
    response: success,
    errors: [409],
  });
  const src = data({ source });
  doc.api(t, {
    method: 'post',
    path: '/spaces/{spaceId}/sources',
    summary: 'Create a source and its write key',
    params: id('spaceId'),
    body: createSourceBody,
    status: 201,
    response: src,
  });
  doc.api(t, {
    method: 'get',
    path: '/spaces/{spaceId}/sources',
    summary: 'List sources',
    params: id('spaceId'),
    query: pageQuery,
    response: doc.page('sources', source),
    errors: [400],
  });
  doc.api(t, {
    method: 'get',
    path: '/spaces/{spaceId}/sources/{id}',
    summary: 'Get a source',
    params: id('spaceId', 'id'),
    response: src,
  });
  doc.api(t, {
    method: 'patch',
    path: '/spaces/{spaceId}/sources/{id}',
    summary: 'Change a source (rateLimit: null removes its own limit)',
    params: id('spaceId', 'id'),
    body: patchSourceBody,
    response: src,
  });
  doc.api(t, {
    method: 'delete',
    path: '/spaces/{spaceId}/sources/{id}',
    summary: 'Delete a source: its write key stops working',
    params: id('spaceId', 'id'),
    response: success,
  });
}

function computations(doc: Doc) {
  const { computation, connection, success, queryCheck, previewResult } = doc.s;
  for (const [path, one, many, tag, label] of [
    ['audiences', 'audience', 'audiences', 'Audiences', 'audience'],
    ['computed-traits', 'computedTrait', 'computedTraits', 'Computed traits', 'computed trait'],
  ] as const) {
    const base = `/spaces/{spaceId}/${path}`;
    const single = data({ [one]: computation });
    doc.api(tag, {
      method: 'post',
      path: base,
      summary: `Create a ${label} (key defaults to the snake_cased name; 409 for a key used before; 422 with line:column for an invalid query)`,
      params: id('spaceId'),
      body: createComputationBody,
      status: 201,
      response: single,
      errors: [409],
    });
    doc.api(tag, {
      method: 'get',
      path: base,
      summary: `List ${label}s with status and size`,
      params: id('spaceId'),
      query: pageQuery,
      response: doc.page(many, computation),
      errors: [400],
    });
    doc.api(tag, {
      method: 'post',
      path: `${base}/check`,
      summary: `Check a ${label} query as an editor types it: 200 with valid and errors (line, column) either way; reads no profile`,
      params: id('spaceId'),
      body: previewBody,
      response: z.object({ data: queryCheck }),
    });
    doc.api(tag, { method: 'get', path: `${base}/{id}`, summary: `Get a ${label}`, params: id('spaceId', 'id'), response: single });
    doc.api(tag, {
      method: 'patch',
      path: `${base}/{id}`,
      summary: `Change a ${label} (a definition edit re-backfills; computeMode and definition.type cannot change: 422)`,
      params: id('spaceId', 'id'),
      body: patchComputationBody,
      response: single,
    });
    doc.api(tag, {
      method: 'delete',
      path: `${base}/{id}`,
      summary: `Delete a ${label} and its connections (409 while another computation reads it)`,
      params: id('spaceId', 'id'),
      response: data({ status: z.literal('SUCCESS'), [one]: z.object({ id: z.string(), key: z.string() }) }),
      errors: [409],
    });
    const conn = data({ connection });
    doc.api(tag, {
      method: 'post',
      path: `${base}/{id}/destinations`,
      summary: `Connect the ${label} to a destination (an Actions audience destination creates the audience on the vendor's side first: 502 when it refuses)`,
      params: id('spaceId', 'id'),
      body: createConnectionBody,
      status: 201,
      response: conn,
      errors: [409, 502],
    });
    doc.api(tag, {
      method: 'get',
      path: `${base}/{id}/destinations`,
      summary: `List the ${label}'s connections with status (Connected / Disconnected / Disabled) and sync status`,
      params: id('spaceId', 'id'),
      query: pageQuery,
      response: doc.page('connections', connection),
      errors: [400],
    });
    const connParams = id('spaceId', 'id', 'connectionId');
    doc.api(tag, {
      method: 'get',
      path: `${base}/{id}/destinations/{connectionId}`,
      summary: 'Get a connection (by its id or its destination id)',
      params: connParams,
      response: conn,
    });
    doc.api(tag, {
      method: 'patch',
      path: `${base}/{id}/destinations/{connectionId}`,
      summary: 'Change a connection (settings replace the stored ones as a whole)',
      params: connParams,
      body: patchConnectionBody,
      response: conn,
    });
    doc.api(tag, {
      method: 'delete',
      path: `${base}/{id}/destinations/{connectionId}`,
      summary: 'Disconnect',
      params: connParams,
      response: success,
    });
  }
  doc.api('Audiences', {
    method: 'post',
    path: '/spaces/{spaceId}/audiences/preview',
    summary: "Preview a definition over the space's profiles: size and a sample (users only)",
    params: id('spaceId'),
    body: previewBody,
    response: z.object({ data: previewResult }),
  });
  doc.api('Audiences', {
    method: 'get',
    path: '/spaces/{spaceId}/audiences/{id}/csv',
    summary: "Download the audience's members as CSV (streamed), in Segment's three formats",
    params: id('spaceId', 'id'),
    query: z.object({
      format: z.enum(['unformatted', 'formatted', 'single_column']).optional().describe('Default unformatted'),
      idType: z.string().optional().describe('single_column: the external id type (default email)'),
      hashed: z.enum(['true', 'false']).optional().describe('single_column: SHA-256 the ids (default true)'),
    }),
    response: { description: 'CSV', content: { 'text/csv': { schema: z.string() } } },
    errors: [400],
  });
  doc.api('Audiences', {
    method: 'get',
    path: '/spaces/{spaceId}/audiences/{id}/size-history',
    summary:
      "The audience's size over time: one point per sampling interval (SIZE_HISTORY_INTERVAL_MS of the batch scheduler, 1 min by default) for ranges within the last 2 days, one per hour (the last sample of the hour) up to 90 days back. Default: the last 24 hours",
    params: id('spaceId', 'id'),
    query: historyQuery.strip(),
    response: data({
      audienceId: z.string(),
      since: z.string().datetime(),
      until: z.string().datetime(),
      resolution: z.enum(['recent', 'hour']).describe('recent: a point per sampling interval; hour: a point per hour'),
      points: z
        .array(z.object({ at: z.string().datetime().describe("Start of the point's interval"), size: z.number().int() }))
        .describe('In time order; an interval without a sample (scheduler down, audience disabled) has no point'),
    }).openapi('SizeHistory'),
    errors: [400],
  });
  doc.api('Computed traits', {
    method: 'get',
    path: '/spaces/{spaceId}/computed-traits/{id}/size-history',
    summary:
      "The computed trait's size over time: the profiles with a value, sampled and kept as an audience's size (SIZE_HISTORY_INTERVAL_MS points within the last 2 days, hourly up to 90 days back). Default: the last 24 hours",
    params: id('spaceId', 'id'),
    query: historyQuery.strip(),
    response: data({
      computedTraitId: z.string(),
      since: z.string().datetime(),
      until: z.string().datetime(),
      resolution: z.enum(['recent', 'hour']),
      points: z.array(z.object({ at: z.string().datetime(), size: z.number().int() })).describe('In time order'),
    }).openapi('TraitSizeHistory'),
    errors: [400],
  });
}

function destinations(doc: Doc) {
  const { destination, destinationWithStatus, success } = doc.s;
  const t = 'Destinations';
  const one = data({ destination });
  doc.api(t, {
    method: 'post',
    path: '/spaces/{spaceId}/destinations',
    summary:
      'Create a destination (422 for a host on a loopback, private or link-local address not allowed by DESTINATION_ALLOWED_HOSTS; type actions: 400 naming the slug or setting the definition refuses)',
    params: id('spaceId'),
    body: createDestinationBody,
    status: 201,
    response: one,
  });
  doc.api(t, {
    method: 'get',
    path: '/spaces/{spaceId}/destinations',
    summary: 'List destinations with delivery status',
    params: id('spaceId'),
    query: pageQuery,
    response: doc.page('destinations', destinationWithStatus),
    errors: [400],
  });
  doc.api(t, {
    method: 'get',
    path: '/spaces/{spaceId}/destinations/{id}',
    summary: 'Get a destination with delivery status',
    params: id('spaceId', 'id'),
    response: data({ destination: destinationWithStatus }),
  });
  doc.api(t, {
    method: 'patch',
    path: '/spaces/{spaceId}/destinations/{id}',
    summary: 'Change a destination (settings: "********" keeps a stored secret; the type cannot change)',
    params: id('spaceId', 'id'),
    body: patchDestinationBody,
    response: one,
  });
  doc.api(t, {
    method: 'delete',
    path: '/spaces/{spaceId}/destinations/{id}',
    summary: 'Delete a destination',
    params: id('spaceId', 'id'),
    response: success,
  });
  doc.api(t, {
    method: 'post',
    path: '/spaces/{spaceId}/destinations/{id}/sync',
    summary: 'Sync now: a list destination flushes its pending adds and removes without waiting for its cadence',
    params: id('spaceId', 'id'),
    status: 202,
    response: data({ status: z.literal('SYNC_REQUESTED'), destinationId: z.string() }),
  });
  doc.api(t, {
    method: 'get',
    path: '/spaces/{spaceId}/destinations/{id}/delivery-history',
    summary:
      "The destination's deliveries over time: calls sent, failed, throttled (429 or rate-limited, retried) and dead-lettered per minute for ranges within the last 2 days, per hour up to 90 days back; every bucket of the range, zeros included. Default: the last 24 hours",
    params: id('spaceId', 'id'),
    query: historyQuery.strip(),
    response: data({
      destinationId: z.string(),
      since: z.string().datetime(),
      until: z.string().datetime(),
      resolution: z.enum(['recent', 'hour']),
      bucketMs: z.number().int().describe('Width of a bucket: 60000 (recent) or 3600000 (hour)'),
      buckets: z.array(
        z.object({
          at: z.string().datetime().describe('Start of the bucket'),
          sent: z.number().int(),
          failed: z.number().int(),
          throttled: z.number().int(),
          deadLettered: z.number().int(),
        }),
      ),
    }).openapi('DeliveryHistory'),
    errors: [400],
  });
  const shownRequest = z.object({
    url: z.string(),
    method: z.string(),
    headers: z.record(z.string()).describe('secret values shown as "********"'),
    body: z.unknown(),
  });
  const shownResponse = z.object({
    status: z.number().int(),
    headers: z.record(z.string()),
    body: z.unknown(),
    truncated: z.boolean().optional(),
  });
  doc.api(t, {
    method: 'post',
    path: '/spaces/{spaceId}/destinations/{id}/test',
    summary:
      'Event tester: sends one identify or track, built as this destination receives it (a generated test user id when none is given), once through the throttled delivery path (no retries), and shows the request and the answer (body up to 64 KB) or the error. A list destination (list-webhook, facebook-custom-audiences) gets what its list sync sends for the test user added to a test audience (type optional), through the same list adapter',
    params: id('spaceId', 'id'),
    body: testEventBody,
    response: data({
      request: shownRequest.nullable().describe('the last request made (for a list destination: the add, or the step that failed)'),
      response: shownResponse.optional(),
      error: z.string().optional(),
      exchanges: z
        .array(z.object({ request: shownRequest, response: shownResponse.optional() }))
        .optional()
        .describe('list destinations: every request made, in order (test audience lookup or creation first)'),
      list: z
        .object({
          audience: z.object({ id: z.string(), name: z.string() }).nullable(),
          sent: z.array(z.object({ type: z.string(), value: z.string() })),
          failed: z.array(z.object({ type: z.string(), reason: z.string() })),
        })
        .optional()
        .describe('list destinations: the test audience and the identifiers added, as the destination received them'),
      durationMs: z.number(),
    }),
    errors: [400, 422],
  });
  actionsDestinations(doc);
}

/** Actions destinations (CONTRACT.md section 8): the catalog and each destination's mappings. */
function actionsDestinations(doc: Doc) {
  const { mapping, catalogDestination, success } = doc.s;
  const t = 'Actions destinations';
  doc.api(t, {
    method: 'get',
    path: '/catalog/destinations',
    summary: "Segment's open destination definitions available as type actions: settings schema, actions, presets, rate limit",
    response: data({ destinations: z.array(catalogDestination) }),
  });
  doc.api(t, {
    method: 'get',
    path: '/catalog/destinations/{slug}',
    summary: 'One definition of the catalog',
    params: id('slug'),
    response: data({ destination: catalogDestination }),
    errors: [404],
  });
  const base = '/spaces/{spaceId}/destinations/{id}/mappings';
  const one = data({ mapping });
  const badMapping = 'not an Actions destination, an unknown actionId or unreadable FQL (400 naming the field)';
  doc.api(t, {
    method: 'get',
    path: base,
    summary: "An Actions destination's mappings (a new destination starts with its definition's presets)",
    params: id('spaceId', 'id'),
    response: data({ mappings: z.array(mapping) }),
    errors: [400],
  });
  doc.api(t, {
    method: 'post',
    path: base,
    summary: `Add a mapping (400: ${badMapping})`,
    params: id('spaceId', 'id'),
    body: createMappingBody,
    status: 201,
    response: one,
  });
  doc.api(t, {
    method: 'get',
    path: `${base}/{mappingId}`,
    summary: 'Get a mapping',
    params: id('spaceId', 'id', 'mappingId'),
    response: one,
  });
  doc.api(t, {
    method: 'patch',
    path: `${base}/{mappingId}`,
    summary: `Change a mapping (400: ${badMapping})`,
    params: id('spaceId', 'id', 'mappingId'),
    body: patchMappingBody,
    response: one,
  });
  doc.api(t, {
    method: 'delete',
    path: `${base}/{mappingId}`,
    summary: 'Delete a mapping',
    params: id('spaceId', 'id', 'mappingId'),
    response: success,
  });
}

function credentials(doc: Doc) {
  const { accessToken, success, identityRules, identityRulesBody } = doc.s;
  doc.api('Access tokens', {
    method: 'post',
    path: '/spaces/{spaceId}/access-tokens',
    summary: 'Create a Profile API access token for the space (the token is in this answer only)',
    params: id('spaceId'),
    body: createAccessTokenBody,
    status: 201,
    response: data({ accessToken: accessToken.extend({ token: z.string() }) }),
  });
  doc.api('Access tokens', {
    method: 'get',
    path: '/spaces/{spaceId}/access-tokens',
    summary: 'List access tokens (without the tokens)',
    params: id('spaceId'),
    query: pageQuery,
    response: doc.page('accessTokens', accessToken),
    errors: [400],
  });
  doc.api('Access tokens', {
    method: 'delete',
    path: '/spaces/{spaceId}/access-tokens/{id}',
    summary: 'Revoke an access token',
    params: id('spaceId', 'id'),
    response: success,
  });
  doc.api('Identity rules', {
    method: 'get',
    path: '/spaces/{spaceId}/identity-rules',
    summary: "The space's identity resolution rules (Segment's defaults until set)",
    params: id('spaceId'),
    response: data({ identityRules }),
  });
  doc.api('Identity rules', {
    method: 'put',
    path: '/spaces/{spaceId}/identity-rules',
    summary: "Replace the rules (fields left out take Segment's defaults); applies to events that arrive after",
    params: id('spaceId'),
    body: identityRulesBody,
    response: data({ identityRules }),
  });
}

function profileApi(doc: Doc) {
  const { cursor, profileExternalId, profileApiError } = doc.s;
  const resources: Array<[string, string, ZodTypeAny, AnyQuery]> = [
    [
      'traits',
      'Custom traits, audience memberships and computed traits by key',
      z.object({ traits: z.record(z.unknown()), cursor }),
      {
        include: 'Trait names, comma-separated',
        class: 'audience or computed_trait',
        limit: '1-200, default 10',
        next: 'cursor.next',
        verbose: 'true for values with their sources',
      },
    ],
    [
      'events',
      'The recent events of the profile, newest first',
      z.object({ data: z.array(z.record(z.unknown())), cursor }),
      {
        start: 'ISO time',
        end: 'ISO time',
        include: 'Event names',
        exclude: 'Event names',
        sort: 'asc or desc',
        limit: '1-100, default 10',
        next: 'cursor.next',
      },
    ],
    [
      'external_ids',
      'The identifiers of the profile',
      z.object({ data: z.array(profileExternalId), cursor }),
      { include: 'Identifier types', limit: '1-100, default 25', next: 'cursor.next' },
    ],
    [
      'metadata',
      'When the profile was created and last updated, first and last messages',
      z.object({ metadata: z.record(z.string().nullable()) }),
      {},
    ],
    [
      'links',
      'Accounts of a user, users of an account',
      z.object({ data: z.array(z.object({ to_collection: z.string(), external_ids: z.array(profileExternalId) })) }),
      { limit: '1-100, default 20' },
    ],
    [
      'merges',
      "Profiles merged into this one, newest first, the whole chain (this project's resource: Segment's Profile API has none)",
      z
        .object({
          data: z.array(
            z
              .object({
                segment_id: z.string().describe('The merged profile (segment_id:<it> still finds this profile)'),
                merged_at: z.string().datetime().describe('Event time of the event that merged it'),
                event_key: z.string().nullable().describe('The key of that event (source, messageId, receive time)'),
              })
              .openapi('ProfileMerge'),
          ),
          cursor,
        })
        .openapi('ProfileMerges'),
      { limit: '1-100, default 25', next: 'cursor.next' },
    ],
  ];
  for (const [resource, summary, response, query] of resources) {
    doc.raw({
      method: 'get',
      path: `/v1/spaces/{spaceId}/collections/{collection}/profiles/{identifier}/${resource}`,
      tags: ['Profile API'],
      summary,
      security: [{ profileToken: [] }],
      request: {
        params: z.object({
          spaceId: z.string(),
          collection: z.enum(['users', 'accounts']),
          identifier: z.string().describe('<type>:<value>, e.g. user_id:u123, email:a@b.co, anonymous_id:..., segment_id:...'),
        }),
        query: z.object(Object.fromEntries(Object.entries(query).map(([k, d]) => [k, z.string().optional().describe(d)]))),
      },
      responses: {
        '200': { description: 'OK', ...json(response) },
        '400': { description: 'Bad identifier or parameter', ...json(profileApiError) },
        '401': { description: 'Neither the admin token nor an access token of this space', ...json(profileApiError) },
        '404': { description: 'Unknown space or profile', ...json(profileApiError) },
        '429': { description: 'Over PROFILE_API_RATE_LIMIT requests per second for the space (Retry-After)', ...json(profileApiError) },
      },
    });
  }
}
type AnyQuery = Record<string, string>;

function journeys(doc: Doc) {
  const { timestamps } = doc.s;
  const t = 'Journeys';
  const version = z
    .object({
      version: z.number().int().describe('1, 2, ...'),
      publishedAt: z.string().datetime(),
      entryComputationId: z.string().describe("The audience whose entries enter users (entry.audienceId, or the journey's entry audience)"),
      start: z.string(),
      steps: z.array(journeyStepSchema),
      conditions: z
        .record(z.array(z.string()))
        .describe('Split and branch steps: the journey-owned audience of each condition, by step id (branches in order)'),
      stepKeys: z.record(z.string()).describe("Send steps' keys by step id"),
    })
    .openapi('JourneyVersion');
  const journey = z
    .object({
      id: z.string().describe('jou_...'),
      spaceId: z.string(),
      name: z.string(),
      key: z.string(),
      status: z.enum(['Draft', 'Live', 'Paused', 'Archived']),
      entry: journeyEntrySchema,
      reentry: z.enum(['never', 'after_exit']),
      includeExistingMembers: z.boolean(),
      start: z.string().describe('The draft: what the next publish freezes'),
      steps: z.array(journeyStepSchema),
      stepKeys: z
        .record(z.string())
        .describe("Send steps' keys by step id: j_o_<journey key>__<step name>_<6 [a-z0-9]>, kept across edits"),
      versions: z.array(version).describe('Published versions, oldest first; the last is the one new entrants walk'),
      ...timestamps,
      draftChanged: z
        .boolean()
        .describe('The draft differs from the latest version (true when never published): publish would make a new version'),
      stats: z
        .array(
          z.object({
            id: z.string(),
            type: z.enum(['send', 'wait', 'split', 'branch', 'exit']),
            key: z.string().optional().describe('Send steps: the key their calls carry'),
            current: z.number().int().describe('Users at the step now'),
            entered: z.number().int().describe('Users who reached the step'),
          }),
        )
        .describe('Steps of the latest version (the draft when never published) with what the journey runner counted'),
    })
    .openapi('Journey');
  const base = '/spaces/{spaceId}/journeys';
  const one = data({ journey });
  doc.api(t, {
    method: 'post',
    path: base,
    summary:
      'Create a journey in Draft (400: a body of the wrong shape; 422: graph problems naming the step, an unknown entry audience or destination, an invalid query; 409: key used before)',
    params: id('spaceId'),
    body: journeyInputSchema,
    status: 201,
    response: one,
    errors: [409],
  });
  doc.api(t, {
    method: 'get',
    path: base,
    summary: 'List journeys (archived ones included) with per-step stats',
    params: id('spaceId'),
    query: pageQuery,
    response: doc.page('journeys', journey),
    errors: [400],
  });
  doc.api(t, {
    method: 'get',
    path: `${base}/{id}`,
    summary: 'Get a journey with per-step stats',
    params: id('spaceId', 'id'),
    response: one,
  });
  doc.api(t, {
    method: 'patch',
    path: `${base}/{id}`,
    summary: 'Edit the draft (published versions never change; 409 when archived)',
    params: id('spaceId', 'id'),
    body: journeyPatchSchema,
    response: one,
    errors: [409],
  });
  doc.api(t, {
    method: 'delete',
    path: `${base}/{id}`,
    summary: 'Archive a journey (its key stays taken); again on an archived one answers the same',
    params: id('spaceId', 'id'),
    response: data({ status: z.literal('SUCCESS'), journey: z.object({ id: z.string(), key: z.string() }) }),
  });
  for (const [action, summary] of [
    [
      'publish',
      "Publish the draft as a new version and make it Live: creates the audiences of its queries and its send steps' connections (409 when archived)",
    ],
    ['pause', 'Pause a Live journey: no one enters or moves on (409 otherwise)'],
    ['resume', 'Resume a Paused journey (409 otherwise)'],
    ['archive', 'Archive a journey for good: deletes its audiences and connections (409 when already archived)'],
  ] as const) {
    doc.api(t, { method: 'post', path: `${base}/{id}/${action}`, summary, params: id('spaceId', 'id'), response: one, errors: [409] });
  }
}

const SECTIONS: Array<(doc: Doc) => void> = [ops, spaces, computations, destinations, journeys, credentials, profileApi];

/** The API reference of this control plane. */
export function openApiDocument() {
  // Adds .openapi() to zod's prototype, which the generator reads; idempotent.
  extendZodWithOpenApi(z);
  const doc = new Doc();
  for (const section of SECTIONS) section(doc);
  return new OpenApiGeneratorV31(doc.registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Engage control plane',
      version: '0.1.0',
      description:
        'Configuration API (bearer CONTROL_PLANE_TOKEN), Segment-compatible Profile API (Basic, token as username) and CSV export. See docs/api.md.',
    },
  });
}

/** GET /openapi.json (public: the reference holds no secret). Built once. */
export function openApiRouter(): Router {
  const router = Router();
  let body: string | null = null;
  router.get('/openapi.json', (_req, res) => {
    body ??= JSON.stringify(openApiDocument());
    res.type('application/json').send(body);
  });
  return router;
}

/** An express route as registered: method (lowercase) and path pattern (`/spaces/:spaceId`). */
export interface RegisteredRoute {
  method: string;
  path: string;
}

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  slash?: boolean;
}

/**
 * The routes of routers mounted at '/' (as app.ts mounts them), read from
 * express's router stacks. Throws on a router mounted under a path: its routes'
 * full paths are not recorded in the stack in a form this reads.
 */
export function registeredRoutes(routers: Array<{ stack?: unknown }>): RegisteredRoute[] {
  const out: RegisteredRoute[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const method of Object.keys(layer.route.methods).filter((m) => m !== '_all'))
          for (const path of paths) out.push({ method, path });
      } else if (layer.handle?.stack) {
        if (!layer.slash) throw new Error('registeredRoutes: a router mounted under a path is not supported; mount it at /');
        walk(layer.handle.stack);
      }
    }
  };
  for (const router of routers) walk((router.stack ?? []) as Layer[]);
  return out;
}
