// The API reference against the routes the control plane actually registers:
// the routers are built exactly as main.ts builds them (controlPlaneRouters),
// and every express route must match a documented operation, and every
// documented operation an express route (or an ops endpoint, which
// handleOpsRequest answers before express routing).
import { silentLogger } from '@engage/logging';
import { controlPlaneRouters, type RouterDeps } from './routers';
import { openApiDocument, registeredRoutes } from './openapi';

const OPS_PATHS = ['/healthz', '/readyz', '/metrics'];

/** An express 5 path pattern (`/a/:b{/*c}`) as a regular expression. */
function patternRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === ':' || ch === '*') {
      const name = /^[A-Za-z0-9_$]+/.exec(pattern.slice(i + 1))![0];
      out += ch === ':' ? '[^/]+' : '.+';
      i += name.length;
    } else if (ch === '{') out += '(?:';
    else if (ch === '}') out += ')?';
    else out += ch.replace(/[.+?^$()[\]\\|]/g, '\\$&');
  }
  return new RegExp(`^${out}/?$`);
}

/** A documented path with a sample value for each parameter (`/spaces/{spaceId}` -> `/spaces/x`). */
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, 'x');

function documented() {
  const doc = openApiDocument();
  return Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
    ['get', 'post', 'put', 'patch', 'delete'].filter((m) => (item as Record<string, unknown>)[m]).map((method) => ({ method, path })),
  );
}

function registered() {
  // Handlers are never called here: the routers only need deps that exist.
  const deps = new Proxy(
    { log: silentLogger() },
    { get: (t, k) => (t as Record<string | symbol, unknown>)[k] ?? {} },
  ) as unknown as RouterDeps;
  const { apiRouters, publicRouters } = controlPlaneRouters(
    { token: 'unused-token', profileApiRateLimit: 1, consoleDir: '/nonexistent' },
    deps,
  );
  return registeredRoutes([...(publicRouters ?? []), ...apiRouters]);
}

describe('openapi.json', () => {
  it('documents every route the control plane registers', () => {
    const docs = documented();
    const undocumented = registered().filter(
      (r) => !docs.some((d) => d.method === r.method && patternRegExp(r.path).test(concrete(d.path))),
    );
    expect(undocumented).toEqual([]);
  });

  it('has a registered route behind every documented operation', () => {
    const routes = registered();
    const unrouted = documented().filter(
      (d) =>
        !(d.method === 'get' && OPS_PATHS.includes(d.path)) &&
        !routes.some((r) => r.method === d.method && patternRegExp(r.path).test(concrete(d.path))),
    );
    expect(unrouted).toEqual([]);
  });

  it('finds the routes of the routers it is given (a route added without documentation would be listed)', () => {
    // Guards the walker itself: it must see nested routes, else the first test passes vacuously.
    const routes = registered();
    expect(routes.length).toBeGreaterThan(40);
    expect(routes).toContainEqual({ method: 'post', path: '/spaces/:spaceId/audiences' });
    expect(routes).toContainEqual({ method: 'get', path: '/v1/spaces/:spaceId/collections/:collection/profiles/:identifier/:resource' });
    expect(patternRegExp('/spaces/:spaceId/audiences/:id/csv').test('/spaces/x/audiences/x/csv')).toBe(true);
    expect(patternRegExp('/spaces/:spaceId/audiences/:id/history').test('/spaces/x/audiences/x/csv')).toBe(false);
    expect(patternRegExp('/console{/*page}').test('/console/x')).toBe(true);
  });

  it('gives every operation a unique operationId, a summary and a success response with a schema', () => {
    const doc = openApiDocument();
    const ops = Object.values(doc.paths ?? {}).flatMap((item) =>
      Object.values(item as Record<string, { operationId?: string; summary?: string; responses?: Record<string, unknown> }>),
    );
    const ids = ops.map((o) => o.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    const lacking = ops.filter((o) => {
      const success = Object.entries(o.responses ?? {}).find(([status]) => /^2/.test(status));
      const content = (success?.[1] as { content?: Record<string, { schema?: unknown }> } | undefined)?.content;
      return !o.summary || !content || Object.values(content).some((c) => !c.schema);
    });
    expect(lacking.map((o) => o.operationId)).toEqual([]);
  });

  it('takes request bodies from the zod schemas the routes validate with', () => {
    const doc = openApiDocument() as any;
    const create = doc.paths['/spaces/{spaceId}/audiences'].post.requestBody.content['application/json'].schema;
    expect(create.required).toEqual(['name', 'definition']);
    expect(create.additionalProperties).toBe(false);
    expect(create.properties.definition.properties.type).toEqual({ type: 'string', enum: ['users', 'accounts'], default: 'users' });
    expect(create.properties.key.pattern).toBe('^[a-z0-9_]+$');
  });
});
