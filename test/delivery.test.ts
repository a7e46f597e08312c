// Delivery through real Kafka, Redis and HTTP: dispatchers (one process per
// destination) read engage.computations.changes and call local receivers
// that enforce status codes and Retry-After like destination APIs do.
import { createHash } from 'node:crypto';
import { createKafka, createProducer, DLQ_HEADERS, ensureTopics, topicRegistry, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { emptyProfile, ProfileStateRepository, type StoredProfile } from '@engage/profile-store';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec, type ComputationChange } from '@engage/schemas';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';
import { FacebookEmulator } from './helpers/facebook-emulator';
import { controlPlaneApi, deliveryEnv, publishChanges, type Api } from './helpers/delivery-harness';
import { maxInWindow, Receiver } from './helpers/receiver';
import { ReceiverProcess } from './helpers/receiver-process';

/** How far apart in arrival two requests sent exactly on the limiter's schedule may drift (ms). */
const ARRIVAL_JITTER_MS = 50;

const TOKEN = 'delivery-test-token';
const prefix = `${uniqueName('dlv')}.`;
const topics = topicRegistry(prefix);
const log = silentLogger();
const infra = () => testInfrastructure();
const procs: ServiceProcess[] = [];
let api: Api;
let producer: Producer;
let codec: SchemaCodec;
let redis: RedisClient;
const letters: Array<{ reason: string; step: string; value: Buffer }> = [];
let spaceId: string;
let audience: { id: string; key: string };
let trait: { id: string; key: string };
let seq = 0;

const env = (extra: Record<string, string> = {}) => deliveryEnv(prefix, TOKEN, extra);

beforeAll(async () => {
  const kafka = createKafka({ brokers: infra().kafkaBrokers, clientId: 'delivery-test' }, { log });
  await ensureTopics(kafka, Object.values(topics));
  codec = new SchemaCodec({ url: infra().schemaRegistryUrl });
  await codec.registerTopics(Object.values(topics));
  producer = createProducer(kafka);
  await producer.connect();
  redis = createRedis({ url: infra().redisUrl });
  // One reader of engage.dispatch.dlq for the whole file: tests pick their letters out.
  const reader = kafka.consumer({ groupId: uniqueName('dlq') });
  await reader.connect();
  await reader.subscribe({ topic: topics.dispatchDlq.name, fromBeginning: true });
  await reader.run({
    eachMessage: async ({ message }) =>
      void letters.push({
        reason: String(message.headers?.[DLQ_HEADERS.reason]),
        step: String(message.headers?.[DLQ_HEADERS.step]),
        value: message.value!,
      }),
  });
  procs.push({ stop: () => reader.disconnect() } as unknown as ServiceProcess);
  const cp = startService('control-plane', env());
  procs.push(cp);
  api = controlPlaneApi(`http://127.0.0.1:${await cp.port()}`, TOKEN);
  spaceId = (await api('POST', '/spaces', { name: 'Delivery' })).data.space.id;
  audience = (
    await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'Order Completed Last 30 Days',
      definition: { query: "event('Order Completed').within(30 days).count() >= 1", type: 'users' },
    })
  ).data.audience;
  trait = (
    await api('POST', `/spaces/${spaceId}/computed-traits`, {
      name: 'Lifetime Value',
      definition: { query: "event('Order Completed').sum(property('revenue'))", type: 'users' },
    })
  ).data.computedTrait;
});
afterAll(async () => {
  await producer?.disconnect();
  redis?.disconnect();
  await Promise.all(procs.map((p) => p.stop()));
});

async function destination(
  name: string,
  url: string,
  connection: Record<string, unknown>,
  extra: Record<string, unknown> = {},
  computation: { id: string; key: string } = audience,
) {
  const dst = (await api('POST', `/spaces/${spaceId}/destinations`, { name, type: 'webhook', settings: { url }, ...extra })).data
    .destination;
  const path = computation.id.startsWith('aud_') ? 'audiences' : 'computed-traits';
  const con = await api('POST', `/spaces/${spaceId}/${path}/${computation.id}/destinations`, {
    destinationId: dst.id,
    settings: connection,
  });
  if (!con.data) throw new Error(JSON.stringify(con));
  return dst.id as string;
}

/** Any destination type, connected to a computation: both ids. */
async function connect(body: Record<string, unknown>, computation: { id: string }, settings: Record<string, unknown>) {
  const dst = await api('POST', `/spaces/${spaceId}/destinations`, body);
  if (!dst.data) throw new Error(JSON.stringify(dst));
  const path = computation.id.startsWith('aud_') ? 'audiences' : 'computed-traits';
  const con = await api('POST', `/spaces/${spaceId}/${path}/${computation.id}/destinations`, {
    destinationId: dst.data.destination.id,
    settings,
  });
  if (!con.data) throw new Error(JSON.stringify(con));
  return { destinationId: dst.data.destination.id as string, connectionId: con.data.connection.id as string };
}

async function syncStatus(computation: { id: string }, connectionId: string) {
  const list = await api('GET', `/spaces/${spaceId}/audiences/${computation.id}/destinations`);
  return list.data.connections.find((c: any) => c.id === connectionId)?.syncStatus;
}

function startDispatcher(destinationId: string, extra: Record<string, string> = {}) {
  const p = startService('dispatcher', env({ DESTINATION_ID: destinationId, ...extra }));
  procs.push(p);
  return p;
}

/** Each test connects its own audience, so no destination sees another test's changes. */
async function newAudience(name: string): Promise<{ id: string; key: string }> {
  return (
    await api('POST', `/spaces/${spaceId}/audiences`, {
      name,
      definition: { query: "event('Order Completed').count() >= 1", type: 'users' },
    })
  ).data.audience;
}

function change(over: Partial<ComputationChange>, computation = audience): ComputationChange {
  return {
    change_id: `chg_${++seq}_${Date.now()}`,
    space_id: spaceId,
    computation_id: computation.id,
    computation_key: computation.key,
    computation_class: 'audience',
    level: 'user',
    profile_id: `pro_${seq}`,
    value: true,
    previous: false,
    value_is_json: false,
    reason: 'realtime',
    occurred_at: Date.now(),
    emitted_at: Date.parse('2026-11-22T10:00:00Z'),
    external_ids: [{ type: 'user_id', id: `u${seq}` }],
    user_id: `u${seq}`,
    anonymous_id: null,
    traits_json: '{}',
    ...over,
  };
}

const publish = (changes: ComputationChange[]) => publishChanges(producer, codec, topics.computationsChanges.name, changes);

describe('dispatcher', () => {
  it('sends exactly the identify and track calls of CONTRACT.md section 5: entered, exited, several emails, trait only on change', async () => {
    const receiver = await new Receiver().start();
    const dst = await destination('Exact Hook', `${receiver.url}/hook`, {
      identify: true,
      track: true,
      identifierTypes: ['user_id', 'email'],
    });
    const dstTrait = await destination('Trait Hook', `${receiver.url}/traits`, { identify: true, track: true }, {}, trait);
    const personas = {
      computation_class: 'audience',
      computation_id: audience.id,
      computation_key: audience.key,
      namespace: spaceId,
      space_id: spaceId,
    };
    const entered = change({
      user_id: 'u123',
      external_ids: [
        { type: 'user_id', id: 'u123' },
        { type: 'email', id: 'a@b.co' },
        { type: 'email', id: 'c@d.co' },
      ],
    });
    const exited = change({ user_id: 'u123', value: false, previous: true, external_ids: [{ type: 'user_id', id: 'u123' }] });
    const traitChange = change({
      computation_id: trait.id,
      computation_key: trait.key,
      computation_class: 'trait',
      value: 42.5,
      previous: null,
      user_id: null,
      anonymous_id: 'anon-9',
    });
    startDispatcher(dst);
    startDispatcher(dstTrait);
    await publish([entered, exited, traitChange]);
    await waitFor(() => receiver.ok('/hook').length === 6 && receiver.ok('/traits').length === 2, {
      timeoutMs: 60000,
      description: '6 audience calls and 2 trait calls',
    });

    const bodies = receiver.ok('/hook').map((r) => r.body);
    const integrations = { All: false, 'Exact Hook': true };
    expect(bodies.filter((b) => b.type === 'identify' && b.traits[audience.key] === true)).toEqual([
      {
        type: 'identify',
        userId: 'u123',
        messageId: expect.stringMatching(/^personas_/),
        timestamp: '2026-11-22T10:00:00.000Z',
        traits: { [audience.key]: true, email: 'a@b.co' },
        context: { personas },
        integrations,
      },
      {
        type: 'identify',
        userId: 'u123',
        messageId: expect.stringMatching(/^personas_/),
        timestamp: '2026-11-22T10:00:00.000Z',
        traits: { [audience.key]: true, email: 'c@d.co' },
        context: { personas },
        integrations,
      },
    ]);
    expect(bodies.filter((b) => b.type === 'track' && b.event === 'Audience Entered').map((b) => [b.properties, b.context.traits])).toEqual(
      [
        [{ audience_key: audience.key, [audience.key]: true }, { email: 'a@b.co' }],
        [{ audience_key: audience.key, [audience.key]: true }, { email: 'c@d.co' }],
      ],
    );
    expect(
      bodies
        .filter((b) => b.event === 'Audience Exited' || b.traits?.[audience.key] === false)
        .map((b) => [b.type, b.userId, b.properties ?? b.traits]),
    ).toEqual([
      ['identify', 'u123', { [audience.key]: false }],
      ['track', 'u123', { audience_key: audience.key, [audience.key]: false }],
    ]);
    expect(new Set(bodies.map((b) => b.messageId)).size).toBe(6);
    expect(
      receiver
        .ok('/traits')
        .map((r) => [
          r.body.type,
          r.body.anonymousId,
          r.body.event,
          r.body.traits ?? r.body.properties,
          r.body.context.personas.computation_class,
        ]),
    ).toEqual([
      ['identify', 'anon-9', undefined, { [trait.key]: 42.5 }, 'trait'],
      ['track', 'anon-9', 'Trait Computed', { trait_key: trait.key, [trait.key]: 42.5 }, 'trait'],
    ]);
    await receiver.stop();
  });

  it('honours 429 Retry-After, retries 500s and delivers once, dead-letters a 400 with its reason', async () => {
    const receiver = await new Receiver((path, _body, nth) => {
      if (path === '/busy' && nth === 1) return { status: 429, headers: { 'retry-after': '1' } };
      if (path === '/flaky' && nth <= 2) return { status: 503 };
      if (path === '/bad') return { status: 400 };
      return { status: 200 };
    }).start();
    const own = await newAudience('Retry Audience');
    const busy = await destination('Busy', `${receiver.url}/busy`, { identify: true, track: false }, {}, own);
    const flaky = await destination('Flaky', `${receiver.url}/flaky`, { identify: true, track: false }, {}, own);
    const bad = await destination('Bad', `${receiver.url}/bad`, { identify: true, track: false }, {}, own);
    const dispatchers = [busy, flaky, bad].map((d) => startDispatcher(d));
    const c = change({}, own);
    await publish([c]);
    await waitFor(
      () => receiver.ok('/busy').length === 1 && receiver.ok('/flaky').length === 1 && receiver.requests.some((r) => r.path === '/bad'),
      { timeoutMs: 20000, description: 'deliveries' },
    );

    const busyCalls = receiver.requests.filter((r) => r.path === '/busy');
    expect(busyCalls.map((r) => r.status)).toEqual([429, 200]);
    expect(busyCalls[1]!.at - busyCalls[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(receiver.requests.filter((r) => r.path === '/flaky').map((r) => r.status)).toEqual([503, 503, 200]);
    expect(new Set(receiver.requests.filter((r) => r.path === '/flaky').map((r) => r.body.messageId)).size).toBe(1);

    const mine = async () =>
      Promise.all(
        letters
          .filter((l) => l.step === 'deliver')
          .map(async (l) => ({ reason: l.reason, value: (await codec.decode(l.value)) as ComputationChange })),
      ).then((all) => all.filter((l) => l.value.change_id === c.change_id));
    await waitFor(async () => (await mine()).length >= 1, { description: 'a dead letter' });
    expect((await mine()).map((l) => [l.reason, l.value.change_id])).toEqual([['HTTP 400 from Bad (not retriable)', c.change_id]]);

    // Status per destination, in Redis for the control plane and as metrics.
    const status = async (id: string) => redis.hgetall(`${prefix}status:destination:${id}`);
    // Counts are written in batches every 250 ms.
    await waitFor(
      async () => (await status(bad)).dead_lettered === '1' && (await status(busy)).sent === '1' && (await status(flaky)).sent === '1',
      { description: 'status counts' },
    );
    expect(await status(busy)).toMatchObject({ sent: '1', retried: '1', lastError: 'HTTP 429' });
    expect(await status(flaky)).toMatchObject({ sent: '1', retried: '2', lastError: 'HTTP 503' });
    expect(await status(bad)).toMatchObject({ failed: '1', dead_lettered: '1', lastError: 'HTTP 400 from Bad (not retriable)' });
    // The same counts through the control plane, as the destination table shows them.
    expect((await api('GET', `/spaces/${spaceId}/destinations/${bad}`)).data.destination).toMatchObject({
      id: bad,
      status: 'Enabled',
      deliveryStatus: { sent: 0, failed: 1, deadLettered: 1, lastError: 'HTTP 400 from Bad (not retriable)' },
    });
    const listed = (await api('GET', `/spaces/${spaceId}/destinations?count=200`)).data.destinations;
    // Busy's 429 was followed by a sent call: its error is past (the hash keeps it, the console no longer shows it).
    expect(listed.find((d: any) => d.id === busy).deliveryStatus).toMatchObject({
      sent: 1,
      retried: 1,
      lastError: null,
      lastErrorAt: null,
    });
    const metrics = await (await fetch(`http://127.0.0.1:${await dispatchers[1]!.port()}/metrics`)).text();
    expect(metrics).toContain(`engage_dispatch_calls_total{destination="${flaky}",outcome="retried",service="dispatcher"} 2`);
    expect(metrics).toContain(`engage_dispatch_calls_total{destination="${flaky}",outcome="sent",service="dispatcher"} 1`);

    await receiver.stop();
  });

  it('dead-letters a call still failing when the retry window is spent, with the reason', async () => {
    const receiver = await new Receiver(() => ({ status: 503 })).start();
    const own = await newAudience('Window Audience');
    const down = await destination('Down', `${receiver.url}/down`, { identify: true, track: false }, {}, own);
    startDispatcher(down, { DISPATCH_RETRY_WINDOW_MS: '1500' });
    const c = change({}, own);
    await publish([c]);
    const mine = async () =>
      Promise.all(
        letters
          .filter((l) => l.step === 'deliver')
          .map(async (l) => ({ reason: l.reason, value: (await codec.decode(l.value)) as ComputationChange })),
      ).then((all) => all.filter((l) => l.value.change_id === c.change_id));
    await waitFor(async () => (await mine()).length === 1, { timeoutMs: 30000, description: 'the dead letter' });
    expect((await mine())[0]!.reason).toMatch(/^HTTP 503 from Down; retry window of 1500 ms spent after \d+ attempts$/);
    expect(receiver.requests.length).toBeGreaterThanOrEqual(2);
    await receiver.stop();
  });

  it('two replicas of a destination limited to 5/s never deliver more than 5 in any second while a backlog of 200 drains at close to that rate', async () => {
    const receiver = await new ReceiverProcess().start();
    const own = await newAudience('Limited Audience');
    const limited = await destination(
      'Limited',
      `${receiver.url}/limited`,
      { identify: true, track: false },
      { rateLimit: { requestsPerSecond: 5 } },
      own,
    );
    startDispatcher(limited);
    startDispatcher(limited);
    // Both replicas in the group before the backlog arrives: a rebalance pause is not the limiter's doing.
    const admin = createKafka({ brokers: infra().kafkaBrokers, clientId: 'group-check' }, { log }).admin();
    await admin.connect();
    await waitFor(
      async () => {
        const { groups } = await admin.describeGroups([`${prefix}dispatcher-${limited}`]);
        return groups[0]?.state === 'Stable' && groups[0].members.length === 2;
      },
      { timeoutMs: 90000, intervalMs: 500, description: 'both replicas in the consumer group' },
    );
    await admin.disconnect();
    await publish(Array.from({ length: 200 }, () => change({}, own)));
    // Unique users: a rebalance between the replicas may redeliver a chunk (same messageIds, deduped mostly).
    await waitFor(async () => new Set((await receiver.requests('/limited')).map((r) => r.body.userId)).size === 200, {
      timeoutMs: 90000,
      intervalMs: 1000,
      description: '200 deliveries',
    });
    const received = await receiver.requests('/limited');
    const times = received.map((r) => r.at);
    // Arrival times carry the network's jitter, which the limiter cannot see: a request that also opened
    // its connection arrived ~30 ms late once, so six arrivals fell in 995 ms though they were sent
    // 200 ms apart (the limiter's own spacing is checked exactly, at the sender, in rate-limiter.int).
    // A window 50 ms short of a second allows that jitter and still catches a sixth request in a second.
    const window = 1000 - ARRIVAL_JITTER_MS;
    // On a violation, what arrived when and from which replica (sender-side stall or receiver-side?).
    if (maxInWindow(times, window) > 5)
      process.stderr.write(`arrivals: ${JSON.stringify(received.map((r) => [r.at, r.headers['x-engage-replica']]))}\n`);
    expect(maxInWindow(times, window)).toBeLessThanOrEqual(5);
    const achieved = (times.length - 1) / ((Math.max(...times) - Math.min(...times)) / 1000);
    expect(achieved).toBeGreaterThanOrEqual(0.95 * 5);
    // Both replicas took part (the consumer group split the partitions), sharing one bucket.
    expect(new Set(received.map((r) => r.headers['x-engage-replica'])).size).toBe(2);
    expect(Number(await redis.hget(`${prefix}status:destination:${limited}`, 'throttled'))).toBeGreaterThan(0);
    await receiver.stop();
  });

  it('loses no change when a dispatcher is killed mid-flight; duplicates carry the same messageId', async () => {
    const receiver = await new Receiver().start();
    const own = await newAudience('Killed Audience');
    const dst = await destination(
      'Killed',
      `${receiver.url}/killed`,
      { identify: true, track: false },
      { rateLimit: { requestsPerSecond: 50 } },
      own,
    );
    const changes = Array.from({ length: 150 }, () => change({}, own));
    await publish(changes);
    const first = startDispatcher(dst);
    await waitFor(() => receiver.ok('/killed').length >= 30, { timeoutMs: 60000, description: 'some deliveries' });
    await first.stop('SIGKILL');
    startDispatcher(dst);
    const expected = new Set(changes.map((c) => c.user_id));
    await waitFor(() => new Set(receiver.ok('/killed').map((r) => r.body.userId)).size === expected.size, {
      timeoutMs: 90000,
      intervalMs: 500,
      description: 'every change delivered',
    });
    const byUser = new Map<string, Set<string>>();
    for (const r of receiver.ok('/killed')) byUser.set(r.body.userId, (byUser.get(r.body.userId) ?? new Set()).add(r.body.messageId));
    expect([...byUser.values()].every((ids) => ids.size === 1)).toBe(true);
    await receiver.stop();
  });

  it('list-webhook: buffers until due (last change per profile wins), "sync now" flushes {audience_key, audience_id, add, remove} in chunks of the batch limit; a refused record is isolated and dead-lettered', async () => {
    const receiver = await new Receiver((_path, body) => (body?.add?.includes('u-bad') ? { status: 400 } : { status: 200 })).start();
    const own = await newAudience('List Audience');
    const { destinationId, connectionId } = await connect(
      { name: 'List Hook', type: 'list-webhook', settings: { url: `${receiver.url}/list`, batchSize: 2 } },
      own,
      { identify: false, track: false },
    );
    startDispatcher(destinationId);
    // The first tick flushes (nothing yet); the next is due in an hour.
    await waitFor(async () => (await redis.exists(`${prefix}dispatch:list:flushed:${connectionId}`)) === 1, {
      timeoutMs: 60000,
      description: 'first flush tick',
    });
    const users = ['u-a', 'u-b', 'u-c', 'u-bad', 'u-d'];
    const pending = `${prefix}dispatch:list:{${destinationId}:${own.id}}`;
    await publish(users.map((u) => change({ profile_id: `p-${u}`, user_id: u, external_ids: [{ type: 'user_id', id: u }] }, own)));
    await waitFor(async () => (await redis.hlen(pending)) === 5, { description: '5 profiles buffered' });
    await publish([
      change({ profile_id: 'p-u-a', user_id: 'u-a', value: false, previous: true, external_ids: [{ type: 'user_id', id: 'u-a' }] }, own),
    ]);
    await waitFor(async () => JSON.parse((await redis.hget(pending, 'p-u-a')) ?? '{}').member === false, {
      description: 'u-a exit buffered',
    });
    expect(receiver.requests).toEqual([]);

    expect((await api('POST', `/spaces/${spaceId}/destinations/${destinationId}/sync`)).data).toEqual({
      status: 'SYNC_REQUESTED',
      destinationId,
    });
    const oks = () => receiver.ok('/list').map((r) => r.body);
    await waitFor(() => new Set(oks().flatMap((b) => b.add)).size === 3 && oks().some((b) => b.remove.length > 0), {
      timeoutMs: 30000,
      description: 'adds and removes posted',
    });
    for (const body of receiver.requests.map((r) => r.body)) {
      expect(Object.keys(body).sort()).toEqual(['add', 'audience_id', 'audience_key', 'remove']);
      expect([body.audience_key, body.audience_id]).toEqual([own.key, own.id]);
      expect(body.add.length + body.remove.length).toBeLessThanOrEqual(2);
    }
    expect(new Set(oks().flatMap((b) => b.add))).toEqual(new Set(['u-b', 'u-c', 'u-d']));
    expect(oks().flatMap((b) => b.remove)).toEqual(['u-a']);
    const mine = () => letters.filter((l) => l.step === 'list-flush' && JSON.parse(l.value.toString()).connection_id === connectionId);
    await waitFor(() => mine().length === 1, { description: 'the refused record dead-lettered' });
    expect(JSON.parse(mine()[0]!.value.toString())).toMatchObject({
      profile_id: 'p-u-bad',
      op: 'add',
      identifier: { type: 'user_id', id: 'u-bad' },
    });
    expect(mine()[0]!.reason).toBe('HTTP 400 from List Hook (not retriable)');
    await waitFor(async () => (await syncStatus(own, connectionId))?.state === 'Partially Synced', { description: 'sync status' });
    expect(await syncStatus(own, connectionId)).toMatchObject({ sent: 4, failed: 1, lastError: 'HTTP 400 from List Hook (not retriable)' });
    expect(await redis.hlen(pending)).toBe(0);
    await receiver.stop();
  });

  it('Facebook Custom Audiences against an emulator: creates the audience, adds 10,001 SHA-256 emails in requests of <= 10,000, retries #80003 throttling, removes on exit, reports a bad token', async () => {
    const fb = await new FacebookEmulator({ token: 'fb-token', requestsPerSecond: 2 }).start();
    const own = await newAudience('FB Audience');
    const settings = { accessToken: 'fb-token', adAccountId: 'act_1234', apiBaseUrl: fb.url };
    const good = await connect({ name: 'FB', type: 'facebook-custom-audiences', settings, rateLimit: { requestsPerSecond: 20 } }, own, {
      identify: false,
      track: false,
    });
    const wrong = await connect(
      {
        name: 'FB wrong token',
        type: 'facebook-custom-audiences',
        settings: { ...settings, accessToken: 'expired', syncIntervalSeconds: 2 },
      },
      own,
      { identify: false, track: false },
    );
    startDispatcher(good.destinationId);
    startDispatcher(wrong.destinationId);
    await waitFor(async () => (await redis.exists(`${prefix}dispatch:list:flushed:${good.connectionId}`)) === 1, {
      timeoutMs: 60000,
      description: 'first flush tick',
    });

    const n = 10_001;
    const email = (i: number) => `  User${i}@Example.COM `;
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const changes = Array.from({ length: n }, (_, i) =>
      change(
        {
          profile_id: `p-fb-${i}`,
          user_id: `fb${i}`,
          external_ids: [
            { type: 'user_id', id: `fb${i}` },
            { type: 'email', id: email(i) },
          ],
        },
        own,
      ),
    );
    changes.push(change({ profile_id: 'p-fb-invalid', external_ids: [{ type: 'email', id: 'not-an-email' }] }, own));
    changes.push(change({ profile_id: 'p-fb-no-email', external_ids: [{ type: 'user_id', id: 'only-user-id' }] }, own));
    await publish(changes);
    const pending = `${prefix}dispatch:list:{${good.destinationId}:${own.id}}`;
    await waitFor(async () => (await redis.hlen(pending)) === n + 2, {
      timeoutMs: 60000,
      intervalMs: 500,
      description: 'all changes buffered',
    });
    await redis.set(`${prefix}dispatch:list:syncnow:${good.destinationId}`, '1');

    const audience = () => [...fb.audiences.values()][0];
    await waitFor(() => audience()?.members.size === n, { timeoutMs: 60000, intervalMs: 500, description: `${n} members on Facebook` });
    expect(fb.audiences.size).toBe(1);
    expect(audience()!.name).toBe('FB Audience');
    expect(audience()!.members).toEqual(new Set(Array.from({ length: n }, (_, i) => sha(`user${i}@example.com`))));
    const users = fb.requests.filter((r) => r.path.endsWith('/users'));
    expect(users.filter((r) => r.status === 200).map((r) => r.entries)).toEqual([10_000, 1]);
    expect(users.every((r) => (r.entries ?? 0) <= 10_000)).toBe(true);
    expect(fb.requests.some((r) => r.code === 80003)).toBe(true); // throttled by Facebook and retried
    const invalid = () =>
      letters.filter((l) => l.step === 'list-flush' && JSON.parse(l.value.toString()).connection_id === good.connectionId);
    await waitFor(() => invalid().length === 1, { description: 'the invalid email dead-lettered' });
    expect(invalid()[0]!.reason).toBe('invalid email "not-an-email"');

    await publish([change({ profile_id: 'p-fb-0', value: false, previous: true, external_ids: [{ type: 'email', id: email(0) }] }, own)]);
    await waitFor(async () => (await redis.hlen(pending)) === 1, { description: 'exit buffered' });
    await redis.set(`${prefix}dispatch:list:syncnow:${good.destinationId}`, '1');
    await waitFor(() => audience()!.members.size === n - 1, { timeoutMs: 30000, description: 'removed on exit' });
    expect(audience()!.members.has(sha('user0@example.com'))).toBe(false);
    expect(fb.requests.filter((r) => r.method === 'DELETE' && r.status === 200).map((r) => r.entries)).toEqual([1]);
    expect(fb.requests.filter((r) => r.method === 'GET' && r.status === 200)).toHaveLength(1); // the known audience looked up, not re-created

    // The wrong token: flushed on its 2 s cadence (no "sync now"), refused with #190, shown in the sync status.
    await waitFor(async () => (await syncStatus(own, wrong.connectionId))?.state === 'Failed', {
      timeoutMs: 30000,
      description: 'bad token status',
    });
    expect((await syncStatus(own, wrong.connectionId)).lastError).toContain('(#190) Invalid OAuth access token');
    await fb.stop();
  });

  it('a new connection to an existing audience sends every current member once, then only changes; a new email re-syncs that profile', async () => {
    const receiver = await new Receiver().start();
    const own = await newAudience('Backfill Audience');
    const profiles = new ProfileStateRepository({ keyPrefix: prefix }, { redis });
    const profile = (i: number, member: boolean): StoredProfile => ({
      spaceId,
      profileId: `p-bf-${i}`,
      userId: `u-bf-${i}`,
      anonymousId: null,
      externalIds: [{ type: 'user_id', id: `u-bf-${i}` }],
      events: [],
      traits: {},
      values: { [own.id]: { value: member, version: 1 } },
    });
    const state = [profile(1, true), profile(2, true), profile(3, true), profile(4, false)];
    await profiles.save(
      state.map((p) => ({ profile: p, wakeAt: null })),
      state.map((p) => ({ computationId: own.id, profileId: p.profileId, member: p.values[own.id]!.value === true })),
    );

    const { destinationId } = await connect({ name: 'Backfill Hook', type: 'webhook', settings: { url: `${receiver.url}/bf` } }, own, {
      identify: true,
      track: false,
      identifierTypes: ['user_id', 'email'],
    });
    startDispatcher(destinationId);
    await waitFor(() => receiver.ok('/bf').length === 3, { timeoutMs: 60000, description: 'backfill of 3 members' });
    expect(
      receiver
        .ok('/bf')
        .map((r) => [r.body.userId, r.body.traits])
        .sort(),
    ).toEqual([1, 2, 3].map((i) => [`u-bf-${i}`, { [own.key]: true }]));

    await publish([
      change(
        { profile_id: 'p-bf-2', user_id: 'u-bf-2', value: false, previous: true, external_ids: [{ type: 'user_id', id: 'u-bf-2' }] },
        own,
      ),
    ]);
    await waitFor(() => receiver.ok('/bf').length === 4, { description: 'the exit' });
    expect(receiver.ok('/bf')[3]!.body).toMatchObject({ userId: 'u-bf-2', traits: { [own.key]: false } });

    // p-bf-1 gained an email: the evaluator emits a re-sync of its current value to the new id
    // (reason resync, addressed to the added ids only), in order with its other changes. A
    // re-sync to a type this connection does not match on (anonymous_id) is not sent.
    await publish(
      [
        { type: 'anonymous_id', id: 'a-bf-1' },
        { type: 'email', id: 'new@x.co' },
      ].map((added) =>
        change({ profile_id: 'p-bf-1', user_id: 'u-bf-1', value: true, previous: true, reason: 'resync', external_ids: [added] }, own),
      ),
    );
    await waitFor(() => receiver.ok('/bf').some((r) => r.body.traits.email === 'new@x.co'), {
      timeoutMs: 60000,
      description: 're-sync on the new email',
    });
    const resynced = receiver.ok('/bf').filter((r) => r.body.traits.email === 'new@x.co');
    expect(resynced.map((r) => [r.body.userId, r.body.traits])).toEqual([['u-bf-1', { [own.key]: true, email: 'new@x.co' }]]);
    // Exactly the 3 backfilled, the exit and the re-sync: no member sent twice.
    expect(receiver.ok('/bf').length).toBe(5);

    // A computed trait's initial sync sends every profile that has a value (here only p-bf-3).
    const ltv = (
      await api('POST', `/spaces/${spaceId}/computed-traits`, {
        name: 'Backfill LTV',
        definition: { query: "event('Order Completed').sum(property('revenue'))", type: 'users' },
      })
    ).data.computedTrait;
    const [p3] = await profiles.load([{ spaceId, profileId: 'p-bf-3' }]);
    await profiles.save([{ profile: { ...p3!, values: { ...p3!.values, [ltv.id]: { value: 42, version: 1 } } }, wakeAt: null }], []);
    const traitHook = await connect({ name: 'Backfill Trait Hook', type: 'webhook', settings: { url: `${receiver.url}/bf-trait` } }, ltv, {
      identify: true,
      track: false,
    });
    startDispatcher(traitHook.destinationId);
    await waitFor(() => receiver.ok('/bf-trait').length === 1, { timeoutMs: 60000, description: 'trait backfill' });
    expect(receiver.ok('/bf-trait')[0]!.body).toMatchObject({
      type: 'identify',
      userId: 'u-bf-3',
      traits: { [ltv.key]: 42 },
      context: { personas: { computation_class: 'trait' } },
    });
    await receiver.stop();
  });
  it('an initial sync that raced a live exit leaves the current value at the destination, the exit last', async () => {
    const own = await newAudience('Race Audience');
    const profiles = new ProfileStateRepository({ keyPrefix: prefix }, { redis });
    const member = (value: boolean): StoredProfile => ({
      ...emptyProfile({ spaceId, profileId: 'p-race-1' }),
      userId: 'u-race-1',
      externalIds: [{ type: 'user_id', id: 'u-race-1' }],
      values: { [own.id]: { value, version: 1 } },
    });
    await profiles.save([{ profile: member(true), wakeAt: null }], [{ computationId: own.id, profileId: 'p-race-1', member: true }]);
    // The sync read "member"; while its call is in flight (first answer 503, retried), the profile exits
    // as the evaluator does it: the state is stored, then the exit is emitted to the live path.
    let exited: Promise<void> | null = null;
    const receiver = await new Receiver((path, _body, nth) => {
      if (path === '/race' && nth === 1) {
        exited = (async () => {
          await profiles.save(
            [{ profile: member(false), wakeAt: null }],
            [{ computationId: own.id, profileId: 'p-race-1', member: false }],
          );
          await publish([
            change(
              {
                profile_id: 'p-race-1',
                user_id: 'u-race-1',
                value: false,
                previous: true,
                external_ids: [{ type: 'user_id', id: 'u-race-1' }],
              },
              own,
            ),
          ]);
        })();
        return { status: 503 };
      }
      return { status: 200 };
    }).start();
    const { destinationId } = await connect({ name: 'Race Hook', type: 'webhook', settings: { url: `${receiver.url}/race` } }, own, {
      identify: true,
      track: false,
    });
    startDispatcher(destinationId);
    const values = () => receiver.ok('/race').map((r) => r.body.traits[own.key]);
    await waitFor(() => values().includes(false), { timeoutMs: 60000, description: 'the exit delivered' });
    await exited;
    await receiver.quietFor(3000);
    // The entry first, and nothing older after the exit: the latest value is the last to arrive
    // (a correction may repeat the exit when the two paths raced, never the entry).
    expect(values()[0]).toBe(true);
    expect(values().slice(values().indexOf(false))).toEqual(
      values()
        .slice(values().indexOf(false))
        .map(() => false),
    );
    expect(receiver.ok('/race').every((r) => r.body.userId === 'u-race-1')).toBe(true);
    await receiver.stop();
  });
});

describe('account-level computations', () => {
  it('sends a Group call per account and an identify per user of the account, on entry and exit', async () => {
    const receiver = await new Receiver().start();
    const own = await newAudience('Active Accounts');
    const dst = await destination('Accounts Hook', `${receiver.url}/acc`, { group: true, identify: true, track: false }, {}, own);
    // The evaluator's documents for one account and its two users.
    const profiles = new ProfileStateRepository({ keyPrefix: prefix }, { redis });
    const user = (id: string, email: string) => ({
      ...emptyProfile({ spaceId, profileId: id }),
      userId: id.replace('pro_', ''),
      externalIds: [
        { type: 'user_id', id: id.replace('pro_', '') },
        { type: 'email', id: email },
      ],
    });
    const account = {
      ...emptyProfile({ spaceId, profileId: 'acc_acme' }),
      externalIds: [{ type: 'group_id', id: 'acme' }],
      users: ['pro_ann', 'pro_bob'],
    };
    await profiles.save(
      [account, user('pro_ann', 'ann@acme.co'), user('pro_bob', 'bob@acme.co')].map((profile) => ({ profile, wakeAt: null })),
      [],
    );
    startDispatcher(dst);
    const entry = change(
      { level: 'account', profile_id: 'acc_acme', user_id: null, external_ids: [{ type: 'group_id', id: 'acme' }] },
      own,
    );
    await publish([entry, change({ ...entry, change_id: `${entry.change_id}-exit`, value: false, previous: true })]);
    await waitFor(() => receiver.ok('/acc').length >= 6, { timeoutMs: 60000, description: 'group and identify calls' });
    const calls = receiver.ok('/acc').map((r) => r.body);
    expect(calls.filter((c) => c.type === 'group').map((c) => [c.groupId, c.traits])).toEqual([
      ['acme', { [own.key]: true }],
      ['acme', { [own.key]: false }],
    ]);
    expect(calls.filter((c) => c.type === 'identify').map((c) => [c.userId, c.traits])).toEqual([
      ['ann', { [own.key]: true, email: 'ann@acme.co' }],
      ['bob', { [own.key]: true, email: 'bob@acme.co' }],
      ['ann', { [own.key]: false, email: 'ann@acme.co' }],
      ['bob', { [own.key]: false, email: 'bob@acme.co' }],
    ]);
    expect(calls.find((c) => c.type === 'group').context.personas.computation_id).toBe(own.id);
    await receiver.stop();
  });
});
