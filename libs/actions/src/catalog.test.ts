// The catalog over the package's real definitions (no IO: require() of the
// CommonJS build): settings checks naming the field, presets as mappings,
// secret fields, OAuth settings.
import {
  ACTIONS_SLUGS,
  catalogEntry,
  isActionsSlug,
  mappingIssues,
  presetMappings,
  secretFieldsOf,
  settingsIssues,
  audienceSettingsIssues,
  withDefaultSettings,
} from './index';
import { rateLimitOf } from '@engage/delivery';

describe('settings checked against the definition', () => {
  it('names each missing, unknown or invalid setting', () => {
    expect(settingsIssues('braze', { api_key: 'k', endpoint: 'https://rest.iad-01.braze.com' })).toEqual([]);
    expect(settingsIssues('braze', { endpoint: 'https://rest.iad-01.braze.com', region: 'us' })).toEqual([
      ['settings.region', 'is not a setting of braze (api_key, app_id, endpoint)'],
      ['settings.api_key', 'is required'],
    ]);
    expect(settingsIssues('braze', { api_key: 'k', endpoint: 'https://example.com' }).map(([field]) => field)).toEqual([
      'settings.endpoint',
    ]);
    // NOTE: actions-core's validator coerces scalars (7 passes as "7", as it does when the action runs); an object does not.
    expect(settingsIssues('iterable', { apiKey: { key: 'k' } })).toEqual([['settings.apiKey', expect.stringContaining('string')]]);
  });

  it('fills in the definition defaults for settings left out, never over a given value', () => {
    expect(withDefaultSettings('braze', { api_key: 'k' })).toEqual({ api_key: 'k', endpoint: 'https://rest.iad-01.braze.com' });
    expect(withDefaultSettings('braze', { endpoint: 'https://rest.fra-01.braze.eu' })).toEqual({
      endpoint: 'https://rest.fra-01.braze.eu',
    });
  });

  it('Salesforce takes OAuth tokens only: its username-password flow (a request client of its own, untested) is refused', () => {
    const oauth = { access_token: 't', refresh_token: 'r', clientId: 'c', clientSecret: 's' };
    expect(settingsIssues('salesforce', { instanceUrl: 'https://acme.my.salesforce.com/', oauth })).toEqual([]);
    expect(
      settingsIssues('salesforce', { instanceUrl: 'https://acme.my.salesforce.com/', oauth, username: 'u', auth_password: 'p' }),
    ).toEqual([
      ['settings.username', 'is not a setting of salesforce (instanceUrl, isSandbox, oauth)'],
      ['settings.auth_password', 'is not a setting of salesforce (instanceUrl, isSandbox, oauth)'],
    ]);
    expect(Object.keys(catalogEntry('salesforce').settings.properties as object)).toEqual(['instanceUrl', 'isSandbox', 'oauth']);
  });

  it('OAuth definitions take settings.oauth: required, with its own fields', () => {
    expect(settingsIssues('hubspot', { oauth: { access_token: 't', refresh_token: 'r', clientId: 'c', clientSecret: 's' } })).toEqual([]);
    expect(settingsIssues('hubspot', {})).toEqual([
      ['settings.oauth', 'is required: {access_token, refresh_token?, clientId?, clientSecret?}'],
    ]);
    expect(settingsIssues('hubspot', { oauth: { refresh_token: '', scope: 'x' } })).toEqual([
      ['settings.oauth.refresh_token', 'must be a non-empty string'],
      ['settings.oauth.scope', 'is not an OAuth setting (access_token, refresh_token, clientId, clientSecret)'],
      ['settings.oauth.access_token', 'is required'],
    ]);
    expect(settingsIssues('braze', { api_key: 'k', endpoint: 'https://rest.iad-01.braze.com', oauth: {} })[0]![0]).toBe('settings.oauth');
    // Marketo gets its token from its client credentials: no settings.oauth to give.
    expect(settingsIssues('marketo', { munchkinId: '123-ABC-456', clientId: 'c', clientSecret: 's' })).toEqual([]);
    expect(
      settingsIssues('marketo', { munchkinId: '123-ABC-456', clientId: 'c', clientSecret: 's', oauth: { access_token: 't' } }),
    ).toEqual([['settings.oauth', 'is not a setting of marketo (munchkinId, clientId, clientSecret)']]);
  });
});

describe("a connection's audience settings checked against the definition's audienceFields", () => {
  it('takes those the definition names, refuses others and bad values naming the field; a definition without audienceFields takes none', () => {
    expect(audienceSettingsIssues('tiktok-audiences', { advertiserId: 'adv-1' })).toEqual([]);
    expect(audienceSettingsIssues('tiktok-audiences', { advertiser: 'adv-1', advertiserId: { id: 'adv-1' } })).toEqual([
      ['audienceSettings.advertiser', 'is not an audience setting of tiktok-audiences (advertiserId)'],
      ['audienceSettings.advertiserId', 'Advertiser ID must be a string but it was an object.'],
    ]);
    expect(audienceSettingsIssues('google-enhanced-conversions', { external_id_type: 'CONTACT_INFO' })).toEqual([]);
    expect(audienceSettingsIssues('google-enhanced-conversions', { external_id_type: 'EMAIL' })).toEqual([
      ['audienceSettings.external_id_type', 'External ID Type must be one of: "CONTACT_INFO", "CRM_ID", or "MOBILE_ADVERTISING_ID".'],
    ]);
    // Facebook's: an ad account overriding the destination's, and a description (required by the definition when any is given).
    expect(
      audienceSettingsIssues('facebook-custom-audiences', { engageAdAccountId: 'act_2002', audienceDescription: 'Engage audience' }),
    ).toEqual([]);
    expect(audienceSettingsIssues('facebook-custom-audiences', { engageAdAccountId: 'act_2002' })).toEqual([
      ['audienceSettings.audienceDescription', 'is required'],
    ]);
    expect(audienceSettingsIssues('braze', { x: 1 })).toEqual([['audienceSettings.x', 'is not an audience setting of braze (none)']]);
  });
});

describe('the catalog', () => {
  it('lists only allowed slugs; secrets are the password fields', () => {
    expect(ACTIONS_SLUGS).toEqual([
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
    expect(isActionsSlug('aws-kinesis')).toBe(false);
    expect(() => catalogEntry('aws-kinesis')).toThrow("'aws-kinesis' is not an Actions destination available here");
    expect(secretFieldsOf('braze')).toEqual(['api_key']);
    expect(secretFieldsOf('customerio')).toEqual(['siteId', 'apiKey']);
    const hubspot = catalogEntry('hubspot');
    expect(hubspot.settings).toMatchObject({ required: ['oauth'], properties: { oauth: { writeOnly: true, 'x-secret': true } } });
    expect(hubspot.rateLimit).toEqual({ requestsPerSecond: 5, source: 'segment', note: "Segment's documented rate limit for HubSpot" });
  });

  it("gives each slug of a vendor in Segment's rate table that vendor's default, and Facebook an explicit default of its own", () => {
    const rates = Object.fromEntries(ACTIONS_SLUGS.map((slug) => [slug, catalogEntry(slug).rateLimit]));
    const perSecond = Object.fromEntries(Object.entries(rates).map(([slug, r]) => [slug, r?.requestsPerSecond ?? null]));
    expect(perSecond).toEqual({
      'actions-pardot': 2,
      braze: 100,
      'braze-cohorts': 100,
      customerio: 30,
      'display-video-360': 2,
      'facebook-custom-audiences': 10,
      'google-enhanced-conversions': null,
      hubspot: 5,
      intercom: 8,
      iterable: 500,
      'iterable-lists': 500,
      klaviyo: null,
      'linkedin-audiences': null,
      mailchimp: 10,
      marketo: 5,
      'marketo-static-lists': 5,
      responsys: 3,
      salesforce: 5,
      'salesforce-marketing-cloud': 20,
      sendgrid: 100,
      'sendgrid-audiences': 100,
      'snap-audiences': null,
      'tiktok-audiences': null,
      'the-trade-desk-crm': null,
      zendesk: 50,
    });
    // Segment documents no rate for Facebook: the catalog says the 10/s is this system's default, not a vendor figure.
    expect(rates['facebook-custom-audiences']).toEqual({
      requestsPerSecond: 10,
      source: 'engage',
      note: expect.stringMatching(/^Engage's default: Segment documents no rate limit for Facebook/),
    });
    // Nor for Display & Video 360: Google documents per-minute quotas (700 writes per project, 150 per advertiser).
    expect(rates['display-video-360']).toEqual({
      requestsPerSecond: 2,
      source: 'engage',
      note: expect.stringMatching(/^Engage's default: Segment documents no rate limit for Display & Video 360.*150 per advertiser/),
    });
    for (const [slug, r] of Object.entries(rates))
      if (r && slug !== 'facebook-custom-audiences' && slug !== 'display-video-360')
        expect([slug, r.source, r.note]).toEqual([slug, 'segment', expect.stringMatching(/^Segment's documented rate limit for /)]);
    // The dispatcher throttles an Actions destination by the same figure (its own rateLimit wins).
    expect(rateLimitOf({ type: 'actions', slug: 'facebook-custom-audiences' })).toEqual({ perSecond: 10, burst: 1 });
    expect(rateLimitOf({ type: 'actions', slug: 'braze-cohorts' })).toEqual({ perSecond: 100, burst: 1 });
    expect(rateLimitOf({ type: 'actions', slug: 'klaviyo' })).toBeNull();
    expect(rateLimitOf({ type: 'actions', slug: 'hubspot', rateLimit: { requestsPerSecond: 1 } })).toEqual({ perSecond: 1, burst: 1 });
    expect(rateLimitOf({ type: 'actions', slug: 'constructor' })).toBeNull();
  });

  it.each([
    ['actions-pardot', 'Pardot (Actions)', 'event', [], ['businessUnitID', 'accountID', 'oauth'], [['prospects', false]], 2],
    // slug, name, category, secrets, required settings, actions (batching), default rate (the vendor's, per Segment's table)
    ['braze-cohorts', 'Braze Cohorts', 'list', ['client_secret'], ['client_secret', 'endpoint'], [['syncAudiences', true]], 100],
    [
      'intercom',
      'Intercom Cloud Mode (Actions)',
      'event',
      [],
      ['oauth'],
      [
        ['identifyContact', false],
        ['groupIdentifyContact', false],
        ['trackEvent', false],
      ],
      8,
    ],
    [
      'klaviyo',
      'Klaviyo (Actions)',
      'list',
      ['api_key'],
      ['api_key'],
      [
        ['upsertProfile', true],
        ['addProfileToList', true],
        ['removeProfileFromList', true],
        ['trackEvent', true],
        ['orderCompleted', false],
        ['subscribeProfile', true],
        ['unsubscribeProfile', true],
        ['removeProfile', true],
      ],
      null, // not in Segment's table: no default, an override when set
    ],
    [
      'salesforce',
      'Salesforce (Actions)',
      'event',
      [],
      ['instanceUrl', 'oauth'],
      [
        'lead',
        'customObject',
        'cases',
        'contact',
        'opportunity',
        'account',
        'lead2',
        'customObject2',
        'account2',
        'opportunity2',
        'contact2',
        'cases2',
      ].map((id) => [id, true]),
      5,
    ],
    [
      'linkedin-audiences',
      'Linkedin Audiences',
      'list',
      [],
      ['ad_account_id', 'send_email', 'send_google_advertising_id', 'oauth'],
      [['updateAudience', true]],
      null,
    ],
    // Segment's, by username and password (its token from the login); only the actions that use the runtime's request client.
    [
      'responsys',
      'Responsys (Actions)',
      'event',
      ['userPassword'],
      ['username', 'userPassword', 'baseUrl', 'insertOnNoMatch', 'matchColumnName1', 'updateOnMatch', 'defaultPermissionStatus'],
      [
        ['sendAudience', true],
        ['sendCustomTraits', true],
      ],
      3,
    ],
    // Segment's, by client credentials for its subdomain; the V2 actions (their data extension from a mapping-save hook) left out.
    [
      'salesforce-marketing-cloud',
      'Salesforce Marketing Cloud (Actions)',
      'event',
      ['client_secret'],
      ['subdomain', 'account_id', 'client_id', 'client_secret'],
      [
        ['contactDataExtension', true],
        ['dataExtension', true],
        ['contact', false],
        ['apiEvent', false],
      ],
      20,
    ],
    // Segment's Google Ads definition, its Customer Match action only (its automatic preset is a browser plugin's: none kept).
    ['google-enhanced-conversions', 'Google Ads Conversions', 'list', [], ['oauth'], [['userList', true]], null],
    ['snap-audiences', 'Snap Audiences (Actions)', 'list', [], ['ad_account_id', 'oauth'], [['syncAudience', true]], null],
    // Segment's; its presets are warehouse and journeys events (none kept); Facebook's rate is our own type's default.
    ['facebook-custom-audiences', 'Facebook Custom Audiences (Actions)', 'list', [], ['retlAdAccountId', 'oauth'], [['sync', true]], 10],
    // Our own; OAuth by client credentials: its token comes from its settings, no settings.oauth.
    ['marketo', 'Marketo (Engage)', 'event', ['clientSecret'], ['munchkinId', 'clientId', 'clientSecret'], [['upsertLead', true]], 5],
    // Segment's, by client credentials too; its presets are warehouse and journeys events (none kept).
    [
      'marketo-static-lists',
      'Marketo Static Lists (Actions)',
      'list',
      ['client_secret'],
      ['client_id', 'client_secret', 'api_endpoint', 'folder_name'],
      [
        ['addToList', true],
        ['removeFromList', true],
      ],
      5,
    ],
    [
      'tiktok-audiences',
      'TikTok Audiences',
      'list',
      [],
      ['oauth'],
      [
        ['syncAudience', true],
        ['addToAudience', true],
        ['removeFromAudience', true],
        ['addUser', true],
        ['removeUser', true],
        ['createAudience', false],
      ],
      null,
    ],
    ['sendgrid-audiences', 'SendGrid Lists (Actions)', 'list', ['sendGridApiKey'], ['sendGridApiKey'], [['syncAudience', true]], 100],
    // Our own Customer Match definition (definitions/display-video-360.ts): OAuth tokens in settings.oauth, written only.
    ['display-video-360', 'Display & Video 360 (Engage)', 'list', [], ['advertiserId', 'oauth'], [['syncAudience', true]], 2],
    // A full-audience destination (full-audience.ts): its two internal flags are filled in as true (withDefaultSettings).
    [
      'the-trade-desk-crm',
      'The Trade Desk CRM',
      'list',
      ['auth_token'],
      ['auth_token', 'advertiser_id', '__segment_internal_engage_force_full_sync', '__segment_internal_engage_batch_sync'],
      [['syncAudience', true]],
      null,
    ],
  ])('lists %s with its settings, actions and rate limit', (slug, name, category, secrets, required, actions, perSecond) => {
    const entry = catalogEntry(slug);
    expect([entry.name, entry.category, secretFieldsOf(slug), entry.settings.required]).toEqual([name, category, secrets, required]);
    expect(entry.actions.map((a) => [a.id, a.batching])).toEqual(actions);
    expect(entry.rateLimit).toEqual(perSecond === null ? null : expect.objectContaining({ requestsPerSecond: perSecond }));
    for (const secret of secrets)
      expect((entry.settings.properties as Record<string, unknown>)[secret]).toMatchObject({ writeOnly: true, 'x-secret': true });
    // Segment's event-specific presets (warehouse, journeys) are left out: only automatic ones become a new destination's mappings.
    expect(entry.presets.map((p) => [p.name, p.actionId, p.subscribe])).toEqual(
      slug === 'snap-audiences'
        ? [['Sync Engage Audience', 'syncAudience', 'type = "track" or type = "identify"']]
        : slug === 'marketo'
          ? [['Audiences and Traits (identify)', 'upsertLead', 'type = "identify"']]
          : slug === 'display-video-360'
            ? [
                [
                  'Audience Entered and Exited',
                  'syncAudience',
                  'type = "identify" or event = "Audience Entered" or event = "Audience Exited"',
                ],
              ]
            : [],
    );
  });

  it("leaves out Responsys's actions that send with a request client of their own, and its settings that forward answers to Segment", () => {
    expect(Object.keys(catalogEntry('responsys').settings.properties as object)).not.toContain('segmentWriteKey');
    expect(settingsIssues('responsys', { segmentWriteKey: 'wk' } as never)).toContainEqual([
      'settings.segmentWriteKey',
      expect.any(String),
    ]);
    expect(mappingIssues('responsys', { actionId: 'upsertListMember', subscribe: 'type = "identify"' })).toEqual([
      ['actionId', expect.stringMatching(/^is not an action of responsys \(sendAudience, sendCustomTraits\)/)],
    ]);
  });

  it('gives a new destination the automatic presets as enabled mappings', () => {
    let n = 0;
    const mappings = presetMappings('iterable', () => `map_${++n}`);
    expect(mappings.map((m) => [m.id, m.name, m.actionId, m.subscribe, m.enabled])).toEqual([
      ['map_1', 'Track Calls', 'trackEvent', 'type = "track" and event != "Order Completed" and event != "Cart Updated"', true],
      ['map_2', 'Identify Calls', 'updateUser', 'type = "identify"', true],
      ['map_3', 'Update Cart Calls', 'updateCart', 'type = "track" and event = "Cart Updated"', true],
      ['map_4', 'Order Completed Calls', 'trackPurchase', 'type = "track" and event = "Order Completed"', true],
    ]);
    expect(mappings[1]!.mapping).toMatchObject({ userId: { '@path': '$.userId' } });
  });

  it("checks a mapping's action and FQL", () => {
    expect(mappingIssues('braze', { actionId: 'trackEvent', subscribe: 'type = "track"' })).toEqual([]);
    expect(mappingIssues('braze', { actionId: 'fax', subscribe: 'type = "track" and (' })).toEqual([
      ['actionId', expect.stringMatching(/^is not an action of braze \(updateUserProfile, /)],
      ['subscribe', expect.stringMatching(/^is not valid FQL: /)],
    ]);
  });
});
