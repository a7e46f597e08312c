// Actions destinations for CRM and messaging vendors (issue 19 items 1 and
// 8): an audience entry and exit through the dispatch step to the vendor's
// requests, run by Segment's own definition over real HTTP to an emulator of
// the vendor's documented API (DESTINATION_HTTP_OVERRIDES sends the vendor
// host there). Real Redis, an injected clock for the retry schedule.
import { createExternalAudience } from '@engage/actions';
import type { ActionMapping } from '@engage/config-store';
import { actionsTestbed, actionsFixture, mappingOf, statusHash, withEmail } from './testing/actions-fixture';
import { intercomEmulator, klaviyoEmulator, pardotEmulator, salesforceEmulator } from './testing/crm-emulators';
import { AUDIENCE, SPACE, type Fixture } from './testing/dispatch-fixture';
import type { Emulator } from './testing/vendor-emulators';

const { redis, ctx, emulators, runtimes } = actionsTestbed();

const setup = (
  slug: string,
  hosts: Record<string, Emulator>,
  settings: Record<string, unknown>,
  mappings: ActionMapping[],
  connection = { identify: true, track: false },
  externalAudienceId?: string,
) => {
  emulators.push(...Object.values(hosts));
  const fx = actionsFixture(redis, { slug, hosts, settings, mappings, connection, externalAudienceId });
  runtimes.push(fx.actions);
  return fx;
};
const statusOf = (fx: Fixture) => statusHash(redis, fx);

describe('Intercom (Actions, OAuth access token): the audience as a custom attribute of the contact', () => {
  const INTERCOM = 'api.intercom.io';
  const settings = { oauth: { access_token: 'ic-token' } };
  // Intercom's definition has no presets: the mapping a user adds for identify calls, the audience key as a custom attribute.
  const identify = mappingOf('intercom', 'identifyContact', 'type = "identify"', {
    role: 'user',
    custom_attributes: { [AUDIENCE.key]: { '@path': `$.traits.${AUDIENCE.key}` } },
  });

  it('an entry searches by external_id and creates the contact with the attribute true; the exit finds it and updates it to false', async () => {
    const intercom = await intercomEmulator('ic-token', [AUDIENCE.key]);
    const fx = setup('intercom', { [INTERCOM]: intercom }, settings, identify);
    const outcomes = await fx.step.handle([fx.consumed(withEmail('i1', true), 0), fx.consumed(withEmail('i1', false), 1)], ctx);
    expect(outcomes).toEqual([{ kind: 'ok' }, { kind: 'ok' }]);
    const search = { query: { field: 'external_id', operator: '=', value: 'u-i1' } };
    const contact = { role: 'user', external_id: 'u-i1', email: 'i1@example.com', last_seen_at: expect.any(Number) };
    expect(intercom.receiver.requests.map((r) => [r.method, r.path, r.status, r.headers.authorization, r.headers.host, r.body])).toEqual([
      ['POST', '/contacts/search', 200, 'Bearer ic-token', INTERCOM, search],
      ['POST', '/contacts', 200, 'Bearer ic-token', INTERCOM, { ...contact, custom_attributes: { [AUDIENCE.key]: true } }],
      ['POST', '/contacts/search', 200, 'Bearer ic-token', INTERCOM, search],
      ['PUT', '/contacts/contact-1', 200, 'Bearer ic-token', INTERCOM, { ...contact, custom_attributes: { [AUDIENCE.key]: false } }],
    ]);
    expect(intercom.contacts.get('contact-1')).toMatchObject({ external_id: 'u-i1', custom_attributes: { [AUDIENCE.key]: false } });
    expect(fx.letters).toEqual([]);
  });

  it('retries a 429 after its Retry-After; a refused token is dead-lettered and flagged; an undefined attribute is dead-lettered with the message', async () => {
    const intercom = await intercomEmulator('ic-token', [AUDIENCE.key]);
    intercom.faults.push({
      status: 429,
      headers: { 'retry-after': '2' },
      body: { type: 'error.list', errors: [{ code: 'rate_limit_exceeded', message: 'Exceeded rate limit' }] },
    });
    const fx = setup('intercom', { [INTERCOM]: intercom }, settings, identify);
    expect(await fx.step.handle([fx.consumed(withEmail('i2', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    fx.clock.now += 1999;
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    expect(await fx.drain()).toBe(1);
    expect(intercom.receiver.requests.map((r) => [r.path, r.status])).toEqual([
      ['/contacts/search', 429],
      ['/contacts/search', 200],
      ['/contacts', 200],
    ]);

    const revoked = setup(
      'intercom',
      { [INTERCOM]: await intercomEmulator('ic-token', [AUDIENCE.key]) },
      { oauth: { access_token: 'old' } },
      identify,
    );
    expect(await revoked.step.handle([revoked.consumed(withEmail('i3', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\)/), step: 'deliver' },
    ]);
    expect(await statusOf(revoked)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });

    const noAttribute = setup('intercom', { [INTERCOM]: await intercomEmulator('ic-token', []) }, settings, identify);
    expect(await noAttribute.step.handle([noAttribute.consumed(withEmail('i4', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: .*Custom attribute 'vip' does not exist/), step: 'deliver' },
    ]);
  });
});

describe('Klaviyo (Actions audience destination): the list created through the definition, profiles added and removed', () => {
  const KLAVIYO = 'a.klaviyo.com';
  const settings = { api_key: 'pk_live' };
  const track = { identify: false, track: true };
  // The definition's automatic presets are event-specific (warehouse, journeys): the two mappings its docs give for Engage audiences.
  const mappings = [
    ...mappingOf('klaviyo', 'addProfileToList', 'type = "track" and event = "Audience Entered"'),
    ...mappingOf('klaviyo', 'removeProfileFromList', 'type = "track" and event = "Audience Exited"'),
  ];
  const audience = { id: AUDIENCE.id, key: AUDIENCE.key, name: 'VIP', spaceId: SPACE };

  it('an entry imports the profile into the list (one bulk job per chunk), the exit finds it by email and removes it from the list', async () => {
    const klaviyo = await klaviyoEmulator('pk_live');
    emulators.push(klaviyo);
    const listId = await createExternalAudience({ slug: 'klaviyo', settings }, audience, { [KLAVIYO]: klaviyo.target });
    expect([...klaviyo.lists].map(([id, l]) => [id, l.name])).toEqual([[listId, 'VIP']]);
    const fx = setup('klaviyo', { [KLAVIYO]: klaviyo }, settings, mappings, track, listId);
    expect(await fx.step.handle([fx.consumed(withEmail('k1', true), 0), fx.consumed(withEmail('k2', true), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(await fx.step.handle([fx.consumed(withEmail('k1', false), 2)], ctx)).toEqual([{ kind: 'ok' }]);
    const sent = klaviyo.receiver.requests.slice(1);
    expect(sent.map((r) => [r.method, r.path, r.status, r.headers.authorization, r.headers.revision, r.headers.host])).toEqual([
      ['POST', '/api/profile-bulk-import-jobs/', 202, 'Klaviyo-API-Key pk_live', '2025-01-15', KLAVIYO],
      ['GET', '/api/profiles/?filter=any(email,[%22k1@example.com%22])', 200, 'Klaviyo-API-Key pk_live', '2025-01-15', KLAVIYO],
      ['DELETE', `/api/lists/${listId}/relationships/profiles/`, 204, 'Klaviyo-API-Key pk_live', '2025-01-15', KLAVIYO],
    ]);
    expect(sent[0]!.body.data).toMatchObject({
      type: 'profile-bulk-import-job',
      attributes: {
        profiles: {
          data: [
            expect.objectContaining({ type: 'profile', attributes: expect.objectContaining({ email: 'k1@example.com' }) }),
            expect.objectContaining({ attributes: expect.objectContaining({ email: 'k2@example.com' }) }),
          ],
        },
      },
      relationships: { lists: { data: [{ type: 'list', id: listId }] } },
    });
    expect(sent[2]!.body).toEqual({ data: [{ type: 'profile', id: 'P1' }] });
    expect([...klaviyo.lists.get(listId)!.members].map((id) => klaviyo.profiles.get(id)!.attributes.email)).toEqual(['k2@example.com']);
    expect(fx.letters).toEqual([]);
  });

  it('retries a 429 after its Retry-After with the same job; a refused key is dead-lettered and flagged', async () => {
    const klaviyo = await klaviyoEmulator('pk_live');
    emulators.push(klaviyo);
    const listId = await createExternalAudience({ slug: 'klaviyo', settings }, audience, { [KLAVIYO]: klaviyo.target });
    klaviyo.faults.push({
      status: 429,
      headers: { 'retry-after': '3' },
      body: { errors: [{ status: 429, code: 'throttled', title: 'Request was throttled.' }] },
    });
    const fx = setup('klaviyo', { [KLAVIYO]: klaviyo }, settings, mappings, track, listId);
    expect(await fx.step.handle([fx.consumed(withEmail('k3', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    fx.clock.now += 2999;
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    expect(await fx.drain()).toBe(1);
    const jobs = klaviyo.receiver.requests.filter((r) => r.path === '/api/profile-bulk-import-jobs/');
    expect(jobs.map((r) => r.status)).toEqual([429, 202]);
    expect(jobs[1]!.body).toEqual(jobs[0]!.body);

    const revoked = setup('klaviyo', { [KLAVIYO]: klaviyo }, { api_key: 'pk_old' }, mappings, track, listId);
    expect(await revoked.step.handle([revoked.consumed(withEmail('k4', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\)/), step: 'deliver' },
    ]);
    expect(await statusOf(revoked)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
  });
});

describe('Salesforce (Actions, OAuth): the audience as a custom field of the lead', () => {
  const INSTANCE = 'acme.my.salesforce.com';
  const LOGIN = 'login.salesforce.com';
  const client = { id: 'sf-client', secret: 'sf-secret' };
  const settings = (accessToken: string, refreshToken = 'sf-refresh') => ({
    instanceUrl: `https://${INSTANCE}/`,
    oauth: { access_token: accessToken, refresh_token: refreshToken, clientId: client.id, clientSecret: client.secret },
  });
  // Salesforce's definition has no presets: a lead upsert matched by email, the audience as the custom field Vip__c.
  const lead = mappingOf('salesforce', 'lead', 'type = "identify"', {
    operation: 'upsert',
    traits: { Email: { '@path': '$.traits.email' } },
    last_name: { '@path': '$.userId' },
    company: 'Unknown',
    customFields: { Vip__c: { '@path': `$.traits.${AUDIENCE.key}` } },
  });
  const emulator = () =>
    salesforceEmulator({
      accessTokens: ['sf-token-1'],
      refreshToken: 'sf-refresh',
      client,
      issues: 'sf-token-2',
      customFields: ['Vip__c'],
    });
  const hosts = (e: Emulator) => ({ [INSTANCE]: e, [LOGIN]: e });
  const query = (email: string) =>
    `/services/data/v53.0/query/?q=${encodeURIComponent(`SELECT Id FROM Lead WHERE Email = '${email}'`).replace(/'/g, '%27')}`;

  it('an entry looks the lead up by email and creates it with Vip__c true; the exit finds it and patches Vip__c false', async () => {
    const salesforce = await emulator();
    const fx = setup('salesforce', hosts(salesforce), settings('sf-token-1'), lead);
    expect(await fx.step.handle([fx.consumed(withEmail('s1', true), 0), fx.consumed(withEmail('s1', false), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    const created = { LastName: 'u-s1', Company: 'Unknown', Email: 's1@example.com' };
    expect(salesforce.receiver.requests.map((r) => [r.method, r.path, r.status, r.headers.authorization, r.headers.host, r.body])).toEqual([
      ['GET', query('s1@example.com'), 200, 'Bearer sf-token-1', INSTANCE, null],
      ['POST', '/services/data/v53.0/sobjects/Lead', 201, 'Bearer sf-token-1', INSTANCE, { ...created, Vip__c: true }],
      ['GET', query('s1@example.com'), 200, 'Bearer sf-token-1', INSTANCE, null],
      ['PATCH', '/services/data/v53.0/sobjects/Lead/00Q000000000001', 204, 'Bearer sf-token-1', INSTANCE, { ...created, Vip__c: false }],
    ]);
    expect(salesforce.records.get('00Q000000000001')).toEqual({ ...created, Vip__c: false });
  });

  it('an expired token is refreshed on login.salesforce.com through the definition, the call delivered, and the new token kept', async () => {
    const salesforce = await emulator();
    const fx = setup('salesforce', hosts(salesforce), settings('expired'), lead);
    expect(await fx.step.handle([fx.consumed(withEmail('s2', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(await fx.step.handle([fx.consumed(withEmail('s3', true), 1)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(
      salesforce.receiver.requests.map((r) => [r.method, r.headers.host, r.path.split('?')[0], r.status, r.headers.authorization ?? null]),
    ).toEqual([
      ['GET', INSTANCE, '/services/data/v53.0/query/', 401, 'Bearer expired'],
      ['POST', LOGIN, '/services/oauth2/token', 200, null],
      ['GET', INSTANCE, '/services/data/v53.0/query/', 200, 'Bearer sf-token-2'],
      ['POST', INSTANCE, '/services/data/v53.0/sobjects/Lead', 201, 'Bearer sf-token-2'],
      // The next chunk starts with the kept token: no second refresh.
      ['GET', INSTANCE, '/services/data/v53.0/query/', 200, 'Bearer sf-token-2'],
      ['POST', INSTANCE, '/services/data/v53.0/sobjects/Lead', 201, 'Bearer sf-token-2'],
    ]);
    expect(new URLSearchParams(salesforce.receiver.requests[1]!.body)).toEqual(
      new URLSearchParams({ refresh_token: 'sf-refresh', client_id: client.id, client_secret: client.secret, grant_type: 'refresh_token' }),
    );
  });

  it('a refused refresh token is dead-lettered and flagged; a 503 is retried; an unknown field is dead-lettered with the message', async () => {
    const revoked = setup('salesforce', hosts(await emulator()), settings('expired', 'revoked'), lead);
    expect(await revoked.step.handle([revoked.consumed(withEmail('s4', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\): OAuth token refresh failed/), step: 'deliver' },
    ]);
    expect(await statusOf(revoked)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });

    const salesforce = await emulator();
    salesforce.faults.push({
      status: 503,
      headers: { 'retry-after': '1' },
      body: [{ message: 'Server Unavailable', errorCode: 'SERVER_UNAVAILABLE' }],
    });
    const fx = setup('salesforce', hosts(salesforce), settings('sf-token-1'), lead);
    expect(await fx.step.handle([fx.consumed(withEmail('s5', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    fx.clock.now += 1000;
    expect(await fx.drain()).toBe(1);
    expect(salesforce.receiver.requests.map((r) => r.status)).toEqual([503, 200, 201]);

    const noField = setup(
      'salesforce',
      hosts(await salesforceEmulator({ accessTokens: ['sf-token-1'], refreshToken: 'r', client, issues: 'x', customFields: [] })),
      settings('sf-token-1'),
      lead,
    );
    expect(await noField.step.handle([noField.consumed(withEmail('s6', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: .*No such column 'Vip__c' on sobject of type Lead/), step: 'deliver' },
    ]);
  });
});

describe('Salesforce (Actions): over the org API request limit', () => {
  const INSTANCE = 'acme.my.salesforce.com';
  const settings = { instanceUrl: `https://${INSTANCE}/`, oauth: { access_token: 'sf-token-1', refresh_token: 'sf-refresh' } };
  const lead = mappingOf('salesforce', 'lead', 'type = "identify"', {
    operation: 'upsert',
    traits: { Email: { '@path': '$.traits.email' } },
    last_name: { '@path': '$.userId' },
    company: 'Unknown',
  });

  it('a 403 REQUEST_LIMIT_EXCEEDED is retried with backoff (the destination not flagged) and delivered once the allocation frees up', async () => {
    const salesforce = await salesforceEmulator({
      accessTokens: ['sf-token-1'],
      refreshToken: 'sf-refresh',
      client: { id: 'c', secret: 's' },
      issues: 'x',
      customFields: [],
      apiRequestsLeft: 0,
    });
    const fx = setup('salesforce', { [INSTANCE]: salesforce }, settings, lead);
    expect(await fx.step.handle([fx.consumed(withEmail('s7', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(salesforce.receiver.requests.map((r) => [r.path.split('?')[0], r.status, r.body])).toEqual([
      ['/services/data/v53.0/query/', 403, null],
    ]);
    expect(await statusOf(fx)).not.toHaveProperty('credentialsError');
    expect(fx.letters).toEqual([]);
    // Still over the limit at the first retry (backoff, no Retry-After): retried again, not dead-lettered.
    fx.clock.now += 60_000;
    expect(await fx.drain()).toBe(1);
    expect(salesforce.receiver.requests.map((r) => r.status)).toEqual([403, 403]);
    salesforce.allocation.left = 100;
    fx.clock.now += 600_000;
    expect(await fx.drain()).toBe(1);
    expect(salesforce.receiver.requests.map((r) => [r.method, r.path.split('?')[0], r.status])).toEqual([
      ['GET', '/services/data/v53.0/query/', 403],
      ['GET', '/services/data/v53.0/query/', 403],
      ['GET', '/services/data/v53.0/query/', 200],
      ['POST', '/services/data/v53.0/sobjects/Lead', 201],
    ]);
    expect([...salesforce.records.values()]).toEqual([{ LastName: 'u-s7', Company: 'Unknown', Email: 's7@example.com' }]);
    expect(fx.letters).toEqual([]);
    expect(await statusOf(fx)).not.toHaveProperty('credentialsError');
  });
});

describe('Pardot (Actions, OAuth through Salesforce): the audience as a custom prospect field', () => {
  const PARDOT = 'pi.pardot.com';
  const LOGIN = 'login.salesforce.com';
  const client = { id: 'sf-client', secret: 'sf-secret' };
  const settings = (accessToken: string, refreshToken = 'sf-refresh') => ({
    businessUnitID: '0Uv000000000001AAA',
    accountID: '12345',
    oauth: { access_token: accessToken, refresh_token: refreshToken, clientId: client.id, clientSecret: client.secret },
  });
  // Its prospects action upserts by email; the definition has no presets: the audience as the custom field Vip.
  const upsert = mappingOf('actions-pardot', 'prospects', 'type = "identify"', {
    customFields: { Vip: { '@path': `$.traits.${AUDIENCE.key}` } },
  });
  const emulator = (customFields = ['Vip']) =>
    pardotEmulator({
      accessTokens: ['pa-token-1'],
      refreshToken: 'sf-refresh',
      client,
      issues: 'pa-token-2',
      businessUnitId: '0Uv000000000001AAA',
      customFields,
    });
  const hosts = (e: Emulator) => ({ [PARDOT]: e, [LOGIN]: e });
  const UPSERT = '/api/v5/objects/prospects/do/upsertLatestByEmail';

  it('an entry upserts the prospect by email with Vip true, the exit with Vip false', async () => {
    const pardot = await emulator();
    const fx = setup('actions-pardot', hosts(pardot), settings('pa-token-1'), upsert);
    expect(await fx.step.handle([fx.consumed(withEmail('p1', true), 0), fx.consumed(withEmail('p1', false), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    const sent = (vip: boolean) => ({
      matchEmail: 'p1@example.com',
      prospect: { email: 'p1@example.com', Vip: vip },
      secondaryDeletedSearch: true,
    });
    expect(
      pardot.receiver.requests.map((r) => [
        r.method,
        r.path,
        r.status,
        r.headers.authorization,
        r.headers['pardot-business-unit-id'],
        r.headers.host,
        r.body,
      ]),
    ).toEqual([
      ['POST', UPSERT, 200, 'Bearer pa-token-1', '0Uv000000000001AAA', PARDOT, sent(true)],
      ['POST', UPSERT, 200, 'Bearer pa-token-1', '0Uv000000000001AAA', PARDOT, sent(false)],
    ]);
    expect(pardot.prospects.get('p1@example.com')).toEqual({ id: 1, email: 'p1@example.com', Vip: false });
  });

  it('an expired token is refreshed on login.salesforce.com, the call delivered, the new token kept; a refused refresh is flagged', async () => {
    const pardot = await emulator();
    const fx = setup('actions-pardot', hosts(pardot), settings('expired'), upsert);
    expect(await fx.step.handle([fx.consumed(withEmail('p2', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(await fx.step.handle([fx.consumed(withEmail('p3', true), 1)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(pardot.receiver.requests.map((r) => [r.headers.host, r.path, r.status, r.headers.authorization ?? null])).toEqual([
      [PARDOT, UPSERT, 401, 'Bearer expired'],
      [LOGIN, '/services/oauth2/token', 200, null],
      [PARDOT, UPSERT, 200, 'Bearer pa-token-2'],
      [PARDOT, UPSERT, 200, 'Bearer pa-token-2'],
    ]);

    const revoked = setup('actions-pardot', hosts(await emulator()), settings('expired', 'revoked'), upsert);
    expect(await revoked.step.handle([revoked.consumed(withEmail('p4', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\): OAuth token refresh failed/), step: 'deliver' },
    ]);
    expect(await statusOf(revoked)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
  });

  it('retries a 429 after its Retry-After; an unknown field is dead-lettered with the Pardot code', async () => {
    const pardot = await emulator();
    pardot.faults.push({
      status: 429,
      headers: { 'retry-after': '1' },
      body: { code: 122, message: 'You have exceeded your concurrent request limit.' },
    });
    const fx = setup('actions-pardot', hosts(pardot), settings('pa-token-1'), upsert);
    expect(await fx.step.handle([fx.consumed(withEmail('p5', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    fx.clock.now += 1000;
    expect(await fx.drain()).toBe(1);
    expect(pardot.receiver.requests.map((r) => r.status)).toEqual([429, 200]);
    expect(pardot.prospects.get('p5@example.com')).toMatchObject({ Vip: true });

    const noField = setup('actions-pardot', hosts(await emulator([])), settings('pa-token-1'), upsert);
    expect(await noField.step.handle([noField.consumed(withEmail('p6', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: Pardot responded witha error code 1: Invalid field: Vip/), step: 'deliver' },
    ]);
  });
});
