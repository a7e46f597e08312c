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
  });
  base = `http://127.0.0.1:${await proc.port()}`;
});
afterAll(() => proc.stop());

describe('control plane configuration API', () => {
  let spaceId: string;

  it('requires the bearer token', async () => {
    expect(await api('GET', '/spaces', undefined, 'wrong-token')).toEqual({ status: 401, body: { errors: [{ type: 'unauthorized', message: 'missing or invalid bearer token' }] } });
  });

  it('creates spaces and sources with write keys, wrapped as the Public API does', async () => {
    const space = await api('POST', '/spaces', { name: 'Production' });
    expect(space.status).toBe(201);
    expect(space.body.data.space).toEqual({ id: expect.stringMatching(/^spa_/), name: 'Production', createdAt: expect.any(String), updatedAt: expect.any(String) });
    spaceId = space.body.data.space.id;
    const source = await api('POST', `/spaces/${spaceId}/sources`, { name: 'Web' });
    expect(source.body.data.source).toEqual(expect.objectContaining({ id: expect.stringMatching(/^src_/), writeKey: expect.stringMatching(/^[0-9A-Za-z]{32}$/), spaceId }));
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

  it('answers 422 with line and column for an invalid query', async () => {
    const res = await api('POST', `/spaces/${spaceId}/audiences`, { name: 'Broken', definition: { query: "event('Order Completed').count() >=", type: 'users' } });
    expect(res.status).toBe(422);
    expect(res.body.errors[0]).toEqual({ type: 'invalid-query', field: 'definition.query', message: expect.stringMatching(/^definition\.query: 1:\d+: /) });
  });

  it('names unknown and bad fields', async () => {
    const res = await api('POST', `/spaces/${spaceId}/audiences`, { name: 'X', colour: 'red', definition: { query: "event('A').count() > 1", type: 'people' } });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual(
      expect.arrayContaining([
        { type: 'validation', message: 'unknown field(s): colour' },
        { type: 'validation', field: 'definition.type', message: expect.stringContaining("definition.type: Invalid enum value. Expected 'users' | 'accounts'") },
      ]),
    );
    expect((await api('POST', `/spaces/${spaceId}/audiences`, '{"name": ')).status).toBe(400);
  });

  it('keeps realtime/batch immutable and bumps the definition version on an edit', async () => {
    const created = await api('POST', `/spaces/${spaceId}/computed-traits`, { name: 'Total Revenue', definition: { query: "event('Order Completed').sum(property('revenue'))", type: 'users' } });
    expect(created.status).toBe(201);
    const id = created.body.data.computedTrait.id;
    expect(id).toMatch(/^tra_/);
    const modeChange = await api('PATCH', `/spaces/${spaceId}/computed-traits/${id}`, { options: { computeMode: 'batch' } });
    expect(modeChange.status).toBe(422);
    const edited = await api('PATCH', `/spaces/${spaceId}/computed-traits/${id}`, { definition: { query: "event('Order Completed').within(90 days).sum(property('revenue'))", type: 'users' } });
    expect(edited.body.data.computedTrait.definitionVersion).toBe(2);
  });

  it('rejects a cycle across audience references', async () => {
    const a = await api('POST', `/spaces/${spaceId}/audiences`, { name: 'Alpha', definition: { query: "trait('beta') = true", type: 'users' } });
    expect(a.status).toBe(201);
    const b = await api('POST', `/spaces/${spaceId}/audiences`, { name: 'Beta', definition: { query: "trait('alpha') = true", type: 'users' } });
    expect(b.status).toBe(422);
    expect(b.body.errors[0].message).toContain('beta -> alpha -> beta');
  });

  it('creates destinations and connections, listed with status and sync status; every service sees the config', async () => {
    const bad = await api('POST', `/spaces/${spaceId}/destinations`, { name: 'Hook', type: 'webhook', settings: {} });
    expect(bad.status).toBe(422);
    expect(bad.body.errors[0].field).toBe('settings.url');
    const dst = await api('POST', `/spaces/${spaceId}/destinations`, { name: 'Hook', type: 'webhook', settings: { url: 'http://127.0.0.1:9/hook' }, rateLimit: { requestsPerSecond: 5 } });
    expect(dst.status).toBe(201);
    const aud = await api('POST', `/spaces/${spaceId}/audiences`, { name: 'Buyers', definition: { query: "event('Order Completed').count() >= 1", type: 'users' } });
    const audId = aud.body.data.audience.id;
    const con = await api('POST', `/spaces/${spaceId}/audiences/${audId}/destinations`, { destinationId: dst.body.data.destination.id, settings: { identify: true, track: true } });
    expect(con.status).toBe(201);
    const listed = await api('GET', `/spaces/${spaceId}/audiences/${audId}/destinations`);
    expect(listed.body.data.connections).toEqual([
      expect.objectContaining({ destinationId: dst.body.data.destination.id, status: 'Connected', syncStatus: expect.objectContaining({ state: 'Pending' }) }),
    ]);

    // An independent reader of engage.config (as every other service is) sees it all.
    const log = silentLogger();
    const infra = testInfrastructure();
    const reader = new ConfigStore(
      { topic: topicRegistry(prefix).config.name, groupPrefix: 'test' },
      { kafka: createKafka({ brokers: infra.kafkaBrokers, clientId: 'cp-test' }, { log }), codec: new SchemaCodec({ url: infra.schemaRegistryUrl }), log },
    );
    await reader.start();
    await waitFor(() => reader.list('connection', spaceId).length === 1, { description: 'connection in engage.config' });
    expect(reader.get('audience', audId)?.key).toBe('buyers');
    await reader.stop();
  });
});
