// The configuration API against the real fleet infrastructure: the built
// service as a process, engage.config read back by an independent ConfigStore.
import { ConfigStore } from '@engage/config-store';
import { createKafka, topicRegistry } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { SchemaCodec } from '@engage/schemas';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';

const TOKEN = 'test-token-123';
let proc: ServiceProcess;
let base: string;
let prefix: string;
let reader: ConfigStore;

async function api(method: string, path: string, body?: unknown, token = TOKEN) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  const infra = testInfrastructure();
  prefix = `${uniqueName('cp')}.`;
  proc = startService('control-plane', {
    KAFKA_BROKERS: infra.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl,
    REDIS_URL: infra.redisUrl,
    TOPIC_PREFIX: prefix,
    REDIS_KEY_PREFIX: prefix,
    CONTROL_PLANE_PORT: '0',
    CONTROL_PLANE_TOKEN: TOKEN,
    // The destinations here point at 127.0.0.1:9 (nothing is sent to them).
    DESTINATION_ALLOWED_HOSTS: '127.0.0.0/8',
  });
  base = `http://127.0.0.1:${await proc.port()}`;
  // An independent reader of engage.config, as every other service has one.
  const log = silentLogger();
  reader = new ConfigStore(
    { topic: topicRegistry(prefix).config.name, groupPrefix: 'test' },
    {
      kafka: createKafka({ brokers: infra.kafkaBrokers, clientId: 'cp-test' }, { log }),
      codec: new SchemaCodec({ url: infra.schemaRegistryUrl }),
      log,
    },
  );
  await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { description: 'control plane ready' });
  await reader.start();
});
afterAll(async () => {
  await reader?.stop();
  await proc?.stop();
});

describe('control plane configuration API', () => {
  let spaceId: string;

  it('requires the bearer token', async () => {
    expect(await api('GET', '/spaces', undefined, 'wrong-token')).toEqual({
      status: 401,
      body: { errors: [{ type: 'unauthorized', message: 'missing or invalid bearer token' }] },
    });
  });

  it('creates spaces and sources with write keys, wrapped as the Public API does', async () => {
    const space = await api('POST', '/spaces', { name: 'Production' });
    expect(space.status).toBe(201);
    expect(space.body.data.space).toEqual({
      id: expect.stringMatching(/^spa_/),
      name: 'Production',
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    spaceId = space.body.data.space.id;
    const source = await api('POST', `/spaces/${spaceId}/sources`, { name: 'Web' });
    expect(source.body.data.source).toEqual(
      expect.objectContaining({ id: expect.stringMatching(/^src_/), writeKey: expect.stringMatching(/^[0-9A-Za-z]{32}$/), spaceId }),
    );
    const list = await api('GET', '/spaces');
    expect(list.body.data.spaces.map((s: any) => s.id)).toContain(spaceId);
    expect(list.body.data.pagination).toEqual(expect.objectContaining({ totalEntries: expect.any(Number) }));
  });

  it('creates an audience with a derived key and Preparing status; rejects reuse of the key, even after deletion', async () => {
    const body = {
      name: 'Order Completed Last 30 Days',
      definition: { query: "event('Order Completed').within(30 days).count() >= 1", type: 'users' },
      options: { includeHistoricalData: true },
    };
    const created = await api('POST', `/spaces/${spaceId}/audiences`, body);
    expect(created.status).toBe(201);
    expect(created.body.data.audience).toEqual(
      expect.objectContaining({
        id: expect.stringMatching(/^aud_/),
        key: 'order_completed_last_30_days',
        enabled: true,
        status: 'Preparing',
        size: 0,
        progress: null,
        options: { includeHistoricalData: true, computeMode: 'realtime' },
      }),
    );
    const id = created.body.data.audience.id;
    expect((await api('POST', `/spaces/${spaceId}/audiences`, body)).status).toBe(409);
    expect((await api('DELETE', `/spaces/${spaceId}/audiences/${id}`)).status).toBe(200);
    expect((await api('GET', `/spaces/${spaceId}/audiences/${id}`)).status).toBe(404);
    const again = await api('POST', `/spaces/${spaceId}/audiences`, body);
    expect(again.status).toBe(409);
    expect(again.body.errors[0]).toEqual(expect.objectContaining({ type: 'conflict', field: 'key' }));
  });

  it('gives a key to exactly one of many concurrent creations', async () => {
    const body = { name: 'Raced', definition: { query: "event('A').count() >= 1", type: 'users' } };
    const results = await Promise.all(Array.from({ length: 6 }, () => api('POST', `/spaces/${spaceId}/audiences`, body)));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
  });

  it('answers 422 with line and column for an invalid query', async () => {
    const res = await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'Broken',
      definition: { query: "event('Order Completed').count() >=", type: 'users' },
    });
    expect(res.status).toBe(422);
    expect(res.body.errors[0]).toEqual({
      type: 'invalid-query',
      field: 'definition.query',
      message: expect.stringMatching(/^definition\.query: 1:\d+: /),
    });
  });

  it('names unknown and bad fields', async () => {
    const res = await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'X',
      colour: 'red',
      definition: { query: "event('A').count() > 1", type: 'people' },
    });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual(
      expect.arrayContaining([
        { type: 'validation', message: 'colour: unknown field', field: 'colour' },
        {
          type: 'validation',
          field: 'definition.type',
          message: expect.stringContaining("definition.type: Invalid enum value. Expected 'users' | 'accounts'"),
        },
      ]),
    );
    const invalidJson = await api('POST', `/spaces/${spaceId}/audiences`, '{"name": ');
    expect(invalidJson.status).toBe(400);
    expect(invalidJson.body.errors[0].message).toMatch(/^invalid JSON body/);
    expect((await api('POST', `/spaces/${spaceId}/audiences`, '[1,2]')).status).toBe(400);
    const nested = await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'X',
      definition: { query: "event('A').count() > 1", extra: 1 },
    });
    expect(nested.body.errors).toEqual([{ type: 'validation', message: 'definition.extra: unknown field', field: 'definition.extra' }]);
    const emptyName = await api('POST', `/spaces/${spaceId}/audiences`, { name: '  !! ', definition: { query: "event('A').count() > 1" } });
    expect(emptyName).toEqual({ status: 422, body: { errors: [expect.objectContaining({ field: 'name' })] } });
    expect((await api('GET', `/spaces/${spaceId}/audiences/aud_nope`)).body).toEqual({
      errors: [{ type: 'not-found', message: 'audience aud_nope not found' }],
    });
    expect((await api('GET', `/spaces/spa_nope/audiences`)).status).toBe(404);
  });

  it('checks users vs accounts: ANY/ALL only in account audiences, and the level cannot change', async () => {
    const query = "ANY event('Order Completed').count() >= 1";
    const users = await api('POST', `/spaces/${spaceId}/audiences`, { name: 'Any Buyer Users', definition: { query, type: 'users' } });
    expect(users.status).toBe(422);
    expect(users.body.errors[0]).toEqual({
      type: 'invalid-query',
      field: 'definition.query',
      message: expect.stringMatching(/^definition\.query: 1:1: .*accounts/),
    });
    const accounts = await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'Accounts With A Buyer',
      definition: { query, type: 'accounts' },
    });
    expect(accounts.status).toBe(201);
    const id = accounts.body.data.audience.id;
    const toUsers = await api('PATCH', `/spaces/${spaceId}/audiences/${id}`, {
      definition: { query: "event('Order Completed').count() >= 1", type: 'users' },
    });
    expect(toUsers.status).toBe(422);
    expect(toUsers.body.errors[0].field).toBe('definition.type');

    // Reads of other computations must be at their level: users inside ANY/ALL, the account outside.
    const userAud = await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'Single Buyers',
      definition: { query: "event('Order Completed').count() >= 1", type: 'users' },
    });
    expect(userAud.status).toBe(201);
    const readsAccount = await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'In Buying Account',
      definition: { query: "trait('accounts_with_a_buyer') = true", type: 'users' },
    });
    expect(readsAccount.body.errors).toEqual([
      {
        type: 'validation',
        field: 'definition.query',
        message:
          "definition.query: trait('accounts_with_a_buyer') reads the account-level audience 'accounts_with_a_buyer' where a user is evaluated",
      },
    ]);
    const outsideAny = await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'Buyer Accounts',
      definition: { query: "trait('single_buyers') = true", type: 'accounts' },
    });
    expect(outsideAny.body.errors[0].message).toContain('where an account is evaluated (read it inside ANY or ALL)');
    const insideAny = await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'Buyer Accounts',
      definition: { query: "ANY trait('single_buyers') = true", type: 'accounts' },
    });
    expect(insideAny.status).toBe(201);
  });

  it('keeps realtime/batch immutable and bumps the definition version on an edit', async () => {
    const created = await api('POST', `/spaces/${spaceId}/computed-traits`, {
      name: 'Total Revenue',
      definition: { query: "event('Order Completed').sum(property('revenue'))", type: 'users' },
    });
    expect(created.status).toBe(201);
    const id = created.body.data.computedTrait.id;
    expect(id).toMatch(/^tra_/);
    const modeChange = await api('PATCH', `/spaces/${spaceId}/computed-traits/${id}`, { options: { computeMode: 'batch' } });
    expect(modeChange.status).toBe(422);
    const edited = await api('PATCH', `/spaces/${spaceId}/computed-traits/${id}`, {
      definition: { query: "event('Order Completed').within(90 days).sum(property('revenue'))", type: 'users' },
    });
    expect(edited.body.data.computedTrait.definitionVersion).toBe(2);
  });

  it('rejects a cycle across audience references', async () => {
    const a = await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'Alpha',
      definition: { query: "trait('beta') = true", type: 'users' },
    });
    expect(a.status).toBe(201);
    const b = await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'Beta',
      definition: { query: "trait('alpha') = true", type: 'users' },
    });
    expect(b.status).toBe(422);
    expect(b.body.errors[0].message).toContain('beta -> alpha -> beta');
  });

  it('rejects a cycle across audience and computed-trait references, on create and on edit', async () => {
    const trait = await api('POST', `/spaces/${spaceId}/computed-traits`, {
      name: 'Vip Orders',
      definition: { query: "event('Order Completed').count()", type: 'users' },
    });
    expect(trait.status).toBe(201);
    const aud = await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'Vips',
      definition: { query: "trait('vip_orders') > 3", type: 'users' },
    });
    expect(aud.status).toBe(201);
    const edit = await api('PATCH', `/spaces/${spaceId}/computed-traits/${trait.body.data.computedTrait.id}`, {
      definition: { query: "event('Order Completed').where(trait('vips') = true).count()", type: 'users' },
    });
    expect(edit.status).toBe(422);
    expect(edit.body.errors[0]).toEqual({
      type: 'validation',
      field: 'definition.query',
      message: expect.stringContaining('vip_orders -> vips -> vip_orders'),
    });
    // A referenced computation cannot be deleted from under its dependents.
    const del = await api('DELETE', `/spaces/${spaceId}/computed-traits/${trait.body.data.computedTrait.id}`);
    expect(del.status).toBe(409);
    expect(del.body.errors[0].message).toContain("'vips'");
  });

  it('updates and deletes spaces and sources; a space is deleted only when empty', async () => {
    const space = (await api('POST', '/spaces', { name: 'Scratch' })).body.data.space;
    expect((await api('PATCH', `/spaces/${space.id}`, { name: 'Scratch 2' })).body.data.space.name).toBe('Scratch 2');
    const source = (await api('POST', `/spaces/${space.id}/sources`, { name: 'App' })).body.data.source;
    const patched = await api('PATCH', `/spaces/${space.id}/sources/${source.id}`, {
      enabled: false,
      rateLimit: { requestsPerSecond: 10 },
    });
    expect(patched.body.data.source).toEqual(
      expect.objectContaining({ enabled: false, rateLimit: { requestsPerSecond: 10 }, writeKey: source.writeKey }),
    );
    const badRate = await api('PATCH', `/spaces/${space.id}/sources/${source.id}`, { rateLimit: { requestsPerSecond: -1 } });
    expect(badRate.body.errors).toEqual([
      { type: 'validation', field: 'rateLimit.requestsPerSecond', message: 'rateLimit.requestsPerSecond: must be > 0' },
    ]);
    const notEmpty = await api('DELETE', `/spaces/${space.id}`);
    expect(notEmpty.status).toBe(409);
    expect(notEmpty.body.errors[0].message).toContain('1 source(s)');
    expect((await api('DELETE', `/spaces/${space.id}/sources/${source.id}`)).status).toBe(200);
    expect((await api('GET', `/spaces/${space.id}/sources/${source.id}`)).status).toBe(404);
    expect((await api('DELETE', `/spaces/${space.id}`)).status).toBe(200);
    expect((await api('GET', `/spaces/${space.id}`)).status).toBe(404);
  });

  it('paginates lists with an opaque cursor', async () => {
    const first = await api('GET', `/spaces/${spaceId}/audiences?pagination.count=2`);
    expect(first.body.data.audiences).toHaveLength(2);
    expect(first.body.data.pagination).toEqual({ current: expect.any(String), next: expect.any(String), totalEntries: expect.any(Number) });
    const second = await api('GET', `/spaces/${spaceId}/audiences?pagination.count=2&pagination.cursor=${first.body.data.pagination.next}`);
    expect(second.body.data.audiences[0].id).not.toBe(first.body.data.audiences[0].id);
    expect((await api('GET', `/spaces/${spaceId}/audiences?pagination.count=500`)).body.errors[0].field).toBe('pagination.count');
  });

  it('validates destinations: type, settings.url, settings after a PATCH', async () => {
    const cases: Array<[unknown, string, RegExp]> = [
      [{ name: 'Hook', type: 'webhook', settings: {} }, 'settings.url', /is required for type webhook/],
      [{ name: 'Hook', type: 'webhook', settings: { url: 'not a url' } }, 'settings.url', /absolute http\(s\) URL/],
      [{ name: 'Hook', type: 'list-webhook', settings: { url: 'ftp://x.example/a' } }, 'settings.url', /absolute http\(s\) URL/],
      [
        { name: 'Hook', type: 'webhook', settings: { url: 'http://h.example', headers: { a: 1 } } },
        'settings.headers',
        /string header values/,
      ],
      [{ name: 'Hook', type: 'carrier-pigeon', settings: {} }, 'type', /Invalid enum value/],
      [
        { name: 'Hook', type: 'webhook', settings: { url: 'http://h.example' }, rateLimit: { requestsPerSecond: 0 } },
        'rateLimit.requestsPerSecond',
        /must be > 0/,
      ],
    ];
    for (const [body, field, message] of cases) {
      const res = await api('POST', `/spaces/${spaceId}/destinations`, body);
      expect({ status: res.status, field: res.body.errors[0].field }).toEqual({ status: 422, field });
      expect(res.body.errors[0].message).toMatch(message);
    }
    const dst = (
      await api('POST', `/spaces/${spaceId}/destinations`, { name: 'Patched', type: 'webhook', settings: { url: 'http://127.0.0.1:9/a' } })
    ).body.data.destination;
    const cleared = await api('PATCH', `/spaces/${spaceId}/destinations/${dst.id}`, { settings: { headers: { x: 'y' } } });
    expect({ status: cleared.status, field: cleared.body.errors[0].field }).toEqual({ status: 422, field: 'settings.url' });
    const typeChange = await api('PATCH', `/spaces/${spaceId}/destinations/${dst.id}`, { type: 'list-webhook' });
    expect(typeChange.body.errors).toEqual([{ type: 'validation', field: 'type', message: 'type: unknown field' }]);
    const ok = await api('PATCH', `/spaces/${spaceId}/destinations/${dst.id}`, {
      settings: { url: 'https://hooks.example/b' },
      enabled: false,
    });
    expect(ok.body.data.destination).toEqual(
      expect.objectContaining({ settings: { url: 'https://hooks.example/b' }, enabled: false, type: 'webhook' }),
    );
    expect((await api('DELETE', `/spaces/${spaceId}/destinations/${dst.id}`)).status).toBe(200);
    expect((await api('GET', `/spaces/${spaceId}/destinations/${dst.id}`)).status).toBe(404);
  });

  it('creates destinations and connections, listed with status and sync status; every service sees a change within a second', async () => {
    const dst = await api('POST', `/spaces/${spaceId}/destinations`, {
      name: 'Hook',
      type: 'webhook',
      settings: { url: 'http://127.0.0.1:9/hook' },
      rateLimit: { requestsPerSecond: 5 },
    });
    expect(dst.status).toBe(201);
    expect(dst.body.data.destination.id).toMatch(/^dst_/);
    const dstId = dst.body.data.destination.id;
    const list = await api('POST', `/spaces/${spaceId}/destinations`, {
      name: 'Lists',
      type: 'list-webhook',
      settings: { url: 'http://127.0.0.1:9/lists' },
    });
    const aud = await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'Buyers',
      definition: { query: "event('Order Completed').count() >= 1", type: 'users' },
    });
    const audId = aud.body.data.audience.id;
    const con = await api('POST', `/spaces/${spaceId}/audiences/${audId}/destinations`, {
      destinationId: dstId,
      settings: { identify: true, track: true, enteredEvent: 'Became Buyer' },
    });
    expect(con.status).toBe(201);
    expect(con.body.data.connection).toEqual(
      expect.objectContaining({
        id: expect.stringMatching(/^con_/),
        computationId: audId,
        settings: { identify: true, track: true, enteredEvent: 'Became Buyer' },
      }),
    );
    expect((await api('POST', `/spaces/${spaceId}/audiences/${audId}/destinations`, { destinationId: dstId })).status).toBe(409);
    const badSettings = await api('POST', `/spaces/${spaceId}/audiences/${audId}/destinations`, {
      destinationId: list.body.data.destination.id,
      settings: { identify: 'yes', identifierTypes: [] },
    });
    expect(badSettings.body.errors.map((e: any) => e.field).sort()).toEqual(['settings.identifierTypes', 'settings.identify']);
    const unknownDst = await api('POST', `/spaces/${spaceId}/audiences/${audId}/destinations`, { destinationId: 'dst_nope' });
    expect(unknownDst.body.errors[0]).toEqual(expect.objectContaining({ field: 'destinationId' }));
    const listed = await api('GET', `/spaces/${spaceId}/audiences/${audId}/destinations`);
    expect(listed.body.data.connections).toEqual([
      expect.objectContaining({ destinationId: dstId, status: 'Connected', syncStatus: expect.objectContaining({ state: 'Pending' }) }),
    ]);
    const conId = con.body.data.connection.id;
    expect((await api('GET', `/spaces/${spaceId}/audiences/${audId}/destinations/${dstId}`)).body.data.connection.id).toBe(conId);
    const disabled = await api('PATCH', `/spaces/${spaceId}/audiences/${audId}/destinations/${conId}`, {
      enabled: false,
      settings: { identify: true, identifierTypes: ['user_id', 'email'] },
    });
    expect(disabled.body.data.connection).toEqual(
      expect.objectContaining({ status: 'Disabled', settings: { identify: true, track: false, identifierTypes: ['user_id', 'email'] } }),
    );

    // Computed traits connect the same way, but never to a list destination.
    const traitId = (await api('GET', `/spaces/${spaceId}/computed-traits`)).body.data.computedTraits[0].id;
    const traitToList = await api('POST', `/spaces/${spaceId}/computed-traits/${traitId}/destinations`, {
      destinationId: list.body.data.destination.id,
    });
    expect(traitToList.body.errors[0]).toEqual(
      expect.objectContaining({ field: 'destinationId', message: expect.stringContaining('audiences only') }),
    );
    const traitCon = await api('POST', `/spaces/${spaceId}/computed-traits/${traitId}/destinations`, {
      destinationId: dstId,
      settings: { identify: false, track: true },
    });
    expect(traitCon.body.data.connection).toEqual(expect.objectContaining({ computationClass: 'trait', status: 'Connected' }));

    // An independent reader of engage.config (as every other service is) sees it all...
    await waitFor(() => reader.list('connection', spaceId).length === 2, { description: 'connections in engage.config' });
    expect(reader.get('audience', audId)?.key).toBe('buyers');
    expect(reader.get('connection', conId)?.enabled).toBe(false);
    // ...and nothing that the API refused: every object it holds is one the API shows.
    const names = reader
      .list('destination', spaceId)
      .map((d) => d.name)
      .sort();
    expect(names).toEqual(['Hook', 'Lists']);
    // A change reaches it within a second (the deadline is the assertion).
    const started = Date.now();
    await api('PATCH', `/spaces/${spaceId}/destinations/${dstId}`, { name: 'Hook Renamed' });
    await waitFor(() => reader.get('destination', dstId)?.name === 'Hook Renamed', {
      timeoutMs: 1000,
      intervalMs: 10,
      description: 'rename seen within 1 s',
    });
    expect(Date.now() - started).toBeLessThan(1000);
    // A PATCH that changes nothing writes nothing: the next real change is the next version.
    const version = reader.getStored('destination', dstId)!.version;
    expect((await api('PATCH', `/spaces/${spaceId}/destinations/${dstId}`, { name: 'Hook Renamed', enabled: true })).status).toBe(200);
    await api('PATCH', `/spaces/${spaceId}/destinations/${dstId}`, { enabled: false });
    await waitFor(() => reader.get('destination', dstId)?.enabled === false, { description: 'disable seen' });
    expect(reader.getStored('destination', dstId)!.version).toBe(version + 1);
    // Deleting the audience deletes its connections with it.
    expect((await api('DELETE', `/spaces/${spaceId}/audiences/${audId}`)).status).toBe(200);
    await waitFor(() => reader.get('connection', conId) === undefined && reader.getStored('connection', conId)?.deleted, {
      timeoutMs: 1000,
      description: 'connection deleted',
    });
  });
});
