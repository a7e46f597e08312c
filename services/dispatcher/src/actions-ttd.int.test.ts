// The Trade Desk CRM (the-trade-desk-crm, a full-audience destination) over
// real HTTP against an emulator of The Trade Desk's CRM data API, and real
// Redis: changes are buffered and acknowledged, not sent; each due flush (the
// list cadence, "sync now") uploads the audience's whole membership of the
// moment through the definition's legacy flow, which replaces the segment.
// The last test runs the dispatcher's DestinationPipeline (as main.ts builds
// it) fed by change records on a real Kafka changes topic.
import { createHash } from 'node:crypto';
import { createExternalAudience, withDefaultSettings } from '@engage/actions';
import { StatusStore } from '@engage/config-store';
import type { DeadLetter, DeadLetterWriter } from '@engage/kafka';
import { identifiersJson } from '@engage/profile-store';
import { waitFor } from '@engage/testing';
import { DestinationPipeline } from './destination-pipeline';
import { changesFeed } from './testing/changes-feed';
import { actionsTestbed, actionsFixture, mappingOf, statusHash, withEmail } from './testing/actions-fixture';
import { AUDIENCE, SPACE, type Fixture } from './testing/dispatch-fixture';
import { TTD_DROP_HOST, tradeDeskEmulator } from './testing/ttd-emulator';

const { redis, ctx, emulators, runtimes } = actionsTestbed();
const TOKEN = 'ttd-token';
const ADVERTISER = 'adv1';
const SLUG = 'the-trade-desk-crm';
const API = 'api.thetradedesk.com';

async function setup(opts: { token?: string; piiType?: string } = {}) {
  const ttd = await tradeDeskEmulator(TOKEN, ADVERTISER);
  emulators.push(ttd);
  // As the control plane stores them (the definition's two internal flags default to true).
  const settings = withDefaultSettings(SLUG, { auth_token: opts.token ?? TOKEN, advertiser_id: ADVERTISER });
  const overrides = { [API]: ttd.target, [TTD_DROP_HOST]: ttd.target };
  // As the control plane does when the connection is made (POST /v3/crmdata/targeting/segment).
  const crmDataId =
    opts.token === undefined
      ? await createExternalAudience(
          { slug: SLUG, settings },
          { id: AUDIENCE.id, key: AUDIENCE.key, name: 'VIP', spaceId: SPACE },
          overrides,
          { region: 'US' },
        )
      : ttd.seed('VIP');
  const fx = actionsFixture(redis, {
    slug: SLUG,
    hosts: { [API]: ttd, [TTD_DROP_HOST]: ttd },
    settings,
    mappings: mappingOf(SLUG, 'syncAudience', 'event = "Audience Entered"', { pii_type: opts.piiType ?? 'Email' }),
    externalAudienceId: crmDataId,
    audienceSettings: { region: 'US' },
  });
  runtimes.push(fx.actions);
  return { ttd, fx, crmDataId };
}

/** Members of the audience as the evaluator stores them: its members set and each profile's identifiers. */
async function addMembers(fx: Fixture, members: Array<{ profileId: string; email?: string }>): Promise<void> {
  const tx = redis.pipeline();
  for (const m of members) {
    tx.sadd(fx.profiles.membersKey(AUDIENCE.id), m.profileId);
    const ids = [{ type: 'user_id', id: `u-${m.profileId}` }, ...(m.email ? [{ type: 'email', id: m.email }] : [])];
    tx.set(fx.profiles.idsKey({ spaceId: SPACE, profileId: m.profileId }), identifiersJson(ids));
  }
  await tx.exec();
}

const people = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ profileId: `p${from + i}`, email: `user${from + i}@example.com` }));
const connectionStatus = (fx: Fixture) => redis.hgetall(`${fx.keyPrefix}status:connection:con_1`);
const syncNow = (fx: Fixture) => new StatusStore({ keyPrefix: fx.keyPrefix }, { redis }).requestSyncNow('dst_1', Date.now());

describe('the-trade-desk-crm: full-audience sync', () => {
  it('acknowledges changes without sending them, uploads the whole membership per sync, and drops those who left', async () => {
    const { ttd, fx, crmDataId } = await setup();
    const members = people(1500);
    await addMembers(fx, [...members, { profileId: 'no-email' }]);
    // Entries and exits are acknowledged (buffered for the next sync), no call goes out for them.
    expect(await fx.step.handle([fx.consumed(withEmail('p0', true), 0), fx.consumed(withEmail('p9', false), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(ttd.receiver.requests.filter((r) => r.path !== '/v3/crmdata/targeting/segment')).toEqual([]);

    expect(await fx.lists.flushDue()).toBe(1);
    expect(ttd.uploads).toHaveLength(1);
    expect(ttd.uploads[0]!.crmDataId).toBe(crmDataId);
    expect(ttd.uploads[0]!.piiType).toBe('Email');
    expect([...ttd.uploads[0]!.lines].sort()).toEqual(members.map((m) => m.email).sort());
    const drop = ttd.receiver.requests.find((r) => r.method === 'POST' && r.path === `/v3/crmdata/segment/${ADVERTISER}/${crmDataId}`);
    expect(drop?.body).toEqual({ PiiType: 'Email', MergeMode: 'Replace', RetentionEnabled: true });
    expect(drop?.headers['ttd-auth']).toBe(TOKEN);
    expect(await connectionStatus(fx)).toMatchObject({
      state: 'Partially Synced',
      matched: '1501',
      sent: '1500',
      failed: '1',
      lastError: '1 members have no email',
    });
    // One upload, one call in the destination's counts (its members are the connection's).
    expect(await statusHash(redis, fx)).toMatchObject({ sent: '1' });
    expect((await statusHash(redis, fx)).failed).toBeUndefined();

    // Not due again before the cadence; "sync now" makes it due. p7 left, p1500 and p1501 joined.
    expect(await fx.lists.flushDue()).toBe(0);
    await redis.srem(fx.profiles.membersKey(AUDIENCE.id), 'p7');
    await addMembers(fx, people(2, 1500));
    ttd.faults.push({ status: 429, headers: { 'retry-after': '1' }, body: { Message: 'Too many requests' } });
    await syncNow(fx);
    expect(await fx.lists.flushDue()).toBe(1);
    expect(ttd.uploads).toHaveLength(2);
    const second = ttd.uploads[1]!.lines;
    expect(second).toHaveLength(1501);
    expect(second).not.toContain('user7@example.com');
    expect(second).toEqual(expect.arrayContaining(['user1500@example.com', 'user1501@example.com']));
    expect(ttd.segments.get(crmDataId)!.members).toBe(second);
    // The 429 was retried after its Retry-After, counted as a retry.
    expect(ttd.receiver.requests.filter((r) => r.status === 429)).toHaveLength(1);
    expect(await statusHash(redis, fx)).toMatchObject({ sent: '2', retried: '1' });
    expect(fx.letters).toEqual([]);
  });

  it('sends normalised, hashed emails for pii_type EmailHashedUnifiedId2', async () => {
    const { ttd, fx } = await setup({ piiType: 'EmailHashedUnifiedId2' });
    const members = people(1499);
    await addMembers(fx, [...members, { profileId: 'gmail', email: 'First.Last+promo@Gmail.com' }]);
    expect(await fx.lists.flushDue()).toBe(1);
    const sha = (s: string) => createHash('sha256').update(s).digest('base64');
    expect(ttd.uploads).toHaveLength(1);
    expect(ttd.uploads[0]!.piiType).toBe('EmailHashedUnifiedId2');
    expect([...ttd.uploads[0]!.lines].sort()).toEqual([...members.map((m) => sha(m.email)), sha('firstlast@gmail.com')].sort());
  });

  it('below 1,500 members: no upload, the connection status says why', async () => {
    const { ttd, fx } = await setup();
    await addMembers(fx, people(20));
    expect(await fx.lists.flushDue()).toBe(1);
    expect(ttd.uploads).toEqual([]);
    expect(ttd.receiver.requests.filter((r) => r.path.startsWith(`/v3/crmdata/segment/`))).toEqual([]);
    const status = await connectionStatus(fx);
    expect(status).toMatchObject({ state: 'Failed', matched: '20', failed: '20' });
    expect(status.lastError).toMatch(
      /full sync of 20 members not sent: .*below The Trade Desk's ingestion minimum. Expected: >=1500 actual: 20/,
    );
    expect(fx.letters).toEqual([]);
    // The refused sync is one failure of the destination, not one per member.
    const counts = await statusHash(redis, fx);
    expect(counts).toMatchObject({ failed: '1' });
    expect(counts.lastError).toMatch(/below The Trade Desk's ingestion minimum/);
    expect(counts.sent).toBeUndefined();

    // A second refused sync ("sync now") is a second failure.
    await syncNow(fx);
    expect(await fx.lists.flushDue()).toBe(1);
    expect(await statusHash(redis, fx)).toMatchObject({ failed: '2' });
    expect(await connectionStatus(fx)).toMatchObject({ state: 'Failed', matched: '40', failed: '40' });
  });

  it('a refused token flags the destination as other 401s do', async () => {
    const { ttd, fx } = await setup({ token: 'wrong' });
    await addMembers(fx, people(1500));
    expect(await fx.lists.flushDue()).toBe(1);
    expect(ttd.uploads).toEqual([]);
    expect(ttd.receiver.requests.map((r) => r.status)).toEqual([401]);
    const counts = await statusHash(redis, fx);
    expect(counts.credentialsError).toMatch(/401/);
    expect(counts).toMatchObject({ failed: '1' });
    expect(await connectionStatus(fx)).toMatchObject({ state: 'Failed', failed: '1500' });
  });
});

describe('the-trade-desk-crm: fed by the changes topic', () => {
  const feed = changesFeed('ttdk');
  const { log, prefix, kafka, codec, changesTopic, publish } = feed;
  let pipeline: DestinationPipeline | undefined;

  beforeAll(() => feed.start());
  afterAll(async () => {
    await pipeline?.stop();
    await feed.stop();
  });

  /** Whether the dispatcher's consumer group committed every record of the changes topic (all acknowledged). */
  async function allCommitted(groupId: string): Promise<boolean> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const ends = await admin.fetchTopicOffsets(changesTopic);
      const [committed] = await admin.fetchOffsets({ groupId, topics: [changesTopic] });
      const at = new Map(committed!.partitions.map((p) => [p.partition, Number(p.offset)]));
      return ends.every((e) => Number(e.high) === 0 || at.get(e.partition) === Number(e.high));
    } finally {
      await admin.disconnect();
    }
  }

  it("uploads the audience's membership on its first flush and after changes from Kafka on sync now, sending none of them one by one", async () => {
    const { ttd, fx, crmDataId } = await setup();
    const letters: DeadLetter[] = [];
    const deadLetters = { write: async (ls: DeadLetter[]) => void letters.push(...ls) } as unknown as DeadLetterWriter;
    await addMembers(fx, people(1500));
    // The dispatcher's pipeline for dst_1 as main.ts builds it: its changes consumer, initial sync, list flushes and retries.
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
    // A connection never flushed is due at once: its first sync uploads the membership.
    await waitFor(() => ttd.uploads.length === 1, { timeoutMs: 30_000, description: 'the first upload' });
    expect([...ttd.uploads[0]!.lines].sort()).toEqual(
      people(1500)
        .map((m) => m.email)
        .sort(),
    );

    // The evaluator's changes: p1500 and p1501 entered, p7 exited (membership in Redis, then the change records).
    await addMembers(fx, people(2, 1500));
    await redis.srem(fx.profiles.membersKey(AUDIENCE.id), 'p7');
    await publish([withEmail('p1500', true), withEmail('p1501', true), withEmail('p7', false)]);
    // Consumed and acknowledged: buffered for the next sync (the last change per profile), nothing sent for them.
    const pending = `${fx.keyPrefix}dispatch:list:{dst_1:${AUDIENCE.id}}`;
    await waitFor(async () => (await redis.hlen(pending)) === 3 && (await allCommitted(`${prefix}dispatcher-dst_1`)), {
      timeoutMs: 60_000,
      description: 'the changes consumed, buffered and committed',
    });
    expect(JSON.parse((await redis.hget(pending, 'p7'))!)).toMatchObject({ member: false });
    expect(ttd.uploads).toHaveLength(1);

    // "Sync now": the next tick uploads the whole membership of the moment, which replaces the segment.
    await syncNow(fx);
    await waitFor(() => ttd.uploads.length === 2, { timeoutMs: 30_000, description: 'the upload after sync now' });
    const second = ttd.uploads[1]!.lines;
    expect([...second].sort()).toEqual(
      [...people(1500).filter((m) => m.profileId !== 'p7'), ...people(2, 1500)].map((m) => m.email).sort(),
    );
    expect(ttd.segments.get(crmDataId)!.members).toBe(second);
    await waitFor(async () => (await redis.exists(pending)) === 0, { description: 'the buffered changes dropped by the sync' });
    // Only the segment's own calls went out: a drop endpoint and its upload per sync.
    expect(ttd.receiver.requests.map((r) => `${r.method} ${r.path.replace(/[\w-]{36}$/, '<id>')}`)).toEqual([
      'POST /v3/crmdata/targeting/segment',
      ...Array(2)
        .fill([`POST /v3/crmdata/segment/${ADVERTISER}/${crmDataId}`, 'PUT /drop/<id>'])
        .flat(),
    ]);
    expect(await connectionStatus(fx)).toMatchObject({ state: 'Synced', matched: '3001', sent: '3001' });
    expect(letters).toEqual([]);
  });
});
