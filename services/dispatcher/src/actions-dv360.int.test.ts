// Display & Video 360 Customer Match (display-video-360, our own definition:
// libs/actions/src/definitions/display-video-360.ts) over real HTTP against
// an emulator of Google's OAuth token endpoint and the Display & Video 360
// API v3 (DESTINATION_HTTP_OVERRIDES sends both hosts there): the audience
// created when the connection is made, entries and exits through the
// dispatch step as editCustomerMatchMembers of SHA-256 hashed emails, the
// runtime's retries, token refresh and credential flags. Real Redis, an
// injected clock for the retry schedule; the last test runs the dispatcher's
// DestinationPipeline (as main.ts builds it) fed by a real Kafka changes topic.
import type https from 'node:https';
import {
  createExternalAudience,
  loadDefinition,
  overrideAgent,
  presetMappings,
  withDefaultSettings,
  type AnyDefinition,
} from '@engage/actions';
import type { DeadLetter, DeadLetterWriter } from '@engage/kafka';
import { waitFor } from '@engage/testing';
import { Destination } from '@segment/actions-core';
import { DestinationPipeline } from './destination-pipeline';
import { changesFeed } from './testing/changes-feed';
import { actionsTestbed, actionsFixture, statusHash, withEmail } from './testing/actions-fixture';
import { AUDIENCE, SPACE, audienceChange } from './testing/dispatch-fixture';
import { dv360Emulator, googleError, sha256 } from './testing/dv360-emulator';

const { redis, ctx, emulators, runtimes } = actionsTestbed();

const SLUG = 'display-video-360';
const DV = 'displayvideo.googleapis.com';
const OAUTH = 'oauth2.googleapis.com';
const ADVERTISER = '778899';
const TOKEN = '/token';
const GRANTED = { adUserData: 'CONSENT_STATUS_GRANTED', adPersonalization: 'CONSENT_STATUS_GRANTED' };
const audience = { id: AUDIENCE.id, key: AUDIENCE.key, name: 'VIP', spaceId: SPACE };
// As the control plane stores them (the definition's defaults filled in).
const settings = (over: { accessToken?: string; refreshToken?: string; advertiserId?: string } = {}) =>
  withDefaultSettings(SLUG, {
    advertiserId: over.advertiserId ?? ADVERTISER,
    oauth: {
      access_token: over.accessToken ?? 'ya29.live',
      refresh_token: over.refreshToken ?? '1//refresh',
      clientId: 'dv-client',
      clientSecret: 'dv-secret',
    },
  });
// The mapping a new destination gets: the definition's preset (identify, or Audience Entered / Exited tracks).
const mappings = () => presetMappings(SLUG, () => 'map_dv360');

async function setup(over: Parameters<typeof settings>[0] & { audienceId?: string } = {}) {
  const dv = await dv360Emulator({
    clientId: 'dv-client',
    clientSecret: 'dv-secret',
    refreshToken: '1//refresh',
    accessTokens: ['ya29.live'],
    advertiserIds: [ADVERTISER],
  });
  emulators.push(dv);
  const overrides = { [DV]: dv.target, [OAUTH]: dv.target };
  // As the control plane does when the connection is made.
  const audienceId = over.audienceId ?? (await createExternalAudience({ slug: SLUG, settings: settings() }, audience, overrides));
  const fx = actionsFixture(redis, {
    slug: SLUG,
    hosts: { [DV]: dv, [OAUTH]: dv },
    settings: settings(over),
    mappings: mappings(),
    externalAudienceId: audienceId,
  });
  runtimes.push(fx.actions);
  const created = dv.receiver.requests.length;
  const sent = () => dv.receiver.requests.slice(created);
  const calls = () => sent().map((r) => [r.headers.host, r.path, r.status, r.headers.authorization ?? null]);
  return { dv, fx, audienceId, sent, calls, overrides };
}
const EDIT = (id: string) => `/v3/firstAndThirdPartyAudiences/${id}:editCustomerMatchMembers`;
const added = (...emails: string[]) => ({
  advertiserId: ADVERTISER,
  addedContactInfoList: { contactInfos: emails.map((e) => ({ hashedEmails: [sha256(e)] })), consent: GRANTED },
});
const removed = (...emails: string[]) => ({
  advertiserId: ADVERTISER,
  removedContactInfoList: { contactInfos: emails.map((e) => ({ hashedEmails: [sha256(e)] })) },
});
const members = (dv: Awaited<ReturnType<typeof dv360Emulator>>, id: string) => [...dv.audiences.get(id)!.members].sort();

describe('Display & Video 360 (our own definition): a Customer Match audience per connection, hashed emails added and removed', () => {
  it('the connection creates the first-party Customer Match audience (getAudience reads it); an entry adds the hashed email, the exit removes it', async () => {
    const { dv, fx, audienceId, calls, sent, overrides } = await setup();
    expect(dv.receiver.requests.map((r) => [r.method, r.headers.host, r.path, r.headers.authorization, r.body])).toEqual([
      [
        'POST',
        DV,
        `/v3/firstAndThirdPartyAudiences?advertiserId=${ADVERTISER}`,
        'Bearer ya29.live',
        {
          displayName: 'VIP',
          description: `Engage audience ${AUDIENCE.key}`,
          firstAndThirdPartyAudienceType: 'FIRST_AND_THIRD_PARTY_AUDIENCE_TYPE_FIRST_PARTY',
          audienceType: 'CUSTOMER_MATCH_CONTACT_INFO',
          membershipDurationDays: '540',
          contactInfoList: { contactInfos: [], consent: GRANTED },
        },
      ],
    ]);
    expect(dv.audiences.get(audienceId)).toMatchObject({ advertiserId: ADVERTISER, displayName: 'VIP', membershipDurationDays: '540' });

    // getAudience, as actions-core calls it, through the same overrides.
    const definition = loadDefinition(SLUG);
    const agent = overrideAgent(overrides);
    try {
      const wrapped: AnyDefinition = {
        ...definition,
        extendRequest: (data) => ({ ...(definition.extendRequest?.(data) ?? {}), agent: agent as unknown as https.Agent }),
      };
      expect(await new Destination(wrapped).getAudience({ settings: settings() as never, externalId: audienceId })).toEqual({
        externalId: audienceId,
      });
    } finally {
      agent.close();
    }
    expect(calls()).toEqual([[DV, `/v3/firstAndThirdPartyAudiences/${audienceId}?advertiserId=${ADVERTISER}`, 200, 'Bearer ya29.live']]);
    const before = sent().length;

    // Two entries in a chunk are one request; emails trimmed and lower-cased before hashing.
    expect(await fx.step.handle([fx.consumed(withEmail('d1', true), 0), fx.consumed(withEmail('D2', true), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(members(dv, audienceId)).toEqual([sha256('d1@example.com'), sha256('d2@example.com')].sort());
    expect(await fx.step.handle([fx.consumed(withEmail('d1', false), 2)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(members(dv, audienceId)).toEqual([sha256('d2@example.com')]);
    expect(
      sent()
        .slice(before)
        .map((r) => [r.method, r.path, r.status, r.headers.authorization, r.body]),
    ).toEqual([
      ['POST', EDIT(audienceId), 200, 'Bearer ya29.live', added('d1@example.com', 'd2@example.com')],
      ['POST', EDIT(audienceId), 200, 'Bearer ya29.live', removed('d1@example.com')],
    ]);
    expect(fx.letters).toEqual([]);
    expect(await statusHash(redis, fx)).not.toHaveProperty('credentialsError');
  });

  it('a 429 waits for its Retry-After and is sent again with the same payload; a 503 is retried after backoff', async () => {
    const { dv, fx, audienceId, sent } = await setup();
    dv.throttleOnce(3);
    expect(await fx.step.handle([fx.consumed(withEmail('d3', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(await fx.schedule.size()).toBe(1);
    fx.clock.now += 2999;
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    expect(await fx.drain()).toBe(1);
    expect(sent().map((r) => [r.path, r.status, r.body])).toEqual([
      [EDIT(audienceId), 429, added('d3@example.com')],
      [EDIT(audienceId), 200, added('d3@example.com')],
    ]);
    expect(sent()[0]!.body).toEqual(sent()[1]!.body);

    dv.faults.push(googleError(503, 'The service is currently unavailable.'));
    expect(await fx.step.handle([fx.consumed(withEmail('d4', true), 1)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(members(dv, audienceId)).toEqual([sha256('d3@example.com')]);
    fx.clock.now += 60_000;
    expect(await fx.drain()).toBe(1);
    expect(
      sent()
        .slice(2)
        .map((r) => [r.path, r.status, r.body]),
    ).toEqual([
      [EDIT(audienceId), 503, added('d4@example.com')],
      [EDIT(audienceId), 200, added('d4@example.com')],
    ]);
    expect(members(dv, audienceId)).toEqual([sha256('d3@example.com'), sha256('d4@example.com')].sort());
    expect(fx.letters).toEqual([]);
  });

  it('an expired token: one refresh at Google OAuth, the request sent again with the new token, which later calls keep', async () => {
    const { dv, fx, audienceId, calls, sent } = await setup();
    dv.expire('ya29.live');
    expect(await fx.step.handle([fx.consumed(withEmail('d5', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(await fx.step.handle([fx.consumed(withEmail('d6', true), 1)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(calls()).toEqual([
      [DV, EDIT(audienceId), 401, 'Bearer ya29.live'],
      [OAUTH, TOKEN, 200, null],
      [DV, EDIT(audienceId), 200, 'Bearer ya29.dv360-1'],
      // The next batch starts with the kept token: no second refresh.
      [DV, EDIT(audienceId), 200, 'Bearer ya29.dv360-1'],
    ]);
    expect(Object.fromEntries(new URLSearchParams(sent()[1]!.body))).toEqual({
      grant_type: 'refresh_token',
      refresh_token: '1//refresh',
      client_id: 'dv-client',
      client_secret: 'dv-secret',
    });
    expect(sent()[0]!.body).toEqual(sent()[2]!.body);
    expect(members(dv, audienceId)).toEqual([sha256('d5@example.com'), sha256('d6@example.com')].sort());
    expect(await statusHash(redis, fx)).not.toHaveProperty('credentialsError');
  });

  it("a member without email fails alone while the others go; Google's 400 is dead-lettered with its message", async () => {
    const { dv, fx, audienceId, sent } = await setup();
    expect(
      await fx.step.handle(
        [fx.consumed(withEmail('d7', true), 0), fx.consumed(audienceChange('d8', true), 1), fx.consumed(withEmail('d9', true), 2)],
        ctx,
      ),
    ).toEqual([
      { kind: 'ok' },
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: no email: Display & Video 360 Customer Match/), step: 'deliver' },
      { kind: 'ok' },
    ]);
    expect(sent().map((r) => r.body)).toEqual([added('d7@example.com', 'd9@example.com')]);
    expect(members(dv, audienceId)).toEqual([sha256('d7@example.com'), sha256('d9@example.com')].sort());

    dv.faults.push(googleError(400, 'Request contains an invalid argument.'));
    expect(await fx.step.handle([fx.consumed(withEmail('d10', true), 3)], ctx)).toEqual([
      {
        kind: 'dlq',
        reason: expect.stringMatching(/^HTTP 400: Display & Video 360 INVALID_ARGUMENT: Request contains an invalid argument\./),
        step: 'deliver',
      },
    ]);
    expect(await fx.schedule.size()).toBe(0);
    expect(await statusHash(redis, fx)).not.toHaveProperty('credentialsError');
  });

  it("an advertiser the token may not reach (403) and a revoked refresh token (401) are dead-lettered and flag the destination's credentials", async () => {
    const created = await setup();
    const denied = await setup({ advertiserId: '111111', audienceId: created.audienceId });
    expect(await denied.fx.step.handle([denied.fx.consumed(withEmail('d11', true), 0)], ctx)).toEqual([
      {
        kind: 'dlq',
        reason: expect.stringMatching(/^HTTP 403 \(credentials refused\): Display & Video 360 PERMISSION_DENIED/),
        step: 'deliver',
      },
    ]);
    expect(await statusHash(redis, denied.fx)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 403/) });

    const revoked = await setup({ accessToken: 'ya29.old', refreshToken: '1//revoked' });
    expect(await revoked.fx.step.handle([revoked.fx.consumed(withEmail('d12', true), 0)], ctx)).toEqual([
      {
        kind: 'dlq',
        reason: expect.stringMatching(/^HTTP 401 \(credentials refused\): OAuth token refresh failed.*invalid_grant/),
        step: 'deliver',
      },
    ]);
    expect(await statusHash(redis, revoked.fx)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
    expect(revoked.calls().map(([host, path, status]) => [host, path, status])).toEqual(
      expect.arrayContaining([
        [DV, EDIT(revoked.audienceId), 401],
        [OAUTH, TOKEN, 400],
      ]),
    );
    expect(members(revoked.dv, revoked.audienceId)).toEqual([]);
  });
});

describe('display-video-360: fed by the changes topic', () => {
  const feed = changesFeed('dv360k');
  const { log, prefix, kafka, codec, changesTopic, publish } = feed;
  let pipeline: DestinationPipeline | undefined;

  beforeAll(() => feed.start());
  afterAll(async () => {
    await pipeline?.stop();
    await feed.stop();
  });

  it('entries and an exit from Kafka reach Google as hashed emails; a member without email is dead-lettered alone', async () => {
    const { dv, fx, audienceId, sent } = await setup();
    const letters: DeadLetter[] = [];
    const deadLetters = { write: async (ls: DeadLetter[]) => void letters.push(...ls) } as unknown as DeadLetterWriter;
    // The dispatcher's pipeline for dst_1 as main.ts builds it: its changes consumer, initial sync and retries.
    pipeline = new DestinationPipeline(
      {
        destinationId: 'dst_1',
        topicPrefix: prefix,
        keyPrefix: fx.keyPrefix,
        changesTopic,
        chunkSize: 100,
        dedupeTtlSeconds: 3600,
        concurrency: 4,
        initialSyncEveryMs: 100,
        listTickMs: 100,
        retryPollMs: 100,
        retryLeaseMs: 60_000,
      },
      { kafka, codec, redis, store: fx.store, delivery: fx.delivery, status: fx.status, deadLetters, log },
    );
    await pipeline.start();
    await publish([withEmail('k1', true), audienceChange('k2', true), withEmail('k3', true)]);
    await waitFor(() => members(dv, audienceId).length === 2 && letters.length === 1, {
      timeoutMs: 60_000,
      description: 'the entries added and the member without email dead-lettered',
    });
    expect(members(dv, audienceId)).toEqual([sha256('k1@example.com'), sha256('k3@example.com')].sort());
    expect(letters[0]!.reason).toMatch(/^HTTP 400: no email/);

    await publish([withEmail('k1', false)]);
    await waitFor(() => members(dv, audienceId).length === 1, { timeoutMs: 60_000, description: 'the exit removed' });
    expect(members(dv, audienceId)).toEqual([sha256('k3@example.com')]);
    const edits = sent().map((r) => r.body);
    expect(edits.slice(-1)).toEqual([removed('k1@example.com')]);
    expect(
      edits
        .flatMap((b) => b.addedContactInfoList?.contactInfos ?? [])
        .map((c: { hashedEmails: string[] }) => c.hashedEmails[0])
        .sort(),
    ).toEqual([sha256('k1@example.com'), sha256('k3@example.com')].sort());
    expect(letters).toHaveLength(1);
  });
});
