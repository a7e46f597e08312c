// Actions audience destinations (issue 19 items 1 and 8): an audience entry
// and exit through the dispatch step to the vendor's add and remove calls,
// run by Segment's own definition over real HTTP to an emulator of the
// vendor's documented API (DESTINATION_HTTP_OVERRIDES sends the vendor host
// there). Real Redis, an injected clock for the retry schedule.
import { createHash } from 'node:crypto';
import { createExternalAudience, presetMappings } from '@engage/actions';
import type { ActionMapping } from '@engage/config-store';
import { actionsTestbed, actionsFixture, mappingOf, statusHash, withEmail } from './testing/actions-fixture';
import {
  brazeCohortsEmulator,
  facebookEmulator,
  linkedinEmulator,
  sendgridListsEmulator,
  snapEmulator,
  tiktokEmulator,
} from './testing/audience-emulators';
import { AUDIENCE, SPACE, audienceChange, type Fixture } from './testing/dispatch-fixture';
import type { Emulator } from './testing/vendor-emulators';

const { redis, ctx, emulators, runtimes } = actionsTestbed();

const setup = (
  slug: string,
  hosts: Record<string, Emulator>,
  settings: Record<string, unknown>,
  mappings: ActionMapping[],
  connection: { identify: boolean; track: boolean },
  externalAudienceId?: string,
) => {
  emulators.push(...Object.values(hosts));
  const fx = actionsFixture(redis, { slug, hosts, settings, mappings, connection, externalAudienceId });
  runtimes.push(fx.actions);
  return fx;
};
const statusOf = (fx: Fixture) => statusHash(redis, fx);

describe('Braze Cohorts (Actions): the audience as a Braze cohort, users added and removed', () => {
  const BRAZE = 'rest.iad-01.braze.com';
  const settings = { client_secret: 'data-import-key', endpoint: `https://${BRAZE}` };
  // The definition has no presets: the mapping Segment's docs give, on the audience's track calls, its key hard-coded.
  const sync = mappingOf('braze-cohorts', 'syncAudiences', 'type = "track" and (event = "Audience Entered" or event = "Audience Exited")', {
    personas_audience_key: AUDIENCE.key,
  });
  const partnerKey = process.env.BRAZE_COHORTS_PARTNER_API_KEY_US;
  // NOTE: the definition reads Braze's partner key from the process environment (Segment's, issued by Braze to a partner).
  beforeAll(() => void (process.env.BRAZE_COHORTS_PARTNER_API_KEY_US = 'partner-key'));
  afterAll(() => {
    if (partnerKey === undefined) delete process.env.BRAZE_COHORTS_PARTNER_API_KEY_US;
    else process.env.BRAZE_COHORTS_PARTNER_API_KEY_US = partnerKey;
  });

  it('an entry creates the cohort (id and name of the audience) and adds the user; the exit removes them; a chunk is one request', async () => {
    const braze = await brazeCohortsEmulator('partner-key', 'data-import-key');
    const fx = setup('braze-cohorts', { [BRAZE]: braze }, settings, sync, { identify: false, track: true });
    const outcomes = await fx.step.handle(
      [fx.consumed(audienceChange('c1', true), 0), fx.consumed(audienceChange('c2', true), 1), fx.consumed(audienceChange('c1', false), 2)],
      ctx,
    );
    expect(outcomes).toEqual([{ kind: 'ok' }, { kind: 'ok' }, { kind: 'ok' }]);
    const credentials = { partner_api_key: 'partner-key', client_secret: 'data-import-key' };
    expect(braze.receiver.requests.map((r) => [r.method, r.path, r.status, r.headers.host, r.body])).toEqual([
      [
        'POST',
        '/partners/segment/cohorts',
        201,
        BRAZE,
        { ...credentials, cohort_id: AUDIENCE.id, name: AUDIENCE.key, created_at: expect.any(String) },
      ],
      [
        'POST',
        '/partners/segment/cohorts/users',
        201,
        BRAZE,
        { ...credentials, cohort_id: AUDIENCE.id, cohort_changes: [{ user_ids: ['u-c1', 'u-c2'], device_ids: [], aliases: [] }] },
      ],
      ['POST', '/partners/segment/cohorts', 201, BRAZE, expect.objectContaining({ cohort_id: AUDIENCE.id })],
      [
        'POST',
        '/partners/segment/cohorts/users',
        201,
        BRAZE,
        {
          ...credentials,
          cohort_id: AUDIENCE.id,
          cohort_changes: [{ user_ids: ['u-c1'], device_ids: [], aliases: [], should_remove: true }],
        },
      ],
    ]);
    expect([...braze.cohorts.get(AUDIENCE.id)!.members]).toEqual(['user:u-c2']);
    expect(fx.letters).toEqual([]);
  });

  it('retries a 429 after its Retry-After; a refused data import key is dead-lettered and flagged', async () => {
    const braze = await brazeCohortsEmulator('partner-key', 'data-import-key');
    braze.faults.push({ status: 429, headers: { 'retry-after': '2' }, body: { message: 'Rate limit exceeded' } });
    const fx = setup('braze-cohorts', { [BRAZE]: braze }, settings, sync, { identify: false, track: true });
    expect(await fx.step.handle([fx.consumed(audienceChange('c3', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(await fx.schedule.size()).toBe(1);
    fx.clock.now += 1999;
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    expect(await fx.drain()).toBe(1);
    expect(braze.receiver.requests.map((r) => [r.path, r.status])).toEqual([
      ['/partners/segment/cohorts', 429],
      ['/partners/segment/cohorts', 201],
      ['/partners/segment/cohorts/users', 201],
    ]);
    expect([...braze.cohorts.get(AUDIENCE.id)!.members]).toEqual(['user:u-c3']);

    const revoked = setup(
      'braze-cohorts',
      { [BRAZE]: await brazeCohortsEmulator('partner-key', 'data-import-key') },
      { ...settings, client_secret: 'old-key' },
      sync,
      { identify: false, track: true },
    );
    expect(await revoked.step.handle([revoked.consumed(audienceChange('c4', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\)/), step: 'deliver' },
    ]);
    expect(await revoked.schedule.size()).toBe(0);
    expect(await statusOf(revoked)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
  });
});

describe('SendGrid Lists (Actions audience destination): the list created through the definition, contacts added and removed', () => {
  const SENDGRID = 'api.sendgrid.com';
  const settings = { sendGridApiKey: 'sg-key' };
  const sync = mappingOf('sendgrid-audiences', 'syncAudience', 'type = "identify"');
  const audience = { id: AUDIENCE.id, key: AUDIENCE.key, name: 'VIP', spaceId: SPACE };

  it('createAudience makes the list (found by name the second time); an entry upserts the contact into it, the exit removes it', async () => {
    const sendgrid = await sendgridListsEmulator('sg-key');
    emulators.push(sendgrid);
    const overrides = { [SENDGRID]: sendgrid.target };
    const listId = await createExternalAudience({ slug: 'sendgrid-audiences', settings }, audience, overrides);
    expect(await createExternalAudience({ slug: 'sendgrid-audiences', settings }, audience, overrides)).toBe(listId);
    expect([...sendgrid.lists].map(([id, l]) => [id, l.name])).toEqual([[listId, 'VIP']]);

    const fx = setup('sendgrid-audiences', { [SENDGRID]: sendgrid }, settings, sync, { identify: true, track: false }, listId);
    const calls = sendgrid.receiver.requests.length;
    expect(await fx.step.handle([fx.consumed(withEmail('g1', true), 0), fx.consumed(withEmail('g2', true), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(await fx.step.handle([fx.consumed(withEmail('g1', false), 2)], ctx)).toEqual([{ kind: 'ok' }]);
    const sent = sendgrid.receiver.requests.slice(calls);
    expect(sent.map((r) => [r.method, r.path, r.status, r.headers.authorization, r.body])).toEqual([
      [
        'PUT',
        '/v3/marketing/contacts',
        202,
        'Bearer sg-key',
        { list_ids: [listId], contacts: [{ email: 'g1@example.com' }, { email: 'g2@example.com' }] },
      ],
      // The exit: the definition upserts the contact outside any list first, then finds its id and removes it from the list.
      ['PUT', '/v3/marketing/contacts', 202, 'Bearer sg-key', { list_ids: [], contacts: [{ email: 'g1@example.com' }] }],
      ['POST', '/v3/marketing/contacts/search', 200, 'Bearer sg-key', { query: "email IN ('g1@example.com')" }],
      ['DELETE', `/v3/marketing/lists/${listId}/contacts?contact_ids=ct-1`, 202, 'Bearer sg-key', null],
    ]);
    expect([...sendgrid.lists.get(listId)!.members].map((id) => sendgrid.contacts.get(id)!.email)).toEqual(['g2@example.com']);
    expect(fx.letters).toEqual([]);
  });

  it('retries a 429 after its Retry-After with the same contacts; a bad key is dead-lettered and flagged', async () => {
    const sendgrid = await sendgridListsEmulator('sg-key');
    emulators.push(sendgrid);
    const listId = await createExternalAudience({ slug: 'sendgrid-audiences', settings }, audience, { [SENDGRID]: sendgrid.target });
    sendgrid.faults.push({
      status: 429,
      headers: { 'retry-after': '1' },
      body: { errors: [{ field: null, message: 'too many requests' }] },
    });
    const fx = setup('sendgrid-audiences', { [SENDGRID]: sendgrid }, settings, sync, { identify: true, track: false }, listId);
    expect(await fx.step.handle([fx.consumed(withEmail('g3', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(await fx.schedule.size()).toBe(1);
    fx.clock.now += 1000;
    expect(await fx.drain()).toBe(1);
    const puts = sendgrid.receiver.requests.filter((r) => r.path === '/v3/marketing/contacts');
    expect(puts.map((r) => [r.status, r.body.contacts])).toEqual([
      [429, [{ email: 'g3@example.com' }]],
      [202, [{ email: 'g3@example.com' }]],
    ]);

    const revoked = setup(
      'sendgrid-audiences',
      { [SENDGRID]: sendgrid },
      { sendGridApiKey: 'old' },
      sync,
      { identify: true, track: false },
      listId,
    );
    expect(await revoked.step.handle([revoked.consumed(withEmail('g4', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\)/), step: 'deliver' },
    ]);
    expect(await statusOf(revoked)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
  });

  it('an entry without an external audience id (no connection-time list) is dead-lettered with the definition message', async () => {
    const sendgrid = await sendgridListsEmulator('sg-key');
    const fx = setup('sendgrid-audiences', { [SENDGRID]: sendgrid }, settings, sync, { identify: true, track: false });
    expect(await fx.step.handle([fx.consumed(withEmail('g5', true), 0)], ctx)).toEqual([
      {
        kind: 'dlq',
        reason: expect.stringMatching(/^HTTP 400: The root value is missing the required field 'external_audience_id'/),
        step: 'deliver',
      },
    ]);
    expect(sendgrid.receiver.requests).toEqual([]);
  });
});

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

describe('Snap Audiences (Actions, OAuth): the segment created through the definition, hashed emails added and removed', () => {
  const SNAP = 'adsapi.snapchat.com';
  const ACCOUNTS = 'accounts.snapchat.com';
  const refresh = { token: 'snap-refresh', clientId: 'snap-client', clientSecret: 'snap-secret', issues: 'snap-token-2' };
  const settings = (accessToken: string, refreshToken = refresh.token) => ({
    ad_account_id: 'acct-1',
    oauth: { access_token: accessToken, refresh_token: refreshToken, clientId: refresh.clientId, clientSecret: refresh.clientSecret },
  });
  const emulator = () => snapEmulator({ accessTokens: ['snap-token-1'], adAccountId: 'acct-1', refresh });
  const hosts = (e: Emulator) => ({ [SNAP]: e, [ACCOUNTS]: e });
  const audience = { id: AUDIENCE.id, key: AUDIENCE.key, name: 'VIP', spaceId: SPACE };
  // The definition's automatic preset (Sync Engage Audience), its email read where Engage's track calls carry it (context.traits).
  const sync = () =>
    presetMappings('snap-audiences', () => 'map_snap').map((m) => ({
      ...m,
      subscribe: 'type = "track"',
      mapping: { ...m.mapping, email: { '@path': '$.context.traits.email' } },
    }));

  it('createAudience makes the segment; a chunk of entries is one POST of SHA-256 emails, the exit one DELETE', async () => {
    const snap = await emulator();
    emulators.push(snap);
    const segmentId = await createExternalAudience({ slug: 'snap-audiences', settings: settings('snap-token-1') }, audience, {
      [SNAP]: snap.target,
    });
    expect(snap.receiver.requests[0]!.body).toEqual({
      segments: [
        {
          name: 'VIP',
          source_type: 'FIRST_PARTY',
          ad_account_id: 'acct-1',
          description: 'Audience VIP created by Segment',
          retention_in_days: 9999,
        },
      ],
    });
    const fx = setup('snap-audiences', hosts(snap), settings('snap-token-1'), sync(), { identify: false, track: true }, segmentId);
    expect(await fx.step.handle([fx.consumed(withEmail('n1', true), 0), fx.consumed(withEmail('N2', true), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(await fx.step.handle([fx.consumed(withEmail('n1', false), 2)], ctx)).toEqual([{ kind: 'ok' }]);
    const users = `/v1/segments/${segmentId}/users`;
    expect(
      snap.receiver.requests.slice(1).map((r) => [r.method, r.path, r.status, r.headers.authorization, r.headers.host, r.body]),
    ).toEqual([
      [
        'POST',
        users,
        200,
        'Bearer snap-token-1',
        SNAP,
        { users: [{ schema: ['EMAIL_SHA256'], data: [[sha256('n1@example.com')], [sha256('n2@example.com')]] }] },
      ],
      ['DELETE', users, 200, 'Bearer snap-token-1', SNAP, { users: [{ schema: ['EMAIL_SHA256'], data: [[sha256('n1@example.com')]] }] }],
    ]);
    expect([...snap.segments.get(segmentId)!.members.get('EMAIL_SHA256')!]).toEqual([sha256('n2@example.com')]);
  });

  it('an expired token is refreshed at accounts.snapchat.com and kept; a refused refresh is flagged; a 429 is retried', async () => {
    const snap = await emulator();
    emulators.push(snap);
    const segmentId = await createExternalAudience({ slug: 'snap-audiences', settings: settings('snap-token-1') }, audience, {
      [SNAP]: snap.target,
    });
    snap.faults.push({
      status: 429,
      headers: { 'retry-after': '1' },
      body: { request_status: 'ERROR', debug_message: 'Too many requests' },
    });
    const fx = setup('snap-audiences', hosts(snap), settings('expired'), sync(), { identify: false, track: true }, segmentId);
    expect(await fx.step.handle([fx.consumed(withEmail('n3', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    fx.clock.now += 1000;
    expect(await fx.drain()).toBe(1);
    expect(await fx.step.handle([fx.consumed(withEmail('n4', true), 1)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(snap.receiver.requests.slice(1).map((r) => [r.headers.host, r.path, r.status, r.headers.authorization ?? null])).toEqual([
      [SNAP, `/v1/segments/${segmentId}/users`, 429, 'Bearer expired'],
      [SNAP, `/v1/segments/${segmentId}/users`, 401, 'Bearer expired'],
      [ACCOUNTS, '/login/oauth2/access_token', 200, null],
      [SNAP, `/v1/segments/${segmentId}/users`, 200, 'Bearer snap-token-2'],
      [SNAP, `/v1/segments/${segmentId}/users`, 200, 'Bearer snap-token-2'],
    ]);

    const revoked = setup(
      'snap-audiences',
      hosts(snap),
      settings('expired', 'revoked'),
      sync(),
      { identify: false, track: true },
      segmentId,
    );
    expect(await revoked.step.handle([revoked.consumed(withEmail('n5', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\): OAuth token refresh failed/), step: 'deliver' },
    ]);
    expect(await statusOf(revoked)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
  });
});

describe('LinkedIn Audiences (Actions, OAuth): the DMP segment found or created by the definition, hashed emails added and removed', () => {
  const API = 'api.linkedin.com';
  const WWW = 'www.linkedin.com';
  const refresh = { token: 'li-refresh', clientId: 'li-client', clientSecret: 'li-secret', issues: 'li-token-2' };
  const settings = (accessToken: string, refreshToken = refresh.token) => ({
    ad_account_id: '5001',
    send_email: true,
    send_google_advertising_id: false,
    oauth: { access_token: accessToken, refresh_token: refreshToken, clientId: refresh.clientId, clientSecret: refresh.clientSecret },
  });
  const emulator = () => linkedinEmulator({ accessTokens: ['li-token-1'], adAccountId: '5001', refresh });
  const hosts = (e: Emulator) => ({ [API]: e, [WWW]: e });
  // No presets: the action's defaults on the audience's track calls (Segment's docs for Engage).
  const update = mappingOf(
    'linkedin-audiences',
    'updateAudience',
    'type = "track" and (event = "Audience Entered" or event = "Audience Exited")',
  );
  const track = { identify: false, track: true };

  it('an entry creates the DMP segment (named by the audience key) and ADDs the hashed email; the exit finds it and REMOVEs', async () => {
    const linkedin = await emulator();
    const fx = setup('linkedin-audiences', hosts(linkedin), settings('li-token-1'), update, track);
    expect(await fx.step.handle([fx.consumed(withEmail('l1', true), 0), fx.consumed(withEmail('l2', true), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(await fx.step.handle([fx.consumed(withEmail('l1', false), 2)], ctx)).toEqual([{ kind: 'ok' }]);
    const find = `/rest/dmpSegments?q=account&account=${encodeURIComponent('urn:li:sponsoredAccount:5001')}&sourceSegmentId=${AUDIENCE.key}&sourcePlatform=SEGMENT`;
    const email = (e: string) => ({ idType: 'SHA256_EMAIL', idValue: sha256(e) });
    expect(
      linkedin.receiver.requests.map((r) => [
        r.method,
        r.path,
        r.status,
        r.headers.authorization,
        r.headers['linkedin-version'],
        r.headers.host,
      ]),
    ).toEqual([
      ['GET', find, 200, 'Bearer li-token-1', '202505', API],
      ['POST', '/rest/dmpSegments', 201, 'Bearer li-token-1', '202505', API],
      ['POST', '/rest/dmpSegments/9001/users', 200, 'Bearer li-token-1', '202505', API],
      ['GET', find, 200, 'Bearer li-token-1', '202505', API],
      ['POST', '/rest/dmpSegments/9001/users', 200, 'Bearer li-token-1', '202505', API],
    ]);
    expect(linkedin.receiver.requests[1]!.body).toEqual({
      name: AUDIENCE.key,
      sourcePlatform: 'SEGMENT',
      sourceSegmentId: AUDIENCE.key,
      account: 'urn:li:sponsoredAccount:5001',
      type: 'USER',
      destinations: [{ destination: 'LINKEDIN' }],
    });
    expect(linkedin.receiver.requests[2]!.body).toEqual({
      elements: [
        { action: 'ADD', userIds: [email('l1@example.com')] },
        { action: 'ADD', userIds: [email('l2@example.com')] },
      ],
    });
    expect(linkedin.receiver.requests[4]!.body).toEqual({ elements: [{ action: 'REMOVE', userIds: [email('l1@example.com')] }] });
    expect([...linkedin.segments.get('9001')!.members]).toEqual([`SHA256_EMAIL:${sha256('l2@example.com')}`]);
  });

  it('an expired token is refreshed at www.linkedin.com and kept; a refused refresh is flagged; a 429 is retried', async () => {
    const linkedin = await emulator();
    const fx = setup('linkedin-audiences', hosts(linkedin), settings('expired'), update, track);
    expect(await fx.step.handle([fx.consumed(withEmail('l3', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    linkedin.faults.push({
      status: 429,
      headers: { 'retry-after': '1' },
      body: { status: 429, message: 'Resource level throttle limit reached' },
    });
    expect(await fx.step.handle([fx.consumed(withEmail('l4', true), 1)], ctx)).toEqual([{ kind: 'ok' }]);
    fx.clock.now += 1000;
    expect(await fx.drain()).toBe(1);
    expect(
      linkedin.receiver.requests.map((r) => [r.method, r.headers.host, r.path.split('?')[0], r.status, r.headers.authorization ?? null]),
    ).toEqual([
      ['GET', API, '/rest/dmpSegments', 401, 'Bearer expired'],
      ['POST', WWW, '/oauth/v2/accessToken', 200, null],
      ['GET', API, '/rest/dmpSegments', 200, 'Bearer li-token-2'],
      ['POST', API, '/rest/dmpSegments', 201, 'Bearer li-token-2'],
      ['POST', API, '/rest/dmpSegments/9001/users', 200, 'Bearer li-token-2'],
      // The next chunk: the kept token; a 429 retried after its Retry-After.
      ['GET', API, '/rest/dmpSegments', 429, 'Bearer li-token-2'],
      ['GET', API, '/rest/dmpSegments', 200, 'Bearer li-token-2'],
      ['POST', API, '/rest/dmpSegments/9001/users', 200, 'Bearer li-token-2'],
    ]);

    const revoked = setup('linkedin-audiences', hosts(await emulator()), settings('expired', 'revoked'), update, track);
    expect(await revoked.step.handle([revoked.consumed(withEmail('l5', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\): OAuth token refresh failed/), step: 'deliver' },
    ]);
    expect(await statusOf(revoked)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
  });
});

describe('TikTok Audiences (Actions, access token): the segment created for the advertiser of the connection, hashed emails added and removed', () => {
  const TIKTOK = 'business-api.tiktok.com';
  const settings = (token = 'tt-token') => ({ oauth: { access_token: token } });
  const audienceSettings = { advertiserId: 'adv-1' };
  const audience = { id: AUDIENCE.id, key: AUDIENCE.key, name: 'VIP', spaceId: SPACE };
  // The definition's presets are warehouse and journeys events: the two mappings its docs give for Engage audiences.
  const mappings = [
    ...mappingOf('tiktok-audiences', 'addToAudience', 'type = "track" and event = "Audience Entered"'),
    ...mappingOf('tiktok-audiences', 'removeFromAudience', 'type = "track" and event = "Audience Exited"'),
  ];
  const emulator = () => tiktokEmulator({ accessToken: 'tt-token', advertiserIds: ['adv-1'] });
  const MAPPING = '/open_api/v1.3/segment/mapping/';
  const fixture = (tiktok: Emulator, segmentId: string, over: { token?: string; audienceSettings?: Record<string, unknown> } = {}) => {
    emulators.push(tiktok);
    const fx = actionsFixture(redis, {
      slug: 'tiktok-audiences',
      hosts: { [TIKTOK]: tiktok },
      settings: settings(over.token),
      mappings,
      connection: { identify: false, track: true },
      externalAudienceId: segmentId,
      audienceSettings: 'audienceSettings' in over ? over.audienceSettings : audienceSettings,
    });
    runtimes.push(fx.actions);
    return fx;
  };
  const create = async (tiktok: Emulator) =>
    createExternalAudience({ slug: 'tiktok-audiences', settings: settings() }, audience, { [TIKTOK]: tiktok.target }, audienceSettings);
  const row = (email: string, segmentId: string) => [{ id: sha256(email), audience_ids: [segmentId] }, {}, {}];

  it("createAudience makes the segment for the connection's advertiser; a chunk of entries is one add of SHA-256 emails, the exit one delete", async () => {
    const tiktok = await emulator();
    const segmentId = await create(tiktok);
    expect(tiktok.receiver.requests.map((r) => [r.method, r.path, r.headers['access-token'], r.body])).toEqual([
      ['POST', '/open_api/v1.3/segment/audience/', 'tt-token', { custom_audience_name: 'VIP', advertiser_id: 'adv-1', action: 'create' }],
    ]);
    const fx = fixture(tiktok, segmentId);
    expect(await fx.step.handle([fx.consumed(withEmail('t1', true), 0), fx.consumed(withEmail('T.2', true), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(await fx.step.handle([fx.consumed(withEmail('t1', false), 2)], ctx)).toEqual([{ kind: 'ok' }]);
    const sent = { advertiser_ids: ['adv-1'], id_schema: ['EMAIL_SHA256', 'PHONE_SHA256', 'IDFA_SHA256'] };
    expect(
      tiktok.receiver.requests.slice(1).map((r) => [r.method, r.path, r.status, r.headers['access-token'], r.headers.host, r.body]),
    ).toEqual([
      // The definition drops dots before the @ and lowercases before hashing: T.2@example.com is t2@example.com.
      [
        'POST',
        MAPPING,
        200,
        'tt-token',
        TIKTOK,
        { ...sent, action: 'add', batch_data: [row('t1@example.com', segmentId), row('t2@example.com', segmentId)] },
      ],
      ['POST', MAPPING, 200, 'tt-token', TIKTOK, { ...sent, action: 'delete', batch_data: [row('t1@example.com', segmentId)] }],
    ]);
    expect([...tiktok.segments.get(segmentId)!.members.get('EMAIL_SHA256')!]).toEqual([sha256('t2@example.com')]);
    expect(fx.letters).toEqual([]);
  });

  it('retries an HTTP 429 after its Retry-After and a code 40100 answered with a 200; a revoked token (40105 in a 200) is flagged', async () => {
    const tiktok = await emulator();
    const segmentId = await create(tiktok);
    tiktok.faults.push(
      { status: 429, headers: { 'retry-after': '2' }, body: { code: 40100, message: 'Too many requests' } },
      { status: 200, body: { code: 40100, message: 'Too many requests. Please retry in some time.', request_id: 'r', data: {} } },
    );
    const fx = fixture(tiktok, segmentId);
    expect(await fx.step.handle([fx.consumed(withEmail('t3', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    fx.clock.now += 1999;
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    // The second answer (40100 in a 200) is a rate limit too: tried again after backoff.
    expect(await fx.drain()).toBe(1);
    fx.clock.now += 60_000;
    expect(await fx.drain()).toBe(1);
    const adds = tiktok.receiver.requests.filter((r) => r.path === MAPPING);
    expect(adds.map((r) => r.status)).toEqual([429, 200, 200]);
    expect(adds[2]!.body).toEqual(adds[0]!.body);
    expect([...tiktok.segments.get(segmentId)!.members.get('EMAIL_SHA256')!]).toEqual([sha256('t3@example.com')]);
    expect(fx.letters).toEqual([]);

    const revoked = fixture(tiktok, segmentId, { token: 'revoked' });
    expect(await revoked.step.handle([revoked.consumed(withEmail('t4', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\): TikTok code 40105/), step: 'deliver' },
    ]);
    expect(await statusOf(revoked)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
  });

  it('a connection without audience settings, or an advertiser the token cannot reach, is dead-lettered with the message', async () => {
    const tiktok = await emulator();
    const segmentId = await create(tiktok);
    const none = fixture(tiktok, segmentId, { audienceSettings: undefined });
    expect(await none.step.handle([none.consumed(withEmail('t5', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: .*no audienceSettings found/), step: 'deliver' },
    ]);
    const other = fixture(tiktok, segmentId, { audienceSettings: { advertiserId: 'adv-9' } });
    expect(await other.step.handle([other.consumed(withEmail('t6', true), 0)], ctx)).toEqual([
      {
        kind: 'dlq',
        reason: expect.stringMatching(/^HTTP 403 \(credentials refused\): TikTok code 40001: No permission to operate advertiser adv-9/),
        step: 'deliver',
      },
    ]);
  });
});

describe('Facebook Custom Audiences (Actions, access token): the custom audience created for the ad account, hashed identifiers added and removed', () => {
  const GRAPH = 'graph.facebook.com';
  const settings = (token = 'fb-token') => ({ retlAdAccountId: '1001', oauth: { access_token: token } });
  // The connection's audience settings: its ad account (overriding the destination's) and the audience's description.
  const audienceSettings = { engageAdAccountId: 'act_2002', audienceDescription: 'Engage audience VIP' };
  const audience = { id: AUDIENCE.id, key: AUDIENCE.key, name: 'VIP', spaceId: SPACE };
  // The definition's presets are warehouse and journeys events, each the sync action with its defaults (email from
  // traits.email, external id the userId): that mapping, on the audience's identify calls, which carry the email in traits.
  const sync = mappingOf('facebook-custom-audiences', 'sync', 'type = "identify"');
  const emulator = () => facebookEmulator({ accessToken: 'fb-token', adAccountIds: ['1001', '2002'] });
  const fixture = (facebook: Emulator, audienceId: string, token?: string, mappings = sync) => {
    emulators.push(facebook);
    const fx = actionsFixture(redis, {
      slug: 'facebook-custom-audiences',
      hosts: { [GRAPH]: facebook },
      settings: settings(token),
      mappings,
      connection: { identify: true, track: false },
      externalAudienceId: audienceId,
      audienceSettings,
    });
    runtimes.push(fx.actions);
    return fx;
  };
  const create = async (facebook: Emulator, over: { audienceSettings?: Record<string, unknown> } = { audienceSettings }) =>
    createExternalAudience(
      { slug: 'facebook-custom-audiences', settings: settings() },
      audience,
      { [GRAPH]: facebook.target },
      over.audienceSettings,
    );
  const SCHEMA = ['EXTERN_ID', 'EMAIL', 'PHONE', 'DOBY', 'DOBM', 'DOBD', 'LN', 'FN', 'FI', 'GEN', 'CT', 'ST', 'ZIP', 'COUNTRY', 'MADID'];
  // One row per user in the schema's order: the user id as it is, the email SHA-256 hashed, '' for what the user lacks.
  const row = (userId: string, email: string) => [userId, sha256(email), ...Array<string>(SCHEMA.length - 2).fill('')];

  it("createAudience makes the custom audience for the connection's ad account (else the destination's); entries are one POST, the exit one DELETE", async () => {
    const facebook = await emulator();
    const audienceId = await create(facebook);
    expect(await create(facebook, {})).not.toBe(audienceId);
    expect(facebook.receiver.requests.map((r) => [r.method, r.path, r.status, r.headers.authorization, r.headers.host, r.body])).toEqual([
      [
        'POST',
        '/v24.0/act_2002/customaudiences',
        200,
        'Bearer fb-token',
        GRAPH,
        { name: 'VIP', subtype: 'CUSTOM', customer_file_source: 'BOTH_USER_AND_PARTNER_PROVIDED', description: 'Engage audience VIP' },
      ],
      ['POST', '/v24.0/act_1001/customaudiences', 200, 'Bearer fb-token', GRAPH, expect.objectContaining({ name: 'VIP' })],
    ]);
    expect(facebook.audiences.get(audienceId)).toMatchObject({ name: 'VIP', adAccountId: '2002' });

    const fx = fixture(facebook, audienceId);
    const calls = facebook.receiver.requests.length;
    const f2 = withEmail('f2', true, {
      external_ids: [
        { type: 'user_id', id: 'u-f2' },
        { type: 'email', id: ' F2@Example.com' },
      ],
    });
    expect(await fx.step.handle([fx.consumed(withEmail('f1', true), 0), fx.consumed(f2, 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(await fx.step.handle([fx.consumed(withEmail('f1', false), 2)], ctx)).toEqual([{ kind: 'ok' }]);
    const users = `/v24.0/${audienceId}/users`;
    expect(
      facebook.receiver.requests.slice(calls).map((r) => [r.method, r.path, r.status, r.headers.authorization, r.headers.host, r.body]),
    ).toEqual([
      // The definition trims and lowercases an email before hashing: ' F2@Example.com' is f2@example.com.
      [
        'POST',
        users,
        200,
        'Bearer fb-token',
        GRAPH,
        { payload: { schema: SCHEMA, data: [row('u-f1', 'f1@example.com'), row('u-f2', 'f2@example.com')] } },
      ],
      ['DELETE', users, 200, 'Bearer fb-token', GRAPH, { payload: { schema: SCHEMA, data: [row('u-f1', 'f1@example.com')] } }],
    ]);
    expect([...facebook.audiences.get(audienceId)!.members.get('EMAIL')!]).toEqual([sha256('f2@example.com')]);
    expect(fx.letters).toEqual([]);
  });

  it('retries a throttled call (code 80003 in a 400) with the same rows; a revoked token (190 in a 400) is dead-lettered and flagged', async () => {
    const facebook = await emulator();
    const audienceId = await create(facebook);
    facebook.throttle();
    const fx = fixture(facebook, audienceId);
    expect(await fx.step.handle([fx.consumed(withEmail('f3', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(await fx.schedule.size()).toBe(1);
    // No Retry-After from Facebook: the first backoff, 500 ms.
    fx.clock.now += 499;
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    expect(await fx.drain()).toBe(1);
    const adds = facebook.receiver.requests.filter((r) => r.path === `/v24.0/${audienceId}/users`);
    expect(adds.map((r) => [r.method, r.status])).toEqual([
      ['POST', 400],
      ['POST', 200],
    ]);
    expect(adds[1]!.body).toEqual(adds[0]!.body);
    expect(adds[0]!.body.payload.data).toEqual([row('u-f3', 'f3@example.com')]);
    expect([...facebook.audiences.get(audienceId)!.members.get('EMAIL')!]).toEqual([sha256('f3@example.com')]);
    expect(fx.letters).toEqual([]);

    const revoked = fixture(facebook, audienceId, 'revoked');
    expect(await revoked.step.handle([revoked.consumed(withEmail('f4', true), 0)], ctx)).toEqual([
      {
        kind: 'dlq',
        reason: expect.stringMatching(/^HTTP 401 \(credentials refused\): Facebook code 190: Invalid OAuth access token/),
        step: 'deliver',
      },
    ]);
    expect(await revoked.schedule.size()).toBe(0);
    expect(await statusOf(revoked)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
    expect(facebook.receiver.requests.at(-1)).toMatchObject({ status: 400, headers: { authorization: 'Bearer revoked' } });
  });

  it('with batching off (perform, one event a request) the same answers read the same: a throttle retried, a revoked token flagged', async () => {
    const facebook = await emulator();
    const audienceId = await create(facebook);
    const oneByOne = sync.map((m) => ({ ...m, mapping: { ...m.mapping, enable_batching: false } }));
    facebook.throttle();
    const fx = fixture(facebook, audienceId, undefined, oneByOne);
    expect(await fx.step.handle([fx.consumed(withEmail('f5', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    fx.clock.now += 500;
    expect(await fx.drain()).toBe(1);
    const adds = facebook.receiver.requests.filter((r) => r.path === `/v24.0/${audienceId}/users`);
    expect(adds.map((r) => [r.method, r.status, r.body.payload.data])).toEqual([
      ['POST', 400, [row('u-f5', 'f5@example.com')]],
      ['POST', 200, [row('u-f5', 'f5@example.com')]],
    ]);

    const revoked = fixture(facebook, audienceId, 'revoked', oneByOne);
    expect(await revoked.step.handle([revoked.consumed(withEmail('f6', false), 0)], ctx)).toEqual([
      {
        kind: 'dlq',
        reason: expect.stringMatching(/^HTTP 401 \(credentials refused\): Facebook code 190: /),
        step: 'deliver',
      },
    ]);
    expect(await statusOf(revoked)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
    expect(facebook.receiver.requests.at(-1)).toMatchObject({ method: 'DELETE', status: 400 });
  });
});
