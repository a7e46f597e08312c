// Google Ads Customer Match (Segment's google-enhanced-conversions
// definition, its userList action, issue 19): the user list created through
// the definition's createAudience when a connection is made, an audience
// entry and exit through the dispatch step to an offline user data job adding
// and removing SHA-256 hashed emails, over real HTTP to an emulator of
// Google's OAuth token endpoint and the Google Ads API; the access token
// refreshed through the definition and kept. Real Redis, an injected clock.
import { createExternalAudience } from '@engage/actions';
import { actionsTestbed, actionsFixture, mappingOf, statusHash, withEmail } from './testing/actions-fixture';
import { AUDIENCE, SPACE } from './testing/dispatch-fixture';
import { googleAdsEmulator, googleAdsError, sha256 } from './testing/google-ads-emulator';

const { redis, ctx, emulators, runtimes } = actionsTestbed();

// NOTE: the definition reads the operator's developer token and OAuth client from the process environment.
const ENV = {
  ADWORDS_DEVELOPER_TOKEN: 'dev-token',
  GOOGLE_ENHANCED_CONVERSIONS_CLIENT_ID: 'goog-client',
  GOOGLE_ENHANCED_CONVERSIONS_CLIENT_SECRET: 'goog-secret',
};
const saved = Object.fromEntries(Object.keys(ENV).map((k) => [k, process.env[k]]));
beforeAll(() => {
  Object.assign(process.env, ENV);
});
afterAll(() => {
  for (const [k, v] of Object.entries(saved))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
});

const ADS = 'googleads.googleapis.com';
const OAUTH = 'www.googleapis.com';
const CUSTOMER = '1234567890';
const settings = (refreshToken = '1//refresh') => ({
  customerId: '123-456-7890',
  oauth: { access_token: 'ya29.stale', refresh_token: refreshToken, clientId: 'goog-client', clientSecret: 'goog-secret' },
});
const audienceSettings = { external_id_type: 'CONTACT_INFO' };
const audience = { id: AUDIENCE.id, key: AUDIENCE.key, name: 'VIP', spaceId: SPACE };
// Segment's docs for Engage: the userList action on the audience's track calls, consent stated in the mapping.
const mappings = mappingOf(
  'google-enhanced-conversions',
  'userList',
  'type = "track" and (event = "Audience Entered" or event = "Audience Exited")',
  { ad_user_data_consent_state: 'GRANTED', ad_personalization_consent_state: 'GRANTED' },
);
const TOKEN = '/oauth2/v4/token';
const JOBS = `/v21/customers/${CUSTOMER}/offlineUserDataJobs`;

async function setup(over: { refreshToken?: string; listId?: string; audienceSettings?: Record<string, unknown> | null } = {}) {
  const google = await googleAdsEmulator({
    clientId: 'goog-client',
    clientSecret: 'goog-secret',
    refreshToken: '1//refresh',
    developerToken: 'dev-token',
    customerId: CUSTOMER,
  });
  emulators.push(google);
  const hosts = { [ADS]: google, [OAUTH]: google };
  const listId = await createExternalAudience(
    { slug: 'google-enhanced-conversions', settings: settings() },
    audience,
    { [ADS]: google.target, [OAUTH]: google.target },
    audienceSettings,
  );
  const fx = actionsFixture(redis, {
    slug: 'google-enhanced-conversions',
    hosts,
    settings: settings(over.refreshToken),
    mappings,
    connection: { identify: false, track: true },
    externalAudienceId: over.listId ?? listId,
    ...(over.audienceSettings === null ? {} : { audienceSettings: over.audienceSettings ?? audienceSettings }),
  });
  runtimes.push(fx.actions);
  const created = google.receiver.requests.length;
  const calls = () =>
    google.receiver.requests.slice(created).map((r) => [r.headers.host, r.path, r.status, r.headers.authorization ?? null]);
  return { google, fx, listId, calls, sent: () => google.receiver.requests.slice(created) };
}
const members = (google: Awaited<ReturnType<typeof googleAdsEmulator>>, listId: string) => [...google.lists.get(listId)!.members];

describe('Google Ads Customer Match (Actions): a user list per audience, hashed emails added and removed through offline user data jobs', () => {
  it('createAudience makes the CRM-based list; the stale token is refreshed once and kept; entries and the exit are jobs of SHA-256 emails', async () => {
    const { google, fx, listId, calls, sent } = await setup();
    expect(google.receiver.requests.map((r) => [r.headers.host, r.path, r.headers['developer-token'] ?? null, r.body])).toEqual([
      [OAUTH, TOKEN, null, expect.stringContaining('grant_type=refresh_token')],
      [
        ADS,
        `/v21/customers/${CUSTOMER}/userLists:mutate`,
        'dev-token',
        { operations: [{ create: { crmBasedUserList: { uploadKeyType: 'CONTACT_INFO' }, membershipLifeSpan: '540', name: 'VIP' } }] },
      ],
    ]);
    expect([...google.lists]).toEqual([[listId, { name: 'VIP', uploadKeyType: 'CONTACT_INFO', members: new Set() }]]);

    expect(await fx.step.handle([fx.consumed(withEmail('g1', true), 0), fx.consumed(withEmail('G2', true), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(await fx.step.handle([fx.consumed(withEmail('g1', false), 2)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(calls()).toEqual([
      [ADS, `${JOBS}:create`, 401, 'Bearer ya29.stale'],
      [OAUTH, TOKEN, 200, null],
      [ADS, `${JOBS}:create`, 200, 'Bearer ya29.google-2'],
      [ADS, `${JOBS}/7001:addOperations`, 200, 'Bearer ya29.google-2'],
      [ADS, `${JOBS}/7001:run`, 200, 'Bearer ya29.google-2'],
      // The exit starts with the kept token.
      [ADS, `${JOBS}:create`, 200, 'Bearer ya29.google-2'],
      [ADS, `${JOBS}/7002:addOperations`, 200, 'Bearer ya29.google-2'],
      [ADS, `${JOBS}/7002:run`, 200, 'Bearer ya29.google-2'],
    ]);
    expect(Object.fromEntries(new URLSearchParams(sent()[1]!.body))).toEqual({
      refresh_token: '1//refresh',
      client_id: 'goog-client',
      client_secret: 'goog-secret',
      grant_type: 'refresh_token',
    });
    expect(sent()[2]!.body).toEqual({
      job: {
        type: 'CUSTOMER_MATCH_USER_LIST',
        customerMatchUserListMetadata: {
          userList: `customers/${CUSTOMER}/userLists/${listId}`,
          consent: { adUserData: 'GRANTED', adPersonalization: 'GRANTED' },
        },
      },
    });
    // Emails lower-cased and trimmed before hashing.
    expect([sent()[3]!.body, sent()[6]!.body]).toEqual([
      {
        operations: [
          { create: { userIdentifiers: [{ hashedEmail: sha256('g1@example.com') }] } },
          { create: { userIdentifiers: [{ hashedEmail: sha256('g2@example.com') }] } },
        ],
        enablePartialFailure: true,
      },
      { operations: [{ remove: { userIdentifiers: [{ hashedEmail: sha256('g1@example.com') }] } }], enablePartialFailure: true },
    ]);
    expect(members(google, listId)).toEqual([sha256('g2@example.com')]);
    expect(fx.letters).toEqual([]);
  });

  it('a 429 waits for its Retry-After; CONCURRENT_MODIFICATION is retried; an identifier Google refuses fails alone', async () => {
    const { google, fx, listId, calls } = await setup();
    expect(await fx.step.handle([fx.consumed(withEmail('g3', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    google.faults.push(
      googleAdsError(429, 'Resource has been exhausted (e.g. check quota).', { quotaError: 'RESOURCE_EXHAUSTED' }, { 'retry-after': '6' }),
      googleAdsError(409, 'Multiple requests were attempting to modify the same resource at once.', {
        databaseError: 'CONCURRENT_MODIFICATION',
      }),
    );
    expect(await fx.step.handle([fx.consumed(withEmail('g4', true), 1)], ctx)).toEqual([{ kind: 'ok' }]);
    fx.clock.now += 5999;
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    expect(await fx.drain()).toBe(1);
    fx.clock.now += 60_000;
    expect(await fx.drain()).toBe(1);
    expect(calls().slice(5)).toEqual([
      [ADS, `${JOBS}:create`, 429, 'Bearer ya29.google-2'],
      [ADS, `${JOBS}:create`, 409, 'Bearer ya29.google-2'], // after 6 s
      [ADS, `${JOBS}:create`, 200, 'Bearer ya29.google-2'], // after backoff
      [ADS, `${JOBS}/7002:addOperations`, 200, 'Bearer ya29.google-2'],
      [ADS, `${JOBS}/7002:run`, 200, 'Bearer ya29.google-2'],
    ]);
    expect(members(google, listId)).toEqual([sha256('g3@example.com'), sha256('g4@example.com')]);

    // An email already hashed, but upper-case: sent as it is, refused by Google (a partial failure naming its index).
    const hashed = sha256('g6@example.com').toUpperCase();
    const odd = withEmail('g6', true, {
      external_ids: [
        { type: 'user_id', id: 'u-g6' },
        { type: 'email', id: hashed },
      ],
    });
    expect(await fx.step.handle([fx.consumed(withEmail('g5', true), 2), fx.consumed(odd, 3)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: The SHA256 encoded value is malformed/), step: 'deliver' },
    ]);
    expect(members(google, listId)).toEqual([sha256('g3@example.com'), sha256('g4@example.com'), sha256('g5@example.com')]);
  });

  it('a revoked refresh token is dead-lettered and flagged; a list Google does not have, or no audience settings, dead-lettered with the message', async () => {
    const revoked = await setup({ refreshToken: '1//revoked' });
    expect(await revoked.fx.step.handle([revoked.fx.consumed(withEmail('g7', true), 0)], ctx)).toEqual([
      {
        kind: 'dlq',
        reason: expect.stringMatching(/^HTTP 401 \(credentials refused\): OAuth token refresh failed.*invalid_grant/),
        step: 'deliver',
      },
    ]);
    expect(await statusHash(redis, revoked.fx)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });

    const gone = await setup({ listId: '1' });
    expect(await gone.fx.step.handle([gone.fx.consumed(withEmail('g8', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: The user list does not exist for this customer/), step: 'deliver' },
    ]);
    const none = await setup({ audienceSettings: null });
    expect(await none.fx.step.handle([none.fx.consumed(withEmail('g9', true), 0)], ctx)).toEqual([
      // The definition reads audienceSettings.external_id_type unchecked: its TypeError, not retried.
      { kind: 'dlq', reason: expect.stringMatching(/^action failed: .*'external_id_type'.*\(not retriable\)/), step: 'deliver' },
    ]);
    expect(await none.fx.schedule.size()).toBe(0);
  });
});
