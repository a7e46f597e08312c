// Actions destinations end to end (issue 19, CONTRACT.md section 8): the
// control plane's catalog, a Braze destination created with its settings
// checked against the definition and its presets as mappings, mappings
// edited through the API and counted on the connection, then the built
// dispatcher process delivering an audience entry to an emulator of Braze's
// POST /users/track, reached through DESTINATION_HTTP_OVERRIDES.
import { createKafka, createProducer, ensureTopics, topicRegistry, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { SchemaCodec, type ComputationChange } from '@engage/schemas';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';
import { brazeEmulator, iterableListsEmulator, type Emulator } from '../services/dispatcher/src/testing/vendor-emulators';
import { tiktokEmulator } from '../services/dispatcher/src/testing/audience-emulators';
import { dv360Emulator, sha256 } from '../services/dispatcher/src/testing/dv360-emulator';
import { controlPlaneApi, deliveryEnv, publishChanges, type Api } from './helpers/delivery-harness';

const TOKEN = 'actions-test-token';
const MASK = '********';
const BRAZE = 'rest.iad-01.braze.com';
const DV360 = 'displayvideo.googleapis.com';
const GOOGLE_OAUTH = 'oauth2.googleapis.com';
const prefix = `${uniqueName('act')}.`;
const topics = topicRegistry(prefix);
const procs: ServiceProcess[] = [];
let api: Api;
let producer: Producer;
let codec: SchemaCodec;
let braze: Emulator;
let iterableLists: Awaited<ReturnType<typeof iterableListsEmulator>>;
let tiktok: Awaited<ReturnType<typeof tiktokEmulator>>;
let dv360: Awaited<ReturnType<typeof dv360Emulator>>;
let spaceId: string;
let audience: { id: string; key: string };

const brazeSettings = { api_key: 'braze-key', app_id: 'app-1', endpoint: `https://${BRAZE}` };

beforeAll(async () => {
  const log = silentLogger();
  const kafka = createKafka({ brokers: testInfrastructure().kafkaBrokers, clientId: 'actions-test' }, { log });
  await ensureTopics(kafka, Object.values(topics));
  codec = new SchemaCodec({ url: testInfrastructure().schemaRegistryUrl });
  await codec.registerTopics(Object.values(topics));
  producer = createProducer(kafka);
  await producer.connect();
  braze = await brazeEmulator('braze-key');
  iterableLists = await iterableListsEmulator('it-key');
  tiktok = await tiktokEmulator({ accessToken: 'tt-token', advertiserIds: ['adv-1'] });
  dv360 = await dv360Emulator({
    clientId: 'dv-client',
    clientSecret: 'dv-secret',
    refreshToken: '1//dv-refresh',
    advertiserIds: ['778899'],
  });
  // The control plane reaches Iterable, TikTok and Google (an audience created when a connection is made) through the override too.
  const overrides = {
    'api.iterable.com': iterableLists.target,
    'business-api.tiktok.com': tiktok.target,
    [DV360]: dv360.target,
    [GOOGLE_OAUTH]: dv360.target,
  };
  const cp = startService('control-plane', deliveryEnv(prefix, TOKEN, { DESTINATION_HTTP_OVERRIDES: JSON.stringify(overrides) }));
  procs.push(cp);
  api = controlPlaneApi(`http://127.0.0.1:${await cp.port()}`, TOKEN);
  spaceId = (await api('POST', '/spaces', { name: 'Actions' })).data.space.id;
  audience = (
    await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'High Value',
      definition: { query: "event('Order Completed').count() >= 1", type: 'users' },
    })
  ).data.audience;
});
afterAll(async () => {
  await producer?.disconnect();
  await Promise.all(procs.map((p) => p.stop()));
  await braze?.receiver.stop();
  await iterableLists?.receiver.stop();
  await tiktok?.receiver.stop();
  await dv360?.receiver.stop();
});

const destinations = () => `/spaces/${spaceId}/destinations`;

describe('catalog and settings', () => {
  it('GET /catalog/destinations lists each available definition with its settings schema (secrets marked), actions, presets and rate limit', async () => {
    const { data } = await api('GET', '/catalog/destinations');
    expect(data.destinations.map((d: any) => d.slug)).toEqual([
      'actions-pardot',
      'braze',
      'braze-cohorts',
      'customerio',
      'display-video-360',
      'facebook-custom-audiences',
      'google-enhanced-conversions',
      'hubspot',
      'intercom',
      'iterable',
      'iterable-lists',
      'klaviyo',
      'linkedin-audiences',
      'mailchimp',
      'marketo',
      'marketo-static-lists',
      'responsys',
      'salesforce',
      'salesforce-marketing-cloud',
      'sendgrid',
      'sendgrid-audiences',
      'snap-audiences',
      'tiktok-audiences',
      'the-trade-desk-crm',
      'zendesk',
    ]);
    const entry = data.destinations.find((d: any) => d.slug === 'braze');
    expect(entry).toMatchObject({
      slug: 'braze',
      name: 'Braze Cloud Mode (Actions)',
      category: 'event',
      rateLimit: { requestsPerSecond: 100, source: 'segment', note: "Segment's documented rate limit for Braze" },
    });
    // Segment documents no rate for Facebook: the catalog states that 10/s is this system's default.
    const facebook = { requestsPerSecond: 10, source: 'engage', note: expect.stringContaining("Engage's default") };
    expect(data.destinations.find((d: any) => d.slug === 'facebook-custom-audiences').rateLimit).toEqual(facebook);
    expect((await api('GET', '/catalog/destinations/facebook-custom-audiences')).data.destination.rateLimit).toEqual(facebook);
    expect(data.destinations.find((d: any) => d.slug === 'marketo-static-lists').rateLimit).toMatchObject({
      requestsPerSecond: 5,
      source: 'segment',
    });
    expect(data.destinations.find((d: any) => d.slug === 'klaviyo').rateLimit).toBeNull();
    // Nor for Display & Video 360 (Google's quotas are per minute): 2/s is this system's default too.
    expect(data.destinations.find((d: any) => d.slug === 'display-video-360')).toMatchObject({
      category: 'list',
      rateLimit: { requestsPerSecond: 2, source: 'engage', note: expect.stringContaining("Engage's default") },
    });
    expect(entry.settings.required).toEqual(['api_key', 'endpoint']);
    expect(entry.settings.properties.api_key).toMatchObject({ type: 'string', writeOnly: true, 'x-secret': true });
    expect(entry.settings.properties.app_id['x-secret']).toBeUndefined();
    expect(entry.actions.find((a: any) => a.id === 'updateUserProfile')).toMatchObject({
      title: 'Update User Profile',
      defaultSubscription: 'type = "identify"',
      batching: true,
      fields: expect.objectContaining({ external_id: expect.objectContaining({ label: 'External User ID' }) }),
    });
    expect(entry.presets).toContainEqual(
      expect.objectContaining({ name: 'Identify Calls', actionId: 'updateUserProfile', subscribe: 'type = "identify"' }),
    );
  });

  it('refuses with 400 naming the field: an unknown slug, a missing required setting, a value outside the schema, an unknown setting', async () => {
    const create = (body: Record<string, unknown>) => api('POST', destinations(), { name: 'Braze', type: 'actions', ...body });
    expect((await create({ slug: 'not-a-destination', settings: {} })).errors).toEqual([
      expect.objectContaining({ field: 'slug', message: expect.stringContaining("'not-a-destination' is not an Actions destination") }),
    ]);
    expect((await create({ slug: 'braze', settings: { app_id: 'a' } })).errors).toEqual([
      { type: 'validation', field: 'settings.api_key', message: 'settings.api_key: is required' },
    ]);
    const badEndpoint = await create({ slug: 'braze', settings: { ...brazeSettings, endpoint: 'https://example.com' } });
    expect(badEndpoint.errors.map((e: any) => e.field)).toEqual(['settings.endpoint']);
    const unknown = await create({ slug: 'braze', settings: { ...brazeSettings, region: 'us' } });
    expect(unknown.errors.map((e: any) => e.field)).toEqual(['settings.region']);
    expect((await api('GET', destinations())).data.destinations).toEqual([]);
    // An OAuth definition takes its tokens in settings.oauth: required, and shown masked.
    expect((await api('POST', destinations(), { name: 'HubSpot', type: 'actions', slug: 'hubspot', settings: {} })).errors).toEqual([
      expect.objectContaining({ field: 'settings.oauth' }),
    ]);
    const hubspot = await api('POST', destinations(), {
      name: 'HubSpot',
      type: 'actions',
      slug: 'hubspot',
      settings: { oauth: { access_token: 'at', refresh_token: 'rt', clientId: 'c', clientSecret: 's' } },
    });
    expect(hubspot.data.destination.settings).toEqual({
      oauth: { access_token: MASK, refresh_token: MASK, clientId: MASK, clientSecret: MASK },
    });
    expect(hubspot.data.destination.mappings).toEqual([]); // HubSpot's definition has no presets
    await api('DELETE', `${destinations()}/${hubspot.data.destination.id}`);
    // A setting left out takes the definition's default (Braze's endpoint), as Segment fills it in.
    const defaulted = await create({ slug: 'braze', settings: { api_key: 'k' } });
    expect(defaulted.data.destination.settings).toEqual({ api_key: MASK, endpoint: 'https://rest.iad-01.braze.com' });
    await api('DELETE', `${destinations()}/${defaulted.data.destination.id}`);
  });
});

describe('a Braze destination', () => {
  let destinationId: string;
  let connectionId: string;

  it('is created with its secret masked and the presets as mappings; a connection counts the mappings its calls match', async () => {
    const created = await api('POST', destinations(), { name: 'Braze', type: 'actions', slug: 'braze', settings: brazeSettings });
    expect(created.data.destination).toMatchObject({
      type: 'actions',
      slug: 'braze',
      settings: { api_key: MASK, app_id: 'app-1', endpoint: `https://${BRAZE}` },
    });
    destinationId = created.data.destination.id;
    const mappings = (await api('GET', `${destinations()}/${destinationId}/mappings`)).data.mappings;
    expect(mappings.map((m: any) => [m.name, m.actionId, m.enabled])).toEqual([
      ['Track Calls', 'trackEvent', true],
      ['Order Placed (beta)', 'ecommerce', true],
      ['Checkout Started (beta)', 'ecommerce', true],
      ['Order Refunded (beta)', 'ecommerce', true],
      ['Order Cancelled (beta)', 'ecommerce', true],
      ['Product Viewed (beta)', 'ecommerceSingleProduct', true],
      ['Identify Calls', 'updateUserProfile', true],
    ]);
    const connection = await api('POST', `/spaces/${spaceId}/audiences/${audience.id}/destinations`, {
      destinationId,
      settings: { identify: true, track: true },
    });
    connectionId = connection.data.connection.id;
    // Identify Calls matches the identify; Track Calls both Audience Entered and Exited.
    expect(connection.data.connection.matchingMappings).toEqual({ matching: 2, enabled: 2, disabled: 0 });

    const identify = mappings.find((m: any) => m.name === 'Identify Calls');
    const track = mappings.find((m: any) => m.name === 'Track Calls');
    expect((await api('PATCH', `${destinations()}/${destinationId}/mappings/${track.id}`, { enabled: false })).data.mapping.enabled).toBe(
      false,
    );
    const listed = await api('GET', `/spaces/${spaceId}/audiences/${audience.id}/destinations`);
    expect(listed.data.connections.find((c: any) => c.id === connectionId).matchingMappings).toEqual({
      matching: 2,
      enabled: 1,
      disabled: 1,
    });
    expect(identify.enabled).toBe(true);
  });

  it('mappings: refuses an unknown action or unreadable FQL with 400 naming the field; adds, edits and deletes', async () => {
    const path = `${destinations()}/${destinationId}/mappings`;
    expect((await api('POST', path, { actionId: 'sendFax', subscribe: 'type = "track"' })).errors).toEqual([
      expect.objectContaining({ field: 'actionId', message: expect.stringMatching(/^actionId: is not an action of braze/) }),
    ]);
    expect((await api('POST', path, { actionId: 'trackEvent', subscribe: 'type = "track" and (' })).errors).toEqual([
      expect.objectContaining({ field: 'subscribe', message: expect.stringMatching(/^subscribe: is not valid FQL/) }),
    ]);
    const added = (
      await api('POST', path, { name: 'Exits', actionId: 'trackEvent', subscribe: 'event = "Audience Exited"', enabled: false })
    ).data.mapping;
    // Fields left out take the action's defaults, as Segment's mapping editor fills them in.
    expect(added).toMatchObject({
      id: expect.stringMatching(/^map_/),
      mapping: expect.objectContaining({ external_id: { '@path': '$.userId' }, name: { '@path': '$.event' } }),
      enabled: false,
    });
    expect(
      (await api('PATCH', `${path}/${added.id}`, { subscribe: 'event = "Audience Exited" and type = "track"' })).data.mapping,
    ).toMatchObject({ subscribe: 'event = "Audience Exited" and type = "track"', enabled: false });
    expect((await api('DELETE', `${path}/${added.id}`)).data.status).toBe('SUCCESS');
    expect((await api('GET', path)).data.mappings.map((m: any) => m.id)).not.toContain(added.id);
    // A webhook has no mappings: its connections show null ("Not applicable").
    const hook = (await api('POST', destinations(), { name: 'Hook', type: 'webhook', settings: { url: 'http://127.0.0.1:9/h' } })).data
      .destination;
    expect((await api('GET', `${destinations()}/${hook.id}/mappings`)).errors[0].message).toMatch(
      /only Actions destinations have mappings/,
    );
    const hooked = await api('POST', `/spaces/${spaceId}/audiences/${audience.id}/destinations`, {
      destinationId: hook.id,
      settings: { identify: true },
    });
    expect(hooked.data.connection.matchingMappings).toBeNull();
  });

  it('keeps its secret when a PATCH sends the mask back, and the dispatcher delivers an entry to Braze through DESTINATION_HTTP_OVERRIDES', async () => {
    const patched = await api('PATCH', `${destinations()}/${destinationId}`, {
      settings: { ...brazeSettings, api_key: MASK, app_id: 'app-2' },
    });
    expect(patched.data.destination.settings).toEqual({ api_key: MASK, app_id: 'app-2', endpoint: `https://${BRAZE}` });

    procs.push(
      startService(
        'dispatcher',
        deliveryEnv(prefix, TOKEN, {
          DESTINATION_ID: destinationId,
          DESTINATION_HTTP_OVERRIDES: JSON.stringify({ [BRAZE]: braze.target }),
        }),
      ),
    );
    const change: ComputationChange = {
      change_id: `chg_${Date.now()}`,
      space_id: spaceId,
      computation_id: audience.id,
      computation_key: audience.key,
      computation_class: 'audience',
      level: 'user',
      profile_id: 'pro_actions_1',
      value: true,
      previous: false,
      value_is_json: false,
      reason: 'realtime',
      occurred_at: Date.now(),
      emitted_at: Date.now(),
      external_ids: [{ type: 'user_id', id: 'u-actions-1' }],
      user_id: 'u-actions-1',
      anonymous_id: null,
      traits_json: '{}',
    };
    await publishChanges(producer, codec, topics.computationsChanges.name, [change]);
    const request = await waitFor(() => braze.receiver.ok('/users/track')[0], { timeoutMs: 60_000, description: 'Braze /users/track' });
    expect(request.headers.authorization).toBe('Bearer braze-key');
    expect(request.headers.host).toBe(BRAZE);
    expect(request.body.attributes).toEqual([expect.objectContaining({ external_id: 'u-actions-1', [audience.key]: true })]);
    // Track Calls was disabled above: the identify is the only call.
    await braze.receiver.quietFor(500);
    expect(braze.receiver.requests).toHaveLength(1);
  });
});

describe('an audience destination (Iterable Lists)', () => {
  it("connecting an audience creates the vendor's list through the definition and keeps its id on the connection; a refused key is a 502", async () => {
    const create = (apiKey: string) =>
      api('POST', destinations(), { name: `Lists ${apiKey}`, type: 'actions', slug: 'iterable-lists', settings: { apiKey } });
    const good = (await create('it-key')).data.destination;
    const connected = await api('POST', `/spaces/${spaceId}/audiences/${audience.id}/destinations`, {
      destinationId: good.id,
      settings: { identify: true },
    });
    const listId = connected.data.connection.externalAudienceId;
    expect([...iterableLists.lists].map(([id, l]) => [String(id), l.name])).toEqual([[listId, audience.key]]);

    const bad = (await create('revoked-key')).data.destination;
    const refused = await api('POST', `/spaces/${spaceId}/audiences/${audience.id}/destinations`, {
      destinationId: bad.id,
      settings: { identify: true },
    });
    expect(refused.errors).toEqual([
      {
        type: 'destination',
        field: 'destinationId',
        message: expect.stringMatching(/^Lists revoked-key refused to create the audience \(HTTP 401\)/),
      },
    ]);
    const listed = (await api('GET', `/spaces/${spaceId}/audiences/${audience.id}/destinations`)).data.connections;
    expect(listed.map((c: any) => c.destinationId)).not.toContain(bad.id);
  });
});

describe('an audience destination with audience settings (TikTok Audiences)', () => {
  it("connecting an audience checks its audienceSettings against the definition's audienceFields, creates the segment for that advertiser and keeps both", async () => {
    const tiktokDestination = (
      await api('POST', destinations(), {
        name: 'TikTok',
        type: 'actions',
        slug: 'tiktok-audiences',
        settings: { oauth: { access_token: 'tt-token' } },
      })
    ).data.destination;
    const connect = (body: Record<string, unknown>) =>
      api('POST', `/spaces/${spaceId}/audiences/${audience.id}/destinations`, { destinationId: tiktokDestination.id, ...body });
    expect((await connect({ settings: { track: true }, audienceSettings: { advertiser: 'adv-1' } })).errors).toEqual([
      {
        type: 'validation',
        field: 'audienceSettings.advertiser',
        message: 'audienceSettings.advertiser: is not an audience setting of tiktok-audiences (advertiserId)',
      },
    ]);
    expect((await connect({ settings: { track: true }, audienceSettings: { advertiserId: { id: 'adv-1' } } })).errors).toEqual([
      {
        type: 'validation',
        field: 'audienceSettings.advertiserId',
        message: 'audienceSettings.advertiserId: Advertiser ID must be a string but it was an object.',
      },
    ]);
    expect(tiktok.receiver.requests).toEqual([]);
    const { connection } = (await connect({ settings: { track: true }, audienceSettings: { advertiserId: 'adv-1' } })).data;
    expect(connection).toMatchObject({ audienceSettings: { advertiserId: 'adv-1' }, externalAudienceId: expect.any(String) });
    expect(tiktok.receiver.requests.map((r) => [r.path, r.headers['access-token'], r.body])).toEqual([
      ['/open_api/v1.3/segment/audience/', 'tt-token', { custom_audience_name: 'High Value', advertiser_id: 'adv-1', action: 'create' }],
    ]);
    expect([...tiktok.segments].map(([id, s]) => [id, s.name, s.advertiserId])).toEqual([
      [connection.externalAudienceId, 'High Value', 'adv-1'],
    ]);
    const listed = (await api('GET', `/spaces/${spaceId}/audiences/${audience.id}/destinations`)).data.connections;
    expect(listed.find((c: any) => c.destinationId === tiktokDestination.id)).toMatchObject({
      audienceSettings: { advertiserId: 'adv-1' },
    });
  });
});

describe('an audience destination of our own (Display & Video 360 Customer Match)', () => {
  it('connecting an audience creates the Customer Match audience (a stale token refreshed); the dispatcher adds an entry as its hashed email', async () => {
    const oauth = { access_token: 'ya29.stale', refresh_token: '1//dv-refresh', clientId: 'dv-client', clientSecret: 'dv-secret' };
    const created = await api('POST', destinations(), {
      name: 'DV360',
      type: 'actions',
      slug: 'display-video-360',
      settings: { advertiserId: '778899', oauth },
    });
    const destination = created.data.destination;
    // The OAuth tokens are written only; the definition's default membership duration is filled in.
    expect(JSON.stringify(destination.settings)).not.toMatch(/ya29|dv-refresh|dv-secret/);
    expect(destination.settings).toMatchObject({ advertiserId: '778899', membershipDurationDays: 540 });
    expect(destination.mappings.map((m: any) => [m.actionId, m.subscribe])).toEqual([
      ['syncAudience', 'type = "identify" or event = "Audience Entered" or event = "Audience Exited"'],
    ]);

    const { connection } = (
      await api('POST', `/spaces/${spaceId}/audiences/${audience.id}/destinations`, {
        destinationId: destination.id,
        settings: { identify: true },
      })
    ).data;
    expect(connection.externalAudienceId).toEqual(expect.any(String));
    expect(dv360.receiver.requests.map((r) => [r.headers.host, r.path.split('?')[0], r.status, r.headers.authorization ?? null])).toEqual([
      [DV360, '/v3/firstAndThirdPartyAudiences', 401, 'Bearer ya29.stale'],
      [GOOGLE_OAUTH, '/token', 200, null],
      [DV360, '/v3/firstAndThirdPartyAudiences', 200, 'Bearer ya29.dv360-1'],
    ]);
    expect(dv360.audiences.get(connection.externalAudienceId)).toMatchObject({ advertiserId: '778899', displayName: 'High Value' });

    procs.push(
      startService(
        'dispatcher',
        deliveryEnv(prefix, TOKEN, {
          DESTINATION_ID: destination.id,
          DESTINATION_HTTP_OVERRIDES: JSON.stringify({ [DV360]: dv360.target, [GOOGLE_OAUTH]: dv360.target }),
        }),
      ),
    );
    const change: ComputationChange = {
      change_id: `chg_dv_${Date.now()}`,
      space_id: spaceId,
      computation_id: audience.id,
      computation_key: audience.key,
      computation_class: 'audience',
      level: 'user',
      profile_id: 'pro_dv_1',
      value: true,
      previous: false,
      value_is_json: false,
      reason: 'realtime',
      occurred_at: Date.now(),
      emitted_at: Date.now(),
      external_ids: [
        { type: 'user_id', id: 'u-dv-1' },
        { type: 'email', id: 'Dv.One@Example.com' },
      ],
      user_id: 'u-dv-1',
      anonymous_id: null,
      traits_json: '{}',
    };
    await publishChanges(producer, codec, topics.computationsChanges.name, [change]);
    const edit = `/v3/firstAndThirdPartyAudiences/${connection.externalAudienceId}:editCustomerMatchMembers`;
    const request = await waitFor(() => dv360.receiver.ok(edit)[0], { timeoutMs: 60_000, description: 'editCustomerMatchMembers' });
    expect(request.body).toEqual({
      advertiserId: '778899',
      addedContactInfoList: {
        contactInfos: [{ hashedEmails: [sha256('dv.one@example.com')] }],
        consent: { adUserData: 'CONSENT_STATUS_GRANTED', adPersonalization: 'CONSENT_STATUS_GRANTED' },
      },
    });
    expect([...dv360.audiences.get(connection.externalAudienceId)!.members]).toEqual([sha256('dv.one@example.com')]);
  });
});
