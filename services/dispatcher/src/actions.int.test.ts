// Actions destinations (issue 19, CONTRACT.md section 8): an audience change
// through the dispatch step to the vendor's request, run by Segment's own
// definition with the definition's presets as mappings, over real HTTP to an
// emulator of the vendor's documented API (DESTINATION_HTTP_OVERRIDES sends
// the vendor host there). Real Redis, an injected clock for the retry schedule.
import { createHash } from 'node:crypto';
import { createExternalAudience, loadDefinition, presetMappings } from '@engage/actions';
import { defaultValues } from '@segment/actions-core';
import type { ActionMapping, DestinationConfig } from '@engage/config-store';
import { ActionsRuntime } from './adapters/actions.runtime';
import { AUDIENCE, audienceChange, dispatchFixture, type Fixture } from './testing/dispatch-fixture';
import { actionsTestbed } from './testing/actions-fixture';
import {
  brazeEmulator,
  customerioEmulator,
  hubspotEmulator,
  iterableEmulator,
  iterableListsEmulator,
  mailchimpEmulator,
  sendgridEmulator,
  zendeskEmulator,
  type Emulator,
} from './testing/vendor-emulators';

const { redis, ctx, emulators, runtimes } = actionsTestbed();

let ids = 0;
const newId = () => `map_${++ids}`;

async function actionsSetup(
  slug: string,
  host: string,
  emulator: Emulator,
  settings: Record<string, unknown>,
  connection: { identify: boolean; track: boolean } = { identify: true, track: false },
  mappings: ActionMapping[] = presetMappings(slug, newId),
  externalAudienceId?: string,
): Promise<Fixture> {
  emulators.push(emulator);
  const actions = new ActionsRuntime({ overrides: { [host]: emulator.target } });
  runtimes.push(actions);
  const destination: Partial<DestinationConfig> = {
    name: slug,
    type: 'actions',
    slug,
    settings,
    mappings,
  };
  return dispatchFixture(redis, { url: 'unused', destination, connection, actions, externalAudienceId });
}

const statusHash = async (fx: Fixture) => {
  await fx.status.flush();
  return redis.hgetall(`${fx.keyPrefix}status:destination:dst_1`);
};

type Body = any;

/** Per vendor: its host, good and refused settings, and where its request carries the user and the audience value. */
const vendors: Array<{
  slug: string;
  host: string;
  emulator: () => Promise<Emulator>;
  settings: Record<string, unknown>;
  refused: Record<string, unknown>;
  path: string;
  auth: (headers: Record<string, unknown>) => unknown;
  expectedAuth: string;
  /** [user id, audience value] of each item of a request body. */
  items: (body: Body) => Array<[unknown, unknown]>;
}> = [
  {
    slug: 'braze',
    host: 'rest.iad-01.braze.com',
    emulator: () => brazeEmulator('braze-key'),
    settings: { api_key: 'braze-key', app_id: 'app-1', endpoint: 'https://rest.iad-01.braze.com' },
    refused: { api_key: 'revoked-key', app_id: 'app-1', endpoint: 'https://rest.iad-01.braze.com' },
    path: '/users/track',
    auth: (h) => h.authorization,
    expectedAuth: 'Bearer braze-key',
    items: (body) => body.attributes.map((a: Body) => [a.external_id, a[AUDIENCE.key]]),
  },
  {
    slug: 'customerio',
    host: 'track.customer.io',
    emulator: () => customerioEmulator('site-1', 'cio-key'),
    settings: { siteId: 'site-1', apiKey: 'cio-key' },
    refused: { siteId: 'site-1', apiKey: 'revoked-key' },
    path: '/api/v2/batch',
    auth: (h) => h.authorization,
    expectedAuth: `Basic ${Buffer.from('site-1:cio-key').toString('base64')}`,
    items: (body) => body.batch.map((e: Body) => [e.identifiers.id, e.attributes[AUDIENCE.key]]),
  },
  {
    slug: 'iterable',
    host: 'api.iterable.com',
    emulator: () => iterableEmulator('iterable-key'),
    settings: { apiKey: 'iterable-key' },
    refused: { apiKey: 'revoked-key' },
    path: '/api/users/bulkUpdate',
    auth: (h) => h['api-key'],
    expectedAuth: 'iterable-key',
    items: (body) => body.users.map((u: Body) => [u.userId, u.dataFields[AUDIENCE.key]]),
  },
];

describe.each(vendors)('$slug (Actions) with its presets, from an audience change to the vendor request', (v) => {
  it('an entry then an exit with identify on: the vendor gets the user with the audience key true, then false', async () => {
    const vendor = await v.emulator();
    const fx = await actionsSetup(v.slug, v.host, vendor, v.settings);
    const outcomes = await fx.step.handle([fx.consumed(audienceChange('p-1', true), 0), fx.consumed(audienceChange('p-1', false), 1)], ctx);
    expect(outcomes).toEqual([{ kind: 'ok' }, { kind: 'ok' }]);
    const requests = vendor.receiver.requests;
    expect(requests.map((r) => [r.method, r.path, r.status < 300, v.auth(r.headers), r.headers.host])).toEqual([
      ['POST', v.path, true, v.expectedAuth, v.host],
      ['POST', v.path, true, v.expectedAuth, v.host],
    ]);
    expect(requests.map((r) => v.items(r.body))).toEqual([[['u-p-1', true]], [['u-p-1', false]]]);
    expect(fx.letters).toEqual([]);
  });

  it("retries a 429 after its Retry-After with the same body; the profile's next change waits behind it", async () => {
    const vendor = await v.emulator();
    vendor.faults.push({ status: 429, headers: { 'retry-after': '3' }, body: { message: 'Rate limit exceeded' } });
    const fx = await actionsSetup(v.slug, v.host, vendor, v.settings);
    const outcomes = await fx.step.handle([fx.consumed(audienceChange('p-3', true), 0), fx.consumed(audienceChange('p-3', false), 1)], ctx);
    expect(outcomes).toEqual([{ kind: 'ok' }, { kind: 'ok' }]); // scheduled, so the offsets may commit
    expect(vendor.receiver.requests.map((r) => r.status)).toEqual([429]);
    expect(await fx.schedule.size()).toBe(2);

    fx.clock.now += 2999; // Retry-After is 3 s, more than the first backoff (500 ms)
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    expect(await fx.drain()).toBe(2);
    const [first, retry, exit] = vendor.receiver.requests;
    expect([first!.status, retry!.status < 300, exit!.status < 300]).toEqual([429, true, true]);
    expect(retry!.body).toEqual(first!.body); // the same call
    expect(v.items(exit!.body)).toEqual([['u-p-3', false]]);
    expect(fx.letters).toEqual([]);
    expect(await statusHash(fx)).toMatchObject({ retried: '1', sent: '2' });
  });

  it('dead-letters on 401 without a retry and flags the destination (credentials refused)', async () => {
    const vendor = await v.emulator();
    const fx = await actionsSetup(v.slug, v.host, vendor, v.refused);
    const outcomes = await fx.step.handle([fx.consumed(audienceChange('p-4', true), 0)], ctx);
    expect(outcomes).toEqual([{ kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\)/), step: 'deliver' }]);
    expect(vendor.receiver.requests.map((r) => r.status)).toEqual([401]);
    expect(await fx.schedule.size()).toBe(0);
    expect(await statusHash(fx)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
  });
});

describe('Braze (Actions), further cases', () => {
  const BRAZE = 'rest.iad-01.braze.com';
  const settings = vendors[0]!.settings;

  it('a track connection runs the Track Calls preset: an Audience Entered event with the audience key property', async () => {
    const braze = await brazeEmulator('braze-key');
    const fx = await actionsSetup('braze', BRAZE, braze, settings, { identify: false, track: true });
    await fx.step.handle([fx.consumed(audienceChange('p-2', true), 0)], ctx);
    expect(braze.receiver.ok('/users/track').map((r) => r.body.events)).toEqual([
      [
        expect.objectContaining({
          external_id: 'u-p-2',
          name: 'Audience Entered',
          properties: expect.objectContaining({ audience_key: AUDIENCE.key, [AUDIENCE.key]: true }),
        }),
      ],
    ]);
  });

  it('a computed trait change reaches Braze as the custom attribute with its value', async () => {
    const braze = await brazeEmulator('braze-key');
    const fx = await actionsSetup('braze', BRAZE, braze, settings);
    const trait = audienceChange('p-t', true, {
      computation_class: 'trait',
      computation_key: 'lifetime_value',
      value: 420.5,
      previous: 99,
    });
    expect(await fx.step.handle([fx.consumed(trait, 0)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(braze.receiver.ok('/users/track').map((r) => r.body.attributes)).toEqual([
      [expect.objectContaining({ external_id: 'u-p-t', lifetime_value: 420.5 })],
    ]);
  });

  it('dead-letters a 400 at once with the vendor message', async () => {
    const braze = await brazeEmulator('braze-key');
    braze.faults.push({ status: 400, body: { message: "'attributes' has an invalid custom attribute" } });
    const fx = await actionsSetup('braze', BRAZE, braze, settings);
    const outcomes = await fx.step.handle([fx.consumed(audienceChange('p-5', true), 0)], ctx);
    expect(outcomes).toEqual([{ kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: .*invalid custom attribute/), step: 'deliver' }]);
    expect(await fx.schedule.size()).toBe(0);
  });

  it('batches a chunk: one request per round carries every profile (their next change in the next request); a refused item fails alone', async () => {
    const braze = await brazeEmulator('braze-key', {
      refuse: (attributes) => (attributes.external_id === 'u-p-b2' ? "'external_id' is invalid" : undefined),
    });
    const fx = await actionsSetup('braze', BRAZE, braze, settings);
    const chunk = [audienceChange('p-b1', true), audienceChange('p-b2', true), audienceChange('p-b3', true), audienceChange('p-b1', false)];
    const outcomes = await fx.step.handle(
      chunk.map((c, i) => fx.consumed(c, i)),
      ctx,
    );
    expect(outcomes).toEqual([
      { kind: 'ok' },
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: 'external_id' is invalid/), step: 'deliver' },
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(
      braze.receiver.requests.map((r) => [
        r.headers['x-braze-batch'],
        r.body.attributes.map((a: Body) => [a.external_id, a[AUDIENCE.key]]),
      ]),
    ).toEqual([
      [
        'true',
        [
          ['u-p-b1', true],
          ['u-p-b2', true],
          ['u-p-b3', true],
        ],
      ],
      [undefined, [['u-p-b1', false]]],
    ]);
  });

  it("a batch answered 429: every item is scheduled, and each is retried alone, in its profile's order", async () => {
    const braze = await brazeEmulator('braze-key');
    braze.faults.push({ status: 429, headers: { 'retry-after': '1' }, body: { message: 'Rate limit exceeded' } });
    const fx = await actionsSetup('braze', BRAZE, braze, settings);
    const chunk = [audienceChange('p-r1', true), audienceChange('p-r2', true), audienceChange('p-r1', false)];
    expect(
      await fx.step.handle(
        chunk.map((c, i) => fx.consumed(c, i)),
        ctx,
      ),
    ).toEqual([{ kind: 'ok' }, { kind: 'ok' }, { kind: 'ok' }]);
    expect(braze.receiver.requests.map((r) => [r.status, r.body.attributes.length])).toEqual([[429, 2]]);
    expect(await fx.schedule.size()).toBe(3);
    fx.clock.now += 1000;
    expect(await fx.drain()).toBe(3);
    const retried = braze.receiver.requests
      .slice(1)
      .map((r) => [r.status, r.body.attributes.map((a: Body) => [a.external_id, a[AUDIENCE.key]])]);
    expect(retried).toHaveLength(3);
    expect(retried).toEqual(
      expect.arrayContaining([
        [201, [['u-p-r1', true]]],
        [201, [['u-p-r2', true]]],
        [201, [['u-p-r1', false]]],
      ]),
    );
    // p-r1's exit after its entry.
    const r1 = retried
      .filter(([, a]) => (a as Array<[string, boolean]>)[0]![0] === 'u-p-r1')
      .map(([, a]) => (a as Array<[string, boolean]>)[0]![1]);
    expect(r1).toEqual([true, false]);
    expect(fx.letters).toEqual([]);
  });
});

describe('HubSpot (Actions, OAuth): contacts upserted through the batch API with the audience key as a property', () => {
  const HUBSPOT = 'api.hubapi.com';
  const client = { id: 'client-1', secret: 'client-secret' };
  const oauth = (accessToken: string, refreshToken = 'refresh-1') => ({
    oauth: { access_token: accessToken, refresh_token: refreshToken, clientId: client.id, clientSecret: client.secret },
  });
  // HubSpot's definition has no presets: the mapping a user adds for identify calls.
  const upsert: ActionMapping[] = [
    {
      id: 'map_hs',
      actionId: 'upsertContact',
      subscribe: 'type = "identify"',
      mapping: {
        email: { '@path': '$.traits.email' },
        properties: { [AUDIENCE.key]: { '@path': `$.traits.${AUDIENCE.key}` } },
        enable_batching: true,
        batch_size: 100,
      },
      enabled: true,
    },
  ];
  const withEmail = (profileId: string, value: boolean) =>
    audienceChange(profileId, value, {
      external_ids: [
        { type: 'user_id', id: `u-${profileId}` },
        { type: 'email', id: `${profileId}@example.com` },
      ],
    });
  const emulator = () => hubspotEmulator({ accessTokens: ['token-1'], refreshToken: 'refresh-1', client, issues: 'token-2' });

  it('an entry creates the contact with the audience property, the exit updates it to false', async () => {
    const hubspot = await emulator();
    const fx = await actionsSetup('hubspot', HUBSPOT, hubspot, oauth('token-1'), undefined, upsert);
    const outcomes = await fx.step.handle([fx.consumed(withEmail('h1', true), 0), fx.consumed(withEmail('h1', false), 1)], ctx);
    expect(outcomes).toEqual([{ kind: 'ok' }, { kind: 'ok' }]);
    expect(hubspot.receiver.requests.map((r) => [r.path, r.status, r.headers.authorization])).toEqual([
      ['/crm/v3/objects/contacts/batch/read', 207, 'Bearer token-1'],
      ['/crm/v3/objects/contacts/batch/create', 201, 'Bearer token-1'],
      ['/crm/v3/objects/contacts/batch/read', 200, 'Bearer token-1'],
      ['/crm/v3/objects/contacts/batch/update', 200, 'Bearer token-1'],
    ]);
    expect(hubspot.contacts.get('h1@example.com')?.properties).toMatchObject({ email: 'h1@example.com', [AUDIENCE.key]: false });
    expect(hubspot.receiver.requests[1]!.body.inputs[0].properties[AUDIENCE.key]).toBe(true);
  });

  it('an expired access token is refreshed through the definition, the call delivered, and the new token kept for later calls', async () => {
    const hubspot = await emulator();
    const fx = await actionsSetup('hubspot', HUBSPOT, hubspot, oauth('expired-token'), undefined, upsert);
    expect(await fx.step.handle([fx.consumed(withEmail('h2', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(await fx.step.handle([fx.consumed(withEmail('h3', true), 1)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(hubspot.receiver.requests.map((r) => [r.path, r.status, r.headers.authorization ?? null])).toEqual([
      ['/crm/v3/objects/contacts/batch/read', 401, 'Bearer expired-token'],
      // HubSpot's definition would add "Bearer undefined" to the token request (actions-core passes no token then): dropped.
      ['/oauth/v1/token', 200, null],
      ['/crm/v3/objects/contacts/batch/read', 207, 'Bearer token-2'],
      ['/crm/v3/objects/contacts/batch/create', 201, 'Bearer token-2'],
      // The next chunk starts with the kept token: no second refresh.
      ['/crm/v3/objects/contacts/batch/read', 207, 'Bearer token-2'],
      ['/crm/v3/objects/contacts/batch/create', 201, 'Bearer token-2'],
    ]);
    expect([...hubspot.contacts.keys()]).toEqual(['h2@example.com', 'h3@example.com']);
  });

  it('a refresh token HubSpot refuses: dead-lettered without a retry and the destination flagged', async () => {
    const hubspot = await emulator();
    const fx = await actionsSetup('hubspot', HUBSPOT, hubspot, oauth('expired-token', 'revoked'), undefined, upsert);
    const outcomes = await fx.step.handle([fx.consumed(withEmail('h4', true), 0)], ctx);
    expect(outcomes).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\): OAuth token refresh failed/), step: 'deliver' },
    ]);
    expect(await fx.schedule.size()).toBe(0);
    expect(await statusHash(fx)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
  });

  it('retries a 429 after its Retry-After with the same event', async () => {
    const hubspot = await emulator();
    hubspot.faults.push({
      status: 429,
      headers: { 'retry-after': '2' },
      body: { status: 'error', category: 'RATE_LIMITS', message: 'You have reached your secondly limit.' },
    });
    const fx = await actionsSetup('hubspot', HUBSPOT, hubspot, oauth('token-1'), undefined, upsert);
    expect(await fx.step.handle([fx.consumed(withEmail('h5', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(await fx.schedule.size()).toBe(1);
    fx.clock.now += 1999;
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    expect(await fx.drain()).toBe(1);
    expect(hubspot.receiver.requests.map((r) => r.status)).toEqual([429, 207, 201]);
    expect(hubspot.contacts.get('h5@example.com')?.properties[AUDIENCE.key]).toBe(true);
  });
});

describe('Mailchimp (our own definition in actions-core format): the audience as a tag on the list member', () => {
  const MAILCHIMP = 'us21.api.mailchimp.com';
  const settings = { apiKey: 'mc-key-us21', listId: 'list-1' };
  const hash = (email: string) => createHash('md5').update(email).digest('hex');
  const withEmail = (profileId: string, value: boolean) =>
    audienceChange(profileId, value, {
      external_ids: [
        { type: 'user_id', id: `u-${profileId}` },
        { type: 'email', id: `${profileId}@Example.com` },
      ],
    });

  it('an entry upserts the member and tags it active, the exit tags it inactive', async () => {
    const mailchimp = await mailchimpEmulator('mc-key-us21', 'list-1');
    const fx = await actionsSetup('mailchimp', MAILCHIMP, mailchimp, settings);
    const outcomes = await fx.step.handle([fx.consumed(withEmail('m1', true), 0), fx.consumed(withEmail('m1', false), 1)], ctx);
    expect(outcomes).toEqual([{ kind: 'ok' }, { kind: 'ok' }]);
    const member = `/3.0/lists/list-1/members/${hash('m1@example.com')}`;
    expect(mailchimp.receiver.requests.map((r) => [r.method, r.path, r.status, r.headers.host])).toEqual([
      ['PUT', member, 200, MAILCHIMP],
      ['POST', `${member}/tags`, 204, MAILCHIMP],
      ['PUT', member, 200, MAILCHIMP],
      ['POST', `${member}/tags`, 204, MAILCHIMP],
    ]);
    expect(mailchimp.receiver.requests[0]!.body).toEqual({ email_address: 'm1@Example.com', status_if_new: 'subscribed' });
    expect(mailchimp.members.get(hash('m1@example.com'))).toEqual({
      email: 'm1@Example.com',
      status: 'subscribed',
      tags: { [AUDIENCE.key]: 'inactive' },
    });
  });

  it('retries a 429 with the same event, dead-letters a bad key (flagged) and an identify without an email (the validation message)', async () => {
    const mailchimp = await mailchimpEmulator('mc-key-us21', 'list-1');
    mailchimp.faults.push({ status: 429, headers: { 'retry-after': '1' }, body: { title: 'Too Many Requests', status: 429 } });
    const fx = await actionsSetup('mailchimp', MAILCHIMP, mailchimp, settings);
    const noEmail = audienceChange('m3', true);
    const outcomes = await fx.step.handle([fx.consumed(withEmail('m2', true), 0), fx.consumed(noEmail, 1)], ctx);
    expect(outcomes).toEqual([{ kind: 'ok' }, { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: .*email/), step: 'deliver' }]);
    fx.clock.now += 1000;
    expect(await fx.drain()).toBe(1);
    expect(mailchimp.receiver.requests.map((r) => r.status)).toEqual([429, 200, 204]);
    expect(mailchimp.members.get(hash('m2@example.com'))?.tags).toEqual({ [AUDIENCE.key]: 'active' });

    const revoked = await actionsSetup('mailchimp', MAILCHIMP, await mailchimpEmulator('mc-key-us21', 'list-1'), {
      ...settings,
      apiKey: 'old-key-us21',
    });
    expect(await revoked.step.handle([revoked.consumed(withEmail('m4', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\).*API Key Invalid/), step: 'deliver' },
    ]);
    expect(await statusHash(revoked)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
  });
});

describe('Zendesk (our own definition in actions-core format): audiences and traits as user fields', () => {
  const ZENDESK = 'acme.zendesk.com';
  const settings = { subdomain: 'acme', email: 'agent@acme.com', apiToken: 'zd-token' };
  const emulator = () => zendeskEmulator('agent@acme.com', 'zd-token', [AUDIENCE.key, 'lifetime_value']);

  it('an entry creates the user with the audience field true, the exit and a trait update it; a bad token is dead-lettered and flagged', async () => {
    const zendesk = await emulator();
    zendesk.faults.push({ status: 429, headers: { 'retry-after': '1' }, body: { error: 'TooManyRequests' } });
    const fx = await actionsSetup('zendesk', ZENDESK, zendesk, settings);
    const trait = audienceChange('z1', true, { computation_class: 'trait', computation_key: 'lifetime_value', value: 12.5 });
    const outcomes = await fx.step.handle(
      [fx.consumed(audienceChange('z1', true), 0), fx.consumed(audienceChange('z1', false), 1), fx.consumed(trait, 2)],
      ctx,
    );
    expect(outcomes).toEqual([{ kind: 'ok' }, { kind: 'ok' }, { kind: 'ok' }]);
    fx.clock.now += 1000; // the first call met a 429: retried after its Retry-After, the others queued behind it
    expect(await fx.drain()).toBe(3);
    expect(zendesk.receiver.requests.map((r) => [r.status, r.headers.host, r.body.user.user_fields])).toEqual([
      [429, ZENDESK, { [AUDIENCE.key]: true }],
      [201, ZENDESK, { [AUDIENCE.key]: true }],
      [200, ZENDESK, { [AUDIENCE.key]: false }],
      [200, ZENDESK, { lifetime_value: 12.5 }],
    ]);
    expect(zendesk.users.get('x:u-z1')).toMatchObject({ name: 'u-z1', user_fields: { [AUDIENCE.key]: false, lifetime_value: 12.5 } });

    const revoked = await actionsSetup('zendesk', ZENDESK, await emulator(), { ...settings, apiToken: 'old' });
    expect(await revoked.step.handle([revoked.consumed(audienceChange('z2', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\)/), step: 'deliver' },
    ]);
    expect(await statusHash(revoked)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
  });

  it('a field Zendesk does not have is dead-lettered at once with its message (422)', async () => {
    const zendesk = await zendeskEmulator('agent@acme.com', 'zd-token', []);
    const fx = await actionsSetup('zendesk', ZENDESK, zendesk, settings);
    expect(await fx.step.handle([fx.consumed(audienceChange('z3', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 422: .*unknown user fields vip/), step: 'deliver' },
    ]);
    expect(await fx.schedule.size()).toBe(0);
  });
});

describe('SendGrid (Actions): Marketing Contacts with the audience as a custom field', () => {
  const SENDGRID = 'api.sendgrid.com';
  // SendGrid's definition has no presets: the mapping a user adds, the action's defaults plus the audience's custom field.
  const upsert: ActionMapping[] = [
    {
      id: 'map_sg',
      actionId: 'updateUserProfile',
      subscribe: 'type = "identify"',
      mapping: {
        ...defaultValues(loadDefinition('sendgrid').actions.updateUserProfile!.fields),
        external_id: { '@path': '$.userId' },
        customFields: { [AUDIENCE.key]: { '@path': `$.traits.${AUDIENCE.key}` } },
      },
      enabled: true,
    },
  ];

  it('a chunk is one PUT of every profile after the field definitions; a bad key is dead-lettered and flagged', async () => {
    const sendgrid = await sendgridEmulator('sg-key', [{ id: 'e1_T', name: AUDIENCE.key }]);
    const fx = await actionsSetup('sendgrid', SENDGRID, sendgrid, { sendGridApiKey: 'sg-key' }, undefined, upsert);
    const chunk = [audienceChange('s1', true), audienceChange('s2', true)];
    expect(
      await fx.step.handle(
        chunk.map((c, i) => fx.consumed(c, i)),
        ctx,
      ),
    ).toEqual([{ kind: 'ok' }, { kind: 'ok' }]);
    expect(sendgrid.receiver.requests.map((r) => [r.method, r.path, r.status, r.headers.authorization])).toEqual([
      ['GET', '/v3/marketing/field_definitions', 200, 'Bearer sg-key'],
      ['PUT', '/v3/marketing/contacts', 202, 'Bearer sg-key'],
    ]);
    // SendGrid's custom fields are text: the definition sends the boolean as "true".
    expect(sendgrid.contacts.map((c) => [c.external_id, c.custom_fields])).toEqual([
      ['u-s1', { e1_T: 'true' }],
      ['u-s2', { e1_T: 'true' }],
    ]);

    const revoked = await actionsSetup(
      'sendgrid',
      SENDGRID,
      await sendgridEmulator('sg-key', []),
      { sendGridApiKey: 'old' },
      undefined,
      upsert,
    );
    expect(await revoked.step.handle([revoked.consumed(audienceChange('s3', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\)/), step: 'deliver' },
    ]);
  });

  it('retries a 429 after its Retry-After; an unknown custom field is dead-lettered with the message', async () => {
    const sendgrid = await sendgridEmulator('sg-key', [{ id: 'e1_T', name: AUDIENCE.key }]);
    sendgrid.faults.push({
      status: 429,
      headers: { 'retry-after': '1' },
      body: { errors: [{ field: null, message: 'too many requests' }] },
    });
    const fx = await actionsSetup('sendgrid', SENDGRID, sendgrid, { sendGridApiKey: 'sg-key' }, undefined, upsert);
    expect(await fx.step.handle([fx.consumed(audienceChange('s4', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    fx.clock.now += 1000;
    expect(await fx.drain()).toBe(1);
    expect(sendgrid.receiver.requests.map((r) => r.status)).toEqual([429, 200, 202]);

    const noField = await actionsSetup(
      'sendgrid',
      SENDGRID,
      await sendgridEmulator('sg-key', []),
      { sendGridApiKey: 'sg-key' },
      undefined,
      upsert,
    );
    expect(await noField.step.handle([noField.consumed(audienceChange('s5', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: Unknown custom field 'vip'/), step: 'deliver' },
    ]);
  });
});

describe('Iterable Lists (Actions audience destination): the audience created through the definition, then synced', () => {
  const ITERABLE = 'api.iterable.com';
  const settings = { apiKey: 'it-key' };
  const sync: ActionMapping[] = [
    {
      id: 'map_il',
      actionId: 'syncAudience',
      subscribe: 'type = "identify"',
      mapping: defaultValues(loadDefinition('iterable-lists').actions.syncAudience!.fields),
      enabled: true,
    },
  ];

  it("createAudience makes the list (named by the audience's key); entries subscribe to it and exits unsubscribe, by its id", async () => {
    const iterable = await iterableListsEmulator('it-key');
    const overrides = { [ITERABLE]: iterable.target };
    const listId = await createExternalAudience(
      { slug: 'iterable-lists', settings },
      { id: AUDIENCE.id, key: AUDIENCE.key, name: 'VIP', spaceId: 'spa_1' },
      overrides,
    );
    // The definition looks for a list of that name first, then creates it; a second connection finds it.
    expect(
      await createExternalAudience(
        { slug: 'iterable-lists', settings },
        { id: AUDIENCE.id, key: AUDIENCE.key, name: 'VIP', spaceId: 'spa_1' },
        overrides,
      ),
    ).toBe(listId);
    expect([...iterable.lists].map(([id, l]) => [String(id), l.name])).toEqual([[listId, AUDIENCE.key]]);

    const fx = await actionsSetup('iterable-lists', ITERABLE, iterable, settings, undefined, sync, listId);
    const outcomes = await fx.step.handle(
      [fx.consumed(audienceChange('l1', true), 0), fx.consumed(audienceChange('l2', true), 1), fx.consumed(audienceChange('l1', false), 2)],
      ctx,
    );
    expect(outcomes).toEqual([{ kind: 'ok' }, { kind: 'ok' }, { kind: 'ok' }]);
    const syncs = iterable.receiver.requests.filter((r) => r.path.startsWith('/api/lists/'));
    expect(syncs.map((r) => [r.path, r.status, r.body.listId, r.body.subscribers.map((x: Body) => x.userId)])).toEqual([
      ['/api/lists/subscribe', 200, Number(listId), ['u-l1']],
      ['/api/lists/subscribe', 200, Number(listId), ['u-l2']],
      ['/api/lists/unsubscribe', 200, Number(listId), ['u-l1']],
    ]);
    expect([...iterable.lists.get(Number(listId))!.members]).toEqual(['u-l2']);
  });

  it('createAudience with a refused key throws the vendor status', async () => {
    const iterable = await iterableListsEmulator('it-key');
    emulators.push(iterable);
    await expect(
      createExternalAudience(
        { slug: 'iterable-lists', settings: { apiKey: 'bad' } },
        { id: 'aud_x', key: 'x', name: 'X', spaceId: 'spa_1' },
        {
          [ITERABLE]: iterable.target,
        },
      ),
    ).rejects.toMatchObject({ response: { status: 401 } });
  });
});
