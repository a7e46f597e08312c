// Issue 17 ("Trust"), end to end through real Kafka, Redis and HTTP:
// - #3 a retried call is the same call (messageId and body) from the first attempt to the last;
// - #4 a call waiting for its retry does not hold up its partition, and the profile's later calls queue behind it;
// - #6 a new connection's initial sync and the live path hand over: one entry per user.
// Each test has its own audience, destination and dispatcher, so none sees another's calls.
import { createKafka, createProducer, ensureTopics, murmur2, topicRegistry, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { emptyProfile, ProfileStateRepository, type StoredProfile } from '@engage/profile-store';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec, type ComputationChange } from '@engage/schemas';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';
import { controlPlaneApi, deliveryEnv, publishChanges, type Api } from './helpers/delivery-harness';
import { Receiver } from './helpers/receiver';

const TOKEN = 'delivery-trust-token';
const prefix = `${uniqueName('dtr')}.`;
const topics = topicRegistry(prefix);
const log = silentLogger();
const infra = () => testInfrastructure();
const procs: ServiceProcess[] = [];
const receivers: Receiver[] = [];
let api: Api;
let producer: Producer;
let codec: SchemaCodec;
let redis: RedisClient;
let profiles: ProfileStateRepository;
let spaceId: string;
let seq = 0;

const env = (extra: Record<string, string> = {}) => deliveryEnv(prefix, TOKEN, extra);

beforeAll(async () => {
  const kafka = createKafka({ brokers: infra().kafkaBrokers, clientId: 'delivery-trust-test' }, { log });
  await ensureTopics(kafka, Object.values(topics));
  codec = new SchemaCodec({ url: infra().schemaRegistryUrl });
  await codec.registerTopics(Object.values(topics));
  producer = createProducer(kafka);
  await producer.connect();
  redis = createRedis({ url: infra().redisUrl });
  profiles = new ProfileStateRepository({ keyPrefix: prefix }, { redis });
  const cp = startService('control-plane', env());
  procs.push(cp);
  api = controlPlaneApi(`http://127.0.0.1:${await cp.port()}`, TOKEN);
  spaceId = (await api('POST', '/spaces', { name: 'Trust' })).data.space.id;
});
afterAll(async () => {
  await producer?.disconnect();
  redis?.disconnect();
  await Promise.all(procs.map((p) => p.stop()));
  await Promise.all(receivers.map((r) => r.stop()));
});

async function receiver(respond?: ConstructorParameters<typeof Receiver>[0]): Promise<Receiver> {
  const r = await new Receiver(respond).start();
  receivers.push(r);
  return r;
}

/** An audience of the test's own with a webhook destination (identify calls) connected to it, and its dispatcher. */
async function hookedAudience(name: string, url: string, dispatcherEnv: Record<string, string> = {}) {
  const audience = (
    await api('POST', `/spaces/${spaceId}/audiences`, {
      name,
      definition: { query: "event('Order Completed').count() >= 1", type: 'users' },
    })
  ).data.audience as { id: string; key: string };
  const dst = (await api('POST', `/spaces/${spaceId}/destinations`, { name: `${name} Hook`, type: 'webhook', settings: { url } })).data
    .destination;
  const con = await api('POST', `/spaces/${spaceId}/audiences/${audience.id}/destinations`, {
    destinationId: dst.id,
    settings: { identify: true, track: false },
  });
  if (!con.data) throw new Error(JSON.stringify(con));
  return {
    audience,
    destinationId: dst.id as string,
    start: () => procs.push(startService('dispatcher', env({ DESTINATION_ID: dst.id, ...dispatcherEnv }))),
  };
}

function entry(audience: { id: string; key: string }, profileId: string, userId: string, value = true): ComputationChange {
  return {
    change_id: `chg_trust_${++seq}_${Date.now()}`,
    space_id: spaceId,
    computation_id: audience.id,
    computation_key: audience.key,
    computation_class: 'audience',
    level: 'user',
    profile_id: profileId,
    value,
    previous: !value,
    value_is_json: false,
    reason: 'realtime',
    occurred_at: Date.now(),
    emitted_at: Date.parse('2026-11-22T10:00:00Z'),
    external_ids: [{ type: 'user_id', id: userId }],
    user_id: userId,
    anonymous_id: null,
    traits_json: '{}',
  };
}

/** What the evaluator stores for a member (profile document and membership set), before it emits the entry. */
async function storeMembers(audience: { id: string }, members: Array<{ profileId: string; userId: string }>) {
  const docs: StoredProfile[] = members.map(({ profileId, userId }) => ({
    ...emptyProfile({ spaceId, profileId }),
    userId,
    externalIds: [{ type: 'user_id', id: userId }],
    values: { [audience.id]: { value: true, version: 1 } },
  }));
  await profiles.save(
    docs.map((profile) => ({ profile, wakeAt: null })),
    docs.map((p) => ({ computationId: audience.id, profileId: p.profileId, member: true })),
  );
}

const publish = (changes: ComputationChange[]) => publishChanges(producer, codec, topics.computationsChanges.name, changes);

describe('issue 17: delivery you can trust', () => {
  it('#3 a call answered 500, 503, 429 (Retry-After: 2) and then 200 is one call: every attempt has the same messageId and body', async () => {
    const answers = [500, 503, 429];
    const hook = await receiver((_path, _body, nth) =>
      nth <= answers.length ? { status: answers[nth - 1]!, headers: nth === 3 ? { 'retry-after': '2' } : undefined } : { status: 200 },
    );
    const { audience, start } = await hookedAudience('Trust Retry', `${hook.url}/retry`);
    // A member the evaluator stored and whose entry is on the topic: the initial sync and the live path both see it.
    await storeMembers(audience, [{ profileId: 'p-trust-retry', userId: 'u-trust-retry' }]);
    await publish([entry(audience, 'p-trust-retry', 'u-trust-retry')]);
    start();
    await waitFor(() => hook.ok().length >= 1, { timeoutMs: 60000, description: 'the delivered call' });
    await hook.quietFor(4000);
    expect(hook.requests.map((r) => r.status)).toEqual([500, 503, 429, 200]);
    const first = hook.requests[0]!.body;
    expect(first).toMatchObject({ type: 'identify', userId: 'u-trust-retry', traits: { [audience.key]: true } });
    expect(hook.requests.map((r) => r.body)).toEqual([first, first, first, first]);
  });

  it('#4 a profile waiting for its retry does not hold up its partition; its later change queues behind it and the offsets commit', async () => {
    let released = false;
    const hook = await receiver((_path, body) => (body?.userId === 'u-stuck' && !released ? { status: 503 } : { status: 200 }));
    const { audience, destinationId, start } = await hookedAudience('Trust Partition', `${hook.url}/part`);
    // Profiles on the stuck profile's partition (Kafka's default partitioner), so they queue behind it in the topic.
    const partitions = topics.computationsChanges.partitions;
    const partitionOf = (key: string) => (murmur2(key) & 0x7fffffff) % partitions;
    const stuck = `p-stuck-${seq}`;
    const neighbours = Array.from({ length: 400 }, (_, i) => `p-next-${seq}-${i}`)
      .filter((p) => partitionOf(p) === partitionOf(stuck))
      .slice(0, 5);
    expect(neighbours).toHaveLength(5);
    await publish([entry(audience, stuck, 'u-stuck'), entry(audience, stuck, 'u-stuck', false)]);
    start();
    await waitFor(() => hook.requests.filter((r) => r.body.userId === 'u-stuck').length >= 2, {
      timeoutMs: 60000,
      description: 'u-stuck retried',
    });
    // Later changes on the same partition are delivered while the stuck profile keeps failing
    // (before the fix they waited behind its retries, which slept inside the consumer's batch).
    await publish(neighbours.map((p) => entry(audience, p, `u-${p}`)));
    await waitFor(() => neighbours.every((p) => hook.ok().some((r) => r.body.userId === `u-${p}`)), {
      timeoutMs: 30000,
      description: 'the neighbours delivered while u-stuck is retried',
    });
    expect(hook.ok().some((r) => r.body.userId === 'u-stuck')).toBe(false);
    // The partition's offsets commit past the waiting call: it is durably scheduled, not held in the batch.
    const admin = createKafka({ brokers: infra().kafkaBrokers, clientId: 'trust-offsets' }, { log }).admin();
    await admin.connect();
    try {
      const topic = topics.computationsChanges.name;
      const high = (await admin.fetchTopicOffsets(topic)).find((o) => o.partition === partitionOf(stuck))!.high;
      await waitFor(
        async () => {
          const [committed] = await admin.fetchOffsets({ groupId: `${prefix}dispatcher-${destinationId}`, topics: [topic] });
          return committed!.partitions.find((p) => p.partition === partitionOf(stuck))?.offset === high;
        },
        { timeoutMs: 30000, description: 'offsets committed past the waiting call' },
      );
    } finally {
      await admin.disconnect();
    }
    expect(hook.ok().some((r) => r.body.userId === 'u-stuck')).toBe(false);

    released = true;
    await waitFor(() => hook.ok().filter((r) => r.body.userId === 'u-stuck').length >= 2, {
      timeoutMs: 30000,
      description: 'the entry and the exit',
    });
    await hook.quietFor(2000);
    // The exit never overtook the entry: every attempt before the entry succeeded was the entry.
    const stuckCalls = hook.requests.filter((r) => r.body.userId === 'u-stuck').map((r) => [r.status, r.body.traits[audience.key]]);
    const delivered = stuckCalls.filter(([status]) => status === 200);
    expect(delivered).toEqual([
      [200, true],
      [200, false],
    ]);
    expect(
      stuckCalls
        .slice(
          0,
          stuckCalls.findIndex(([status]) => status === 200),
        )
        .every(([, v]) => v === true),
    ).toBe(true);
  });

  it("#6 a new connection's initial sync and the live entries of 3,000 users (batches of 500) deliver each entry once, under one messageId", async () => {
    const hook = await receiver();
    const { audience, start } = await hookedAudience('Trust Handover', `${hook.url}/handover`);
    const users = Array.from({ length: 3000 }, (_, i) => ({ profileId: `p-ho-${i}`, userId: `u-ho-${i}` }));
    // As the evaluator does: store the members, then emit their entries, 500 at a time.
    for (let i = 0; i < users.length; i += 500) {
      const batch = users.slice(i, i + 500);
      await storeMembers(audience, batch);
      await publish(batch.map((u) => entry(audience, u.profileId, u.userId)));
    }
    start();
    await waitFor(() => new Set(hook.ok().map((r) => r.body.userId)).size === users.length, {
      timeoutMs: 120000,
      intervalMs: 500,
      description: 'every user delivered',
    });
    await hook.quietFor(4000);
    const byUser = new Map<string, string[]>();
    for (const r of hook.ok()) byUser.set(r.body.userId, [...(byUser.get(r.body.userId) ?? []), r.body.messageId]);
    const twice = [...byUser].filter(([, ids]) => ids.length > 1);
    expect(twice.slice(0, 3)).toEqual([]);
    expect(twice.length).toBe(0);
    expect(byUser.size).toBe(users.length);
  });
});
