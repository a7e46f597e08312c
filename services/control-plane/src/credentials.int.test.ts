// CONTRACT.md section 7 on the control plane: write-only destination secrets,
// destination hosts (SSRF) and per-space Profile API access tokens. The built
// service runs as a process on the real infrastructure; engage.config is read
// back by an independent ConfigStore, as the dispatchers read it.
import { createHash } from 'node:crypto';
import { ConfigStore } from '@engage/config-store';
import { createKafka, topicRegistry } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { SchemaCodec } from '@engage/schemas';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';

const TOKEN = 'credentials-test-token';
const MASK = '********';
let proc: ServiceProcess;
let base: string;
let reader: ConfigStore;
let spaceId: string;

async function api(method: string, path: string, body?: unknown, token = TOKEN) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  const infra = testInfrastructure();
  const prefix = `${uniqueName('cpsec')}.`;
  proc = startService('control-plane', {
    KAFKA_BROKERS: infra.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl,
    REDIS_URL: infra.redisUrl,
    TOPIC_PREFIX: prefix,
    REDIS_KEY_PREFIX: prefix,
    CONTROL_PLANE_PORT: '0',
    CONTROL_PLANE_TOKEN: TOKEN,
    // Some private ranges and a name are allowed; loopback is not, so `localhost` must be refused.
    DESTINATION_ALLOWED_HOSTS: '10.1.0.0/16,fd12::/16,hooks.internal',
  });
  base = `http://127.0.0.1:${await proc.port()}`;
  const log = silentLogger();
  // Reads as a dispatcher does (secrets kept: delivery needs them).
  reader = new ConfigStore(
    { topic: topicRegistry(prefix).config.name, groupPrefix: 'test', destinationSecrets: 'keep' },
    {
      kafka: createKafka({ brokers: infra.kafkaBrokers, clientId: 'cp-credentials-test' }, { log }),
      codec: new SchemaCodec({ url: infra.schemaRegistryUrl }),
      log,
    },
  );
  await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { description: 'control plane ready' });
  await reader.start();
  spaceId = (await api('POST', '/spaces', { name: 'Credentials' })).body.data.space.id;
});
afterAll(async () => {
  await reader?.stop();
  await proc?.stop();
});

describe('destination hosts (SSRF)', () => {
  it('refuses loopback, private, link-local and unspecified hosts that the allow-list does not hold, naming the field', async () => {
    const refused = [
      'http://127.0.0.1:9/a',
      'http://localhost:9/a', // a name that resolves to 127.0.0.1
      'http://[::1]/a',
      'http://2130706433/a', // 127.0.0.1 spelled as a number
      'http://[::ffff:127.0.0.1]/a',
      'http://10.2.0.1/a',
      'http://172.16.0.1/a',
      'http://192.168.0.1/a',
      'http://169.254.169.254/latest/meta-data',
      'http://[fe80::1]/a',
      'http://[fd00::1]/a',
      'http://0.0.0.0:9/a',
    ];
    const answers = [];
    for (const url of refused) {
      const res = await api('POST', `/spaces/${spaceId}/destinations`, { name: 'Inside', type: 'webhook', settings: { url } });
      answers.push({ url, status: res.status, errors: res.body.errors });
    }
    expect(answers).toEqual(
      refused.map((url) => ({
        url,
        status: 422,
        errors: [
          {
            type: 'refused-host',
            field: 'settings.url',
            message: expect.stringMatching(/^settings\.url: \S+ is an? (loopback|private|link-local|unspecified) address/),
          },
        ],
      })),
    );
    const viaName = answers[1]!.errors[0].message;
    expect(viaName).toMatch(/loopback address \(localhost resolves to it\)/);
    // Every kind of destination and every URL setting is held to it, on create and on edit.
    const list = await api('POST', `/spaces/${spaceId}/destinations`, {
      name: 'Lists',
      type: 'list-webhook',
      settings: { url: 'http://192.168.1.10/lists' },
    });
    expect([list.status, list.body.errors[0].field]).toEqual([422, 'settings.url']);
    const fb = await api('POST', `/spaces/${spaceId}/destinations`, {
      name: 'FB',
      type: 'facebook-custom-audiences',
      settings: { accessToken: 't', adAccountId: 'act_1', apiBaseUrl: 'http://169.254.169.254' },
    });
    expect([fb.status, fb.body.errors[0].field]).toEqual([422, 'settings.apiBaseUrl']);
    expect(reader.list('destination', spaceId)).toEqual([]);
  });

  it('admits public addresses and what DESTINATION_ALLOWED_HOSTS allows; an edit to a refused host is refused', async () => {
    const admitted = ['http://10.1.2.3/a', 'http://[fd12::1]/a', 'http://hooks.internal/a', 'https://93.184.216.34/a'];
    const statuses = [];
    for (const url of admitted)
      statuses.push((await api('POST', `/spaces/${spaceId}/destinations`, { name: url, type: 'webhook', settings: { url } })).status);
    expect(statuses).toEqual([201, 201, 201, 201]);
    const dst = (await api('GET', `/spaces/${spaceId}/destinations`)).body.data.destinations[0];
    const edit = await api('PATCH', `/spaces/${spaceId}/destinations/${dst.id}`, { settings: { url: 'http://10.9.9.9/a' } });
    expect(edit).toEqual({
      status: 422,
      body: { errors: [expect.objectContaining({ type: 'refused-host', field: 'settings.url' })] },
    });
    // Disabling needs no host check (a narrower allow-list must not pin a destination on).
    expect((await api('PATCH', `/spaces/${spaceId}/destinations/${dst.id}`, { enabled: false })).status).toBe(200);
  });
});

describe('write-only destination secrets', () => {
  it('masks secrets in every answer, keeps a secret sent back as the mask, and leaves the real values in engage.config', async () => {
    const settings = {
      url: 'http://10.1.0.5/hook',
      headers: { Authorization: 'Bearer hook-secret-1', 'x-team': 'growth' },
    };
    const created = await api('POST', `/spaces/${spaceId}/destinations`, { name: 'Secret Hook', type: 'webhook', settings });
    expect(created.status).toBe(201);
    const masked = { url: 'http://10.1.0.5/hook', headers: { Authorization: MASK, 'x-team': MASK } };
    expect(created.body.data.destination.settings).toEqual(masked);
    const id = created.body.data.destination.id;
    expect((await api('GET', `/spaces/${spaceId}/destinations/${id}`)).body.data.destination.settings).toEqual(masked);
    const listed = (await api('GET', `/spaces/${spaceId}/destinations`)).body.data.destinations.find((d: any) => d.id === id);
    expect(listed.settings).toEqual(masked);

    // A client that edits what it read sends the masks back: the stored secret stays, the new value lands.
    const patched = await api('PATCH', `/spaces/${spaceId}/destinations/${id}`, {
      settings: { url: 'http://10.1.0.6/hook', headers: { Authorization: MASK, 'x-team': 'ops' } },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.data.destination.settings).toEqual({
      url: 'http://10.1.0.6/hook',
      headers: { Authorization: MASK, 'x-team': MASK },
    });
    // The dispatchers read engage.config: it holds the real values.
    await waitFor(() => (reader.get('destination', id)?.settings.url as string) === 'http://10.1.0.6/hook', {
      description: 'edit in engage.config',
    });
    expect(reader.get('destination', id)!.settings).toEqual({
      url: 'http://10.1.0.6/hook',
      headers: { Authorization: 'Bearer hook-secret-1', 'x-team': 'ops' },
    });

    // A token setting is masked the same way, and a PATCH that sends only masks writes nothing.
    const fb = await api('POST', `/spaces/${spaceId}/destinations`, {
      name: 'FB Secret',
      type: 'facebook-custom-audiences',
      settings: { accessToken: 'EAAB-secret-2', adAccountId: 'act_1' },
    });
    expect(fb.body.data.destination.settings).toEqual({ accessToken: MASK, adAccountId: 'act_1' });
    const fbId = fb.body.data.destination.id;
    await waitFor(() => reader.get('destination', fbId) !== undefined, { description: 'fb destination in engage.config' });
    const version = reader.getStored('destination', fbId)!.version;
    const same = await api('PATCH', `/spaces/${spaceId}/destinations/${fbId}`, { settings: { accessToken: MASK, adAccountId: 'act_1' } });
    expect(same.body.data.destination.settings).toEqual({ accessToken: MASK, adAccountId: 'act_1' });
    expect(reader.getStored('destination', fbId)!.version).toBe(version);
    expect(reader.get('destination', fbId)!.settings.accessToken).toBe('EAAB-secret-2');

    // The mask where no secret is stored would send "********" to the destination: refused.
    const noStored = await api('POST', `/spaces/${spaceId}/destinations`, {
      name: 'Copied',
      type: 'webhook',
      settings: { url: 'http://10.1.0.7/hook', headers: { Authorization: MASK } },
    });
    expect([noStored.status, noStored.body.errors[0].field]).toEqual([422, 'settings.headers.Authorization']);
    // ...and the secrets never reached the control plane's log.
    const logged = JSON.stringify(proc.logs);
    expect([logged.includes('hook-secret-1'), logged.includes('EAAB-secret-2')]).toEqual([false, false]);
  });
});

describe('Profile API access tokens', () => {
  const profileApi = async (space: string, token: string) =>
    (
      await fetch(`${base}/v1/spaces/${space}/collections/users/profiles/user_id:nobody/traits`, {
        headers: { authorization: `Basic ${Buffer.from(`${token}:`).toString('base64')}` },
      })
    ).status;

  it('creates a token shown once, lists it without the token, lets it read its own space only, and revokes it', async () => {
    const other = (await api('POST', '/spaces', { name: 'Other' })).body.data.space.id;
    const created = await api('POST', `/spaces/${spaceId}/access-tokens`, { name: 'CRM sync' });
    expect(created).toEqual({
      status: 201,
      body: {
        data: {
          accessToken: {
            id: expect.stringMatching(/^tok_/),
            name: 'CRM sync',
            token: expect.stringMatching(/^[0-9A-Za-z]{43}$/),
            createdAt: expect.any(String),
          },
        },
      },
    });
    const { id, token } = created.body.data.accessToken;
    const listed = await api('GET', `/spaces/${spaceId}/access-tokens`);
    expect(listed.body.data.accessTokens).toEqual([{ id, name: 'CRM sync', createdAt: expect.any(String) }]);
    expect(JSON.stringify(listed.body)).not.toContain(token);
    // The space shows no tokens; engage.config holds only the token's sha256.
    expect(Object.keys((await api('GET', `/spaces/${spaceId}`)).body.data.space).sort()).toEqual(['createdAt', 'id', 'name', 'updatedAt']);
    await waitFor(() => (reader.get('space', spaceId)?.accessTokens?.length ?? 0) === 1, { description: 'token in engage.config' });
    expect(JSON.stringify(reader.get('space', spaceId))).not.toContain(token);
    expect(reader.get('space', spaceId)!.accessTokens![0]!.tokenHash).toBe(createHash('sha256').update(token).digest('hex'));

    // 404 (no such profile) means authenticated; 401 means not.
    expect({
      own: await profileApi(spaceId, token),
      admin: await profileApi(spaceId, TOKEN),
      otherSpace: await profileApi(other, token),
      wrong: await profileApi(spaceId, `${token}x`),
      asAdminBearer: (await api('GET', `/spaces/${spaceId}/access-tokens`, undefined, token)).status,
    }).toEqual({ own: 404, admin: 404, otherSpace: 401, wrong: 401, asAdminBearer: 401 });

    expect(await api('DELETE', `/spaces/${spaceId}/access-tokens/${id}`)).toEqual({ status: 200, body: { data: { status: 'SUCCESS' } } });
    expect(await profileApi(spaceId, token)).toBe(401);
    expect((await api('GET', `/spaces/${spaceId}/access-tokens`)).body.data.accessTokens).toEqual([]);
    expect((await api('DELETE', `/spaces/${spaceId}/access-tokens/${id}`)).status).toBe(404);
    expect((await api('POST', `/spaces/${spaceId}/access-tokens`, {})).body.errors[0].field).toBe('name');
  });
});
