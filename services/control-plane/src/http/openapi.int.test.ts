// Every operation of /openapi.json, called on the built control plane running
// on the real infrastructure, in an order that creates what later calls need:
// each must succeed (2xx). The table below must list exactly the documented
// operations, so a route documented later needs a call here too.
import { serviceEnv, startService, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';
import { openApiDocument } from './openapi';

const TOKEN = 'openapi-test-token';
let proc: ServiceProcess;
let base: string;

beforeAll(async () => {
  // Destinations point at 127.0.0.1:9 (nothing is sent to them).
  proc = startService(
    'control-plane',
    serviceEnv(`${uniqueName('cpdoc')}.`, { CONTROL_PLANE_TOKEN: TOKEN, DESTINATION_ALLOWED_HOSTS: '127.0.0.0/8' }),
  );
  base = `http://127.0.0.1:${await proc.port()}`;
  await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { description: 'control plane ready' });
});
afterAll(async () => {
  await proc?.stop();
});

/** Ids created along the way. */
type Ids = Record<string, string>;
interface Call {
  /** Path parameters (by name) from the ids so far. */
  params?: (ids: Ids) => Record<string, string>;
  /** A value, or a function of the ids so far. */
  body?: unknown;
  query?: string;
  auth?: 'basic' | 'none';
  /** Ids to keep from the answer. */
  keep?: (body: any) => Ids;
  /** Instead of 2xx: what this call answers, checked by the test. */
  expect?: (status: number, body: any) => void;
}

const sp = (ids: Ids) => ({ spaceId: ids.space! });
const audience = (ids: Ids) => ({ spaceId: ids.space!, id: ids.audience! });
const trait = (ids: Ids) => ({ spaceId: ids.space!, id: ids.trait! });
const journey = (ids: Ids) => ({ spaceId: ids.space!, id: ids.journey! });
const definition = { query: "event('Order Completed').count() >= 1", type: 'users' };
const profileNotFound = (status: number, body: any) => {
  // The handler ran (space found, identifier parsed, graph read): Segment's answer for a profile nobody sent.
  expect({ status, body }).toEqual({ status: 404, body: { error: { code: 'not_found', message: 'Profile was not found.' } } });
};

// Ordered: creations, then reads and changes, then deletions (the space last, once empty).
const CALLS: Array<[string, Call]> = [
  ['get /healthz', { auth: 'none' }],
  ['get /readyz', { auth: 'none' }],
  ['get /metrics', { auth: 'none' }],
  ['get /openapi.json', { auth: 'none' }],
  ['post /spaces', { body: { name: 'Reference' }, keep: (b) => ({ space: b.data.space.id }) }],
  ['get /spaces', {}],
  ['get /console/{page}', { auth: 'none', params: (ids) => ({ page: `spaces/${ids.space}/audiences` }) }],
  ['get /spaces/{spaceId}', { params: sp }],
  ['patch /spaces/{spaceId}', { params: sp, body: { name: 'Reference 2' } }],
  ['post /spaces/{spaceId}/sources', { params: sp, body: { name: 'Web' }, keep: (b) => ({ source: b.data.source.id }) }],
  ['get /spaces/{spaceId}/sources', { params: sp }],
  ['get /spaces/{spaceId}/sources/{id}', { params: (ids) => ({ ...sp(ids), id: ids.source! }) }],
  ['patch /spaces/{spaceId}/sources/{id}', { params: (ids) => ({ ...sp(ids), id: ids.source! }), body: { enabled: false } }],
  ['post /spaces/{spaceId}/audiences/check', { params: sp, body: { definition } }],
  ['post /spaces/{spaceId}/audiences/preview', { params: sp, body: { definition } }],
  [
    'post /spaces/{spaceId}/audiences',
    { params: sp, body: { name: 'Buyers', definition }, keep: (b) => ({ audience: b.data.audience.id }) },
  ],
  ['get /spaces/{spaceId}/audiences', { params: sp }],
  ['get /spaces/{spaceId}/audiences/{id}', { params: audience }],
  ['patch /spaces/{spaceId}/audiences/{id}', { params: audience, body: { description: 'people who bought' } }],
  ['get /spaces/{spaceId}/audiences/{id}/csv', { params: audience, query: 'format=formatted' }],
  [
    'get /spaces/{spaceId}/audiences/{id}/size-history',
    { params: audience, query: 'since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z' },
  ],
  ['post /spaces/{spaceId}/computed-traits/check', { params: sp, body: { definition: { query: "event('Order Completed').count()" } } }],
  [
    'post /spaces/{spaceId}/computed-traits',
    {
      params: sp,
      body: { name: 'Orders', definition: { query: "event('Order Completed').count()" } },
      keep: (b) => ({ trait: b.data.computedTrait.id }),
    },
  ],
  ['get /spaces/{spaceId}/computed-traits', { params: sp }],
  ['get /spaces/{spaceId}/computed-traits/{id}', { params: trait }],
  [
    'get /spaces/{spaceId}/computed-traits/{id}/size-history',
    { params: trait, query: 'since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z' },
  ],
  ['patch /spaces/{spaceId}/computed-traits/{id}', { params: trait, body: { name: 'Order count' } }],
  [
    'post /spaces/{spaceId}/destinations',
    {
      params: sp,
      body: { name: 'Hook', type: 'webhook', settings: { url: 'http://127.0.0.1:9/hook' } },
      keep: (b) => ({ destination: b.data.destination.id }),
    },
  ],
  ['get /spaces/{spaceId}/destinations', { params: sp }],
  ['get /spaces/{spaceId}/destinations/{id}', { params: (ids) => ({ ...sp(ids), id: ids.destination! }) }],
  ['patch /spaces/{spaceId}/destinations/{id}', { params: (ids) => ({ ...sp(ids), id: ids.destination! }), body: { name: 'Hook 2' } }],
  ['post /spaces/{spaceId}/destinations/{id}/sync', { params: (ids) => ({ ...sp(ids), id: ids.destination! }) }],
  ['get /spaces/{spaceId}/destinations/{id}/delivery-history', { params: (ids) => ({ ...sp(ids), id: ids.destination! }) }],
  // Nothing listens on port 9: the tester answers 200 with the request it tried and the error.
  [
    'post /spaces/{spaceId}/destinations/{id}/test',
    { params: (ids) => ({ ...sp(ids), id: ids.destination! }), body: { type: 'identify', userId: 'u-doc' } },
  ],
  ['get /catalog/destinations', {}],
  ['get /catalog/destinations/{slug}', { params: () => ({ slug: 'braze' }) }],
  [
    'post /spaces/{spaceId}/destinations',
    {
      params: sp,
      body: { name: 'Braze', type: 'actions', slug: 'braze', settings: { api_key: 'k' } },
      keep: (b) => ({ actions: b.data.destination.id }),
    },
  ],
  [
    'post /spaces/{spaceId}/destinations/{id}/mappings',
    {
      params: (ids) => ({ ...sp(ids), id: ids.actions! }),
      body: { actionId: 'trackEvent', subscribe: 'event = "Audience Entered"' },
      keep: (b) => ({ mapping: b.data.mapping.id }),
    },
  ],
  ['get /spaces/{spaceId}/destinations/{id}/mappings', { params: (ids) => ({ ...sp(ids), id: ids.actions! }) }],
  [
    'get /spaces/{spaceId}/destinations/{id}/mappings/{mappingId}',
    { params: (ids) => ({ ...sp(ids), id: ids.actions!, mappingId: ids.mapping! }) },
  ],
  [
    'patch /spaces/{spaceId}/destinations/{id}/mappings/{mappingId}',
    { params: (ids) => ({ ...sp(ids), id: ids.actions!, mappingId: ids.mapping! }), body: { enabled: false } },
  ],
  [
    'delete /spaces/{spaceId}/destinations/{id}/mappings/{mappingId}',
    { params: (ids) => ({ ...sp(ids), id: ids.actions!, mappingId: ids.mapping! }) },
  ],
  [
    'post /spaces/{spaceId}/journeys',
    {
      params: sp,
      body: (ids: Ids) => ({
        name: 'Welcome',
        key: 'welcome',
        entry: { audienceId: ids.audience },
        steps: [
          { id: 'hello', type: 'send', name: 'Hello', destinations: [{ destinationId: ids.destination }], next: 'wait' },
          { id: 'wait', type: 'wait', duration: '1 day', next: 'bought' },
          { id: 'bought', type: 'split', query: "event('Order Completed').count() >= 1", true: 'done', false: 'done' },
          { id: 'done', type: 'exit' },
        ],
        start: 'hello',
      }),
      keep: (b) => ({ journey: b.data.journey.id }),
    },
  ],
  ['get /spaces/{spaceId}/journeys', { params: sp }],
  ['get /spaces/{spaceId}/journeys/{id}', { params: journey }],
  ['patch /spaces/{spaceId}/journeys/{id}', { params: journey, body: { name: 'Welcome 2' } }],
  ['post /spaces/{spaceId}/journeys/{id}/publish', { params: journey }],
  ['post /spaces/{spaceId}/journeys/{id}/pause', { params: journey }],
  ['post /spaces/{spaceId}/journeys/{id}/resume', { params: journey }],
  ['post /spaces/{spaceId}/journeys/{id}/archive', { params: journey }],
  ['delete /spaces/{spaceId}/journeys/{id}', { params: journey }],
  ...(['audiences', 'computed-traits'] as const).flatMap((path): Array<[string, Call]> => {
    const of = path === 'audiences' ? audience : trait;
    const conn = (ids: Ids) => ({ ...of(ids), connectionId: ids.destination! });
    return [
      [`post /spaces/{spaceId}/${path}/{id}/destinations`, { params: of, body: (ids: Ids) => ({ destinationId: ids.destination }) }],
      [`get /spaces/{spaceId}/${path}/{id}/destinations`, { params: of }],
      [`get /spaces/{spaceId}/${path}/{id}/destinations/{connectionId}`, { params: conn }],
      [`patch /spaces/{spaceId}/${path}/{id}/destinations/{connectionId}`, { params: conn, body: { enabled: false } }],
      [`delete /spaces/{spaceId}/${path}/{id}/destinations/{connectionId}`, { params: conn }],
    ];
  }),
  ['post /spaces/{spaceId}/access-tokens', { params: sp, body: { name: 'reader' }, keep: (b) => ({ token: b.data.accessToken.id }) }],
  ['get /spaces/{spaceId}/access-tokens', { params: sp }],
  ['get /spaces/{spaceId}/identity-rules', { params: sp }],
  ['put /spaces/{spaceId}/identity-rules', { params: sp, body: { priority: ['user_id', 'email'], maxMergesPerProfile: 50 } }],
  ...['traits', 'events', 'external_ids', 'metadata', 'links', 'merges'].map((resource): [string, Call] => [
    `get /v1/spaces/{spaceId}/collections/{collection}/profiles/{identifier}/${resource}`,
    { auth: 'basic', params: (ids) => ({ ...sp(ids), collection: 'users', identifier: 'user_id:nobody' }), expect: profileNotFound },
  ]),
  ['delete /spaces/{spaceId}/access-tokens/{id}', { params: (ids) => ({ ...sp(ids), id: ids.token! }) }],
  ['delete /spaces/{spaceId}/computed-traits/{id}', { params: trait }],
  ['delete /spaces/{spaceId}/audiences/{id}', { params: audience }],
  ['delete /spaces/{spaceId}/destinations/{id}', { params: (ids) => ({ ...sp(ids), id: ids.destination! }) }],
  ['delete /spaces/{spaceId}/destinations/{id}', { params: (ids) => ({ ...sp(ids), id: ids.actions! }) }],
  ['delete /spaces/{spaceId}/sources/{id}', { params: (ids) => ({ ...sp(ids), id: ids.source! }) }],
  ['delete /spaces/{spaceId}', { params: sp }],
];

describe('every documented operation answers', () => {
  it('lists exactly the documented operations', () => {
    const doc = openApiDocument();
    const documented = Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
      Object.keys(item as object).map((method) => `${method} ${path}`),
    );
    // An operation may be called twice (a second destination, of type actions, for the mappings routes).
    expect([...new Set(CALLS.map(([op]) => op))].sort()).toEqual(documented.sort());
  });

  it('serves the console: every page is its index.html, a missing asset a 404', async () => {
    const page = await fetch(`${base}/console/spaces/spa_x/audiences`);
    expect([page.status, page.headers.get('content-type'), page.headers.get('content-security-policy')]).toEqual([
      200,
      'text/html; charset=utf-8',
      expect.stringContaining("default-src 'self'"),
    ]);
    const html = await page.text();
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect((await fetch(`${base}${script}`)).headers.get('content-type')).toMatch(/javascript/);
    const missing = await fetch(`${base}/console/assets/nothing-here.js`);
    expect({ status: missing.status, body: await missing.json() }).toEqual({
      status: 404,
      body: { errors: [{ type: 'not-found', message: 'no console asset /nothing-here.js' }] },
    });
  });

  it('serves the same document at /openapi.json, without auth', async () => {
    const res = await fetch(`${base}/openapi.json`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
  });

  it('answers each of them with a success on the running control plane', async () => {
    const ids: Ids = {};
    const failures: string[] = [];
    for (const [op, call] of CALLS) {
      const [method, template] = op.split(' ') as [string, string];
      const params = call.params?.(ids) ?? {};
      const path = template.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? `missing-${name}`));
      const body = typeof call.body === 'function' ? call.body(ids) : call.body;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (call.auth === 'basic') headers.authorization = `Basic ${Buffer.from(`${TOKEN}:`).toString('base64')}`;
      else if (call.auth !== 'none') headers.authorization = `Bearer ${TOKEN}`;
      const res = await fetch(`${base}${path}${call.query ? `?${call.query}` : ''}`, {
        method: method.toUpperCase(),
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      const parsed = (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text;
      if (call.expect) call.expect(res.status, parsed);
      else if (res.status < 200 || res.status > 299) failures.push(`${op} -> ${res.status} ${text.slice(0, 300)}`);
      else Object.assign(ids, call.keep?.(parsed));
    }
    expect(failures).toEqual([]);
  });
});
