// The event tester (issue 20 item 4, CONTRACT.md section 9) over real HTTP:
// the built control plane sends one call, built as the destination receives
// it, to local receivers (one answering 200, one 500, a closed port) and to
// an emulator of Braze's API reached through DESTINATION_HTTP_OVERRIDES, and
// shows the request (secrets masked) and the answer; the 400s; list
// destinations (a list webhook answering 200 and 500, Facebook Custom
// Audiences on its emulator) getting the add their list sync sends; and
// `engage test-destination` doing the same from a terminal.
import { createHash } from 'node:crypto';
import { runCli } from '@engage/cli';
import { createRedis, type RedisClient } from '@engage/redis';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';
import { Receiver } from '../services/dispatcher/src/testing/receiver';
import { brazeEmulator, type Emulator } from '../services/dispatcher/src/testing/vendor-emulators';
import { controlPlaneApi, deliveryEnv, type Api } from './helpers/delivery-harness';
import { FacebookEmulator } from './helpers/facebook-emulator';

const TOKEN = 'event-tester-token';
const MASK = '********';
const SECRET = 'Bearer hook-s3cret';
const BRAZE = 'rest.iad-01.braze.com';
const prefix = `${uniqueName('evt')}.`;
let cp: ServiceProcess;
let base: string;
let api: Api;
let ok: Receiver;
let failing: Receiver;
let braze: Emulator;
let spaceId: string;
let redis: RedisClient;
const hooks: Record<'ok' | 'failing' | 'closed', { id: string; name: string }> = {} as never;

const test = (destinationId: string, body: unknown) => api('POST', `/spaces/${spaceId}/destinations/${destinationId}/test`, body);

beforeAll(async () => {
  ok = await new Receiver().start();
  failing = await new Receiver(() => ({ status: 500, headers: { 'x-vendor': 'down' }, body: { error: 'boom' } })).start();
  braze = await brazeEmulator('braze-key');
  redis = createRedis({ url: testInfrastructure().redisUrl });
  cp = startService('control-plane', deliveryEnv(prefix, TOKEN, { DESTINATION_HTTP_OVERRIDES: JSON.stringify({ [BRAZE]: braze.target }) }));
  base = `http://127.0.0.1:${await cp.port()}`;
  api = controlPlaneApi(base, TOKEN);
  spaceId = (await api('POST', '/spaces', { name: 'Event tester' })).data.space.id;
  const hook = async (name: string, url: string) =>
    (
      await api('POST', `/spaces/${spaceId}/destinations`, {
        name,
        type: 'webhook',
        settings: { url, headers: { authorization: SECRET } },
        // A limit: the tester takes its token from the dispatchers' shared bucket.
        rateLimit: { requestsPerSecond: 50 },
      })
    ).data.destination;
  hooks.ok = await hook('Hook OK', `${ok.url}/hook`);
  hooks.failing = await hook('Hook Down', `${failing.url}/hook`);
  // Port 9 (discard) on loopback: nothing listens, the connection is refused.
  hooks.closed = await hook('Hook Closed', 'http://127.0.0.1:9/hook');
});
afterAll(async () => {
  await cp?.stop();
  redis?.disconnect();
  await Promise.all([ok?.stop(), failing?.stop(), braze?.receiver.stop()]);
});

describe('POST /spaces/{spaceId}/destinations/{id}/test', () => {
  it('sends an identify as the webhook receives it and shows the request (secret masked) and the 200', async () => {
    const { data } = await test(hooks.ok.id, { type: 'identify', userId: 'u-1', traits: { plan: 'pro' }, computationKey: 'vip' });
    expect(ok.requests).toHaveLength(1);
    const arrived = ok.requests[0]!;
    // The receiver got the real secret; the answer shows it masked, and the body exactly as sent.
    expect(arrived.headers.authorization).toBe(SECRET);
    expect(data.request).toEqual({
      url: `${ok.url}/hook`,
      method: 'POST',
      headers: expect.objectContaining({ authorization: MASK, 'content-type': 'application/json' }),
      body: arrived.body,
    });
    expect(arrived.body).toEqual({
      type: 'identify',
      userId: 'u-1',
      messageId: expect.stringMatching(/^personas_[0-9a-f]{32}$/),
      timestamp: expect.any(String),
      traits: { vip: true, plan: 'pro' },
      context: {
        personas: {
          computation_class: 'audience',
          computation_id: 'event_tester',
          computation_key: 'vip',
          namespace: spaceId,
          space_id: spaceId,
        },
      },
      integrations: { All: false, 'Hook OK': true },
    });
    expect(data.response).toEqual({
      status: 200,
      headers: expect.objectContaining({ 'content-type': 'application/json' }),
      body: { ok: true },
    });
    expect(data.error).toBeUndefined();
    expect(typeof data.durationMs).toBe('number');
    // The send took a token from the bucket the destination's dispatchers share (services/dispatcher rate-limiter.ts).
    expect(await redis.zcard(`${prefix}dispatch:bucket:{${hooks.ok.id}}:log`)).toBe(1);
  });

  it('shows a 500 with its headers and body, sent once (no retries), with a generated test user id', async () => {
    const { data } = await test(hooks.failing.id, { type: 'track', properties: { source: 'tester' } });
    expect(failing.requests).toHaveLength(1);
    const arrived = failing.requests[0]!;
    expect(arrived.body).toMatchObject({
      type: 'track',
      event: 'Audience Entered',
      userId: expect.stringMatching(/^test_user_[0-9a-f]{8}$/),
      properties: { audience_key: 'event_tester', event_tester: true, source: 'tester' },
      integrations: { All: false, 'Hook Down': true },
    });
    expect(data.request.body).toEqual(arrived.body);
    expect(data.request.headers.authorization).toBe(MASK);
    expect(data.response).toEqual({
      status: 500,
      headers: expect.objectContaining({ 'x-vendor': 'down' }),
      body: { error: 'boom' },
    });
  });

  it('answers the error when no answer comes', async () => {
    const { data } = await test(hooks.closed.id, { type: 'identify', userId: 'u-2' });
    expect(data.request).toMatchObject({ url: 'http://127.0.0.1:9/hook', method: 'POST', headers: { authorization: MASK } });
    expect(data.response).toBeUndefined();
    expect(data.error).toMatch(/^network error/);
  });

  it('runs an Actions destination through its mapping: Braze /users/track, the API key masked', async () => {
    const braz = (
      await api('POST', `/spaces/${spaceId}/destinations`, {
        name: 'Braze',
        type: 'actions',
        slug: 'braze',
        settings: { api_key: 'braze-key', app_id: 'app-1', endpoint: `https://${BRAZE}` },
      })
    ).data.destination;
    const { data } = await test(braz.id, { type: 'identify', userId: 'u-braze', computationKey: 'vip' });
    expect(braze.receiver.requests).toHaveLength(1);
    const arrived = braze.receiver.requests[0]!;
    expect(arrived.path).toBe('/users/track');
    expect(arrived.headers.authorization).toBe('Bearer braze-key');
    expect(arrived.body.attributes).toEqual([expect.objectContaining({ external_id: 'u-braze', vip: true })]);
    expect(data.request).toEqual({
      url: `https://${BRAZE}/users/track`,
      method: 'POST',
      headers: expect.objectContaining({ authorization: MASK }),
      body: arrived.body,
    });
    expect(data.response).toMatchObject({ status: 201, body: { message: 'success', attributes_processed: 1 } });
    expect(data.error).toBeUndefined();
  });

  it("shows an Actions destination's refusal: Braze's 401 for a wrong API key", async () => {
    const wrong = (
      await api('POST', `/spaces/${spaceId}/destinations`, {
        name: 'Braze Wrong Key',
        type: 'actions',
        slug: 'braze',
        settings: { api_key: 'not-the-key', app_id: 'app-1', endpoint: `https://${BRAZE}` },
      })
    ).data.destination;
    const { data } = await test(wrong.id, { type: 'identify', userId: 'u-braze-2' });
    expect(braze.receiver.requests[braze.receiver.requests.length - 1]!.status).toBe(401);
    expect(data.request.headers.authorization).toBe(MASK);
    expect(data.response).toMatchObject({ status: 401, body: { message: expect.stringContaining('Invalid API key') } });
  });

  it('refuses a bad body with 400 naming the field, and an unknown destination with 404', async () => {
    const fields = async (body: unknown) => ((await test(hooks.ok.id, body)).errors ?? []).map((e: { field?: string }) => e.field);
    expect(await fields({})).toEqual(['type']);
    expect(await fields({ type: 'page' })).toEqual(['type']);
    expect(await fields({ type: 'track', traits: 'x' })).toEqual(['traits']);
    expect(await fields({ type: 'track', computationKey: 'Not A Key' })).toEqual(['computationKey']);
    expect(await fields({ type: 'track', color: 'red' })).toEqual(['color']);
    const res = await fetch(`${base}/spaces/${spaceId}/destinations/${hooks.ok.id}/test`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'track', userId: 7 }),
    });
    expect(res.status).toBe(400);
    expect(((await test('dst_nope', { type: 'track' })).errors as Array<{ type: string }>)[0]!.type).toBe('not-found');
    expect(ok.requests).toHaveLength(1); // nothing more was sent
  });
});

describe('list destinations: the add their list sync sends for the test user', () => {
  let listOk: Receiver;
  let listFailing: Receiver;
  let fb: FacebookEmulator;
  const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
  const destination = async (body: unknown) => (await api('POST', `/spaces/${spaceId}/destinations`, body)).data.destination;
  beforeAll(async () => {
    listOk = await new Receiver().start();
    listFailing = await new Receiver(() => ({ status: 500, headers: { 'x-vendor': 'down' }, body: { error: 'list boom' } })).start();
    fb = await new FacebookEmulator({ token: 'fb-t0ken' }).start();
  });
  afterAll(async () => {
    await Promise.all([listOk?.stop(), listFailing?.stop(), fb?.stop()]);
  });

  it('list-webhook answering 200: one add {audience_key, audience_id, add, remove} for the userId, shown with its secret masked', async () => {
    const hook = await destination({
      name: 'List Hook OK',
      type: 'list-webhook',
      settings: { url: `${listOk.url}/list`, headers: { authorization: SECRET } },
      rateLimit: { requestsPerSecond: 50 },
    });
    // No type: a list destination gets an add whatever the call would be; traits.email is not a list-webhook identifier.
    const { data } = await test(hook.id, { userId: 'u-list', traits: { email: 'ann@example.com' }, computationKey: 'vip' });
    expect(listOk.requests).toHaveLength(1);
    const arrived = listOk.requests[0]!;
    expect(arrived.headers.authorization).toBe(SECRET);
    expect(arrived.body).toEqual({ audience_key: 'vip', audience_id: 'event_tester', add: ['u-list'], remove: [] });
    expect(data.request).toEqual({
      url: `${listOk.url}/list`,
      method: 'POST',
      headers: expect.objectContaining({ authorization: MASK, 'content-type': 'application/json' }),
      body: arrived.body,
    });
    expect(data.response).toEqual({
      status: 200,
      headers: expect.objectContaining({ 'content-type': 'application/json' }),
      body: { ok: true },
    });
    expect(data.exchanges).toEqual([{ request: data.request, response: data.response }]);
    expect(data.list).toEqual({ audience: { id: 'event_tester', name: 'vip' }, sent: [{ type: 'user_id', value: 'u-list' }], failed: [] });
    expect(data.error).toBeUndefined();
    expect(await redis.zcard(`${prefix}dispatch:bucket:{${hook.id}}:log`)).toBe(1);
  });

  it('list-webhook answering 500: the status, headers and body, sent once, for a generated user in the default test list', async () => {
    const hook = await destination({ name: 'List Hook Down', type: 'list-webhook', settings: { url: `${listFailing.url}/list` } });
    const { data } = await test(hook.id, { type: 'track' });
    expect(listFailing.requests).toHaveLength(1);
    const arrived = listFailing.requests[0]!;
    expect(arrived.body).toEqual({
      audience_key: 'event_tester',
      audience_id: 'event_tester',
      add: [expect.stringMatching(/^test_user_[0-9a-f]{8}$/)],
      remove: [],
    });
    expect(data.request).toMatchObject({ url: `${listFailing.url}/list`, method: 'POST', body: arrived.body });
    expect(data.response).toEqual({
      status: 500,
      headers: expect.objectContaining({ 'x-vendor': 'down' }),
      body: { error: 'list boom' },
    });
    expect(data.exchanges).toHaveLength(1);
    expect(data.list.failed).toEqual([]);
  });

  it('Facebook Custom Audiences: creates (then finds) a test audience as the adapter does, and adds the hashed email and phone', async () => {
    const settings = { accessToken: 'fb-t0ken', adAccountId: 'act_1234', apiBaseUrl: fb.url };
    const dst = await destination({ name: 'FB Test', type: 'facebook-custom-audiences', settings });
    const body = { userId: 'u-fb', traits: { email: ' Ann@Example.COM ', phone: '+1 (555) 010-0200' }, computationKey: 'vip' };
    const { data } = await test(dst.id, body);
    expect(fb.audiences.size).toBe(1);
    const [[audienceId, audience]] = [...fb.audiences];
    expect(audience!.name).toBe('Engage event tester: vip');
    const email = sha256('ann@example.com');
    const phone = sha256('15550100200');
    expect([...audience!.members].sort()).toEqual([email, phone].sort());
    expect(fb.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'POST /v19.0/act_1234/customaudiences 200',
      `POST /v19.0/${audienceId}/users 200`,
      `POST /v19.0/${audienceId}/users 200`,
    ]);
    const headers = expect.objectContaining({ authorization: MASK });
    expect(data.exchanges).toEqual([
      {
        request: {
          url: `${fb.url}/act_1234/customaudiences`,
          method: 'POST',
          headers,
          body: {
            name: 'Engage event tester: vip',
            subtype: 'CUSTOM',
            description: 'Engage audience vip (event_tester)',
            customer_file_source: 'USER_PROVIDED_ONLY',
          },
        },
        response: { status: 200, headers: expect.any(Object), body: { id: audienceId } },
      },
      {
        request: {
          url: `${fb.url}/${audienceId}/users`,
          method: 'POST',
          headers,
          body: { payload: { schema: 'EMAIL_SHA256', data: [email] } },
        },
        response: expect.objectContaining({ status: 200, body: expect.objectContaining({ num_received: 1, num_invalid_entries: 0 }) }),
      },
      {
        request: {
          url: `${fb.url}/${audienceId}/users`,
          method: 'POST',
          headers,
          body: { payload: { schema: 'PHONE_SHA256', data: [phone] } },
        },
        response: expect.objectContaining({ status: 200, body: expect.objectContaining({ num_received: 1, num_invalid_entries: 0 }) }),
      },
    ]);
    expect(data.request).toEqual(data.exchanges[2].request);
    expect(data.response).toEqual(data.exchanges[2].response);
    expect(data.list).toEqual({
      audience: { id: audienceId, name: 'Engage event tester: vip' },
      sent: [
        { type: 'email', value: email },
        { type: 'phone', value: phone },
      ],
      failed: [],
    });
    expect(data.error).toBeUndefined();
    expect(JSON.stringify(data)).not.toContain('fb-t0ken');

    // Again: the remembered test audience is found (GET), not created twice.
    const again = (await test(dst.id, { userId: 'u-fb-2', traits: { email: 'bo@example.com' }, computationKey: 'vip' })).data;
    expect(fb.audiences.size).toBe(1);
    expect(again.exchanges.map((x: { request: { method: string; url: string } }) => `${x.request.method} ${x.request.url}`)).toEqual([
      `GET ${fb.url}/${audienceId}?fields=id,name`,
      `POST ${fb.url}/${audienceId}/users`,
    ]);
    expect(audience!.members.has(sha256('bo@example.com'))).toBe(true);
  });

  it('Facebook: a refused token shows the 401 on the audience creation; a user without email or phone says what it needs', async () => {
    const settings = { accessToken: 'expired', adAccountId: 'act_1234', apiBaseUrl: fb.url };
    const dst = await destination({ name: 'FB Expired', type: 'facebook-custom-audiences', settings });
    const { data } = await test(dst.id, { traits: { email: 'ann@example.com' } });
    expect(data.request).toMatchObject({ url: `${fb.url}/act_1234/customaudiences`, method: 'POST', headers: { authorization: MASK } });
    expect(data.response).toMatchObject({ status: 401, body: { error: { code: 190 } } });
    expect(data.list).toEqual({ audience: null, sent: [], failed: [] });
    expect(JSON.stringify(data)).not.toContain('expired');

    const before = fb.requests.length;
    const none = (await test(dst.id, { userId: 'u-no-email' })).data;
    expect(fb.requests).toHaveLength(before);
    expect(none.request).toBeNull();
    expect(none.error).toMatch(/^facebook-custom-audiences matches on email, phone, ios.idfa, android.idfa: the test user has none/);
  });

  it('engage test-destination prints a list test: the earlier requests, the audience and the identifiers added', async () => {
    const settings = { accessToken: 'fb-t0ken', adAccountId: 'act_1234', apiBaseUrl: fb.url };
    const dst = await destination({ name: 'FB CLI', type: 'facebook-custom-audiences', settings });
    let out = '';
    const code = await runCli(
      [
        'test-destination',
        '--space',
        spaceId,
        '--destination',
        dst.id,
        '--traits',
        '{"email":"cli@example.com"}',
        '--url',
        base,
        '--token',
        TOKEN,
      ],
      { env: {}, out: (t) => (out += t), err: () => undefined },
    );
    expect(code).toBe(0);
    expect(out).toMatch(new RegExp(`^before: POST ${fb.url}/act_1234/customaudiences -> 200\n`));
    expect(out).toMatch(/\nlist: audience \d+ \(Engage event tester: event_tester\)\n/);
    expect(out).toContain(`  added email: ${sha256('cli@example.com')}\n`);
    expect(out).toMatch(/\nrequest: POST .*\/users\n/);
    expect(out).not.toContain('fb-t0ken');
  });

  it('a list destination needs no type; an event destination still does (400)', async () => {
    expect((await test(hooks.ok.id, { userId: 'u-x' })).errors).toEqual([expect.objectContaining({ field: 'type' })]);
  });
});

describe('the destination host guard at send time', () => {
  it('refuses (422, nothing sent) on a control plane whose allow list no longer admits the host', async () => {
    // A second control plane on the same engage.config, allowing no private host (the deploy/ default).
    const strict = startService('control-plane', deliveryEnv(prefix, TOKEN, { DESTINATION_ALLOWED_HOSTS: '' }));
    try {
      const strictApi = controlPlaneApi(`http://127.0.0.1:${await strict.port()}`, TOKEN);
      const path = `/spaces/${spaceId}/destinations/${hooks.ok.id}`;
      await waitFor(async () => (await strictApi('GET', path)).data !== undefined, {
        description: 'destination read by the second control plane',
      });
      const before = ok.requests.length;
      const answer = await strictApi('POST', `${path}/test`, { type: 'identify', userId: 'u-guard' });
      expect(answer.errors).toEqual([expect.objectContaining({ type: 'refused-host', field: 'settings.url' })]);
      expect(ok.requests).toHaveLength(before);
    } finally {
      await strict.stop();
    }
  });
});

describe('engage test-destination', () => {
  const run = async (...args: string[]) => {
    let out = '';
    let err = '';
    const code = await runCli(['test-destination', '--space', spaceId, ...args, '--url', base, '--token', TOKEN], {
      env: {},
      out: (t) => (out += t),
      err: (t) => (err += t),
    });
    return { code, out, err };
  };

  it('prints the request and the answer; exit 0 on a 2xx, 1 otherwise, 2 on bad usage', async () => {
    const good = await run('--destination', hooks.ok.id, '--type', 'track', '--user-id', 'u-cli', '--properties', '{"plan":"pro"}');
    expect(good.code).toBe(0);
    expect(good.out).toContain(`request: POST ${ok.url}/hook`);
    expect(good.out).toContain(`authorization: ${MASK}`);
    expect(good.out).not.toContain(SECRET);
    expect(good.out).toMatch(/response: 200 after \d+ ms/);
    expect(ok.requests[ok.requests.length - 1]!.body).toMatchObject({ userId: 'u-cli', properties: { plan: 'pro' } });

    const down = await run('--destination', hooks.failing.id, '--type', 'identify');
    expect(down.code).toBe(1);
    expect(down.out).toMatch(/response: 500 after \d+ ms/);
    expect(down.out).toContain('"error": "boom"');

    const usage = await run('--destination', hooks.ok.id, '--type', 'page');
    expect(usage.code).toBe(2);
    expect(usage.err).toContain('--type must be identify or track');
  });
});
