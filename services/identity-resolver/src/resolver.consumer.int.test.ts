// The resolver end to end through real Kafka, schema registry and Redis: raw
// events in, resolved events (keyed by profile) and identity changes out.
import { DEFAULT_COMPILED_RULES, DEFAULT_IDENTITY_RULES, compileRules, type CompiledIdentityRules } from '@engage/identity';
import { BatchConsumer, createKafka, createProducer, ensureTopics, topicRegistry, type Kafka, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec, valueSubject, type IdentityChange, type RawEvent, type ResolvedEvent } from '@engage/schemas';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { graphViolations, readGraph, survivorOf } from './graph.inspector';
import { IdentityRepository } from './identity.repository';
import { accountProfileId } from './resolve.step';
import { resolvedFromRaw } from './resolved-encoding';
import { createResolverConsumer } from './resolver.consumer';

const log = silentLogger();
let kafka: Kafka;
let codec: SchemaCodec;
let producer: Producer;
const redises: RedisClient[] = [];
let msg = 0;

beforeAll(async () => {
  const infra = testInfrastructure();
  kafka = createKafka({ brokers: infra.kafkaBrokers, clientId: 'resolver-test' }, { log });
  codec = new SchemaCodec({ url: infra.schemaRegistryUrl });
  producer = createProducer(kafka);
  await producer.connect();
});
afterAll(async () => {
  await producer.disconnect();
  for (const r of redises) r.disconnect();
});

const raw = (over: Partial<RawEvent>): RawEvent => ({
  message_id: `msg-${++msg}`,
  type: 'track',
  space_id: 'spa_k',
  source_id: 'src_1',
  user_id: null,
  anonymous_id: null,
  group_id: null,
  previous_id: null,
  event: 'Viewed',
  name: null,
  timestamp: 1_760_000_000_000 + msg,
  sent_at: null,
  received_at: 1_760_000_000_000,
  properties_json: '{}',
  traits_json: '{}',
  context_json: '{}',
  integrations_json: '{}',
  external_ids: [],
  ...over,
});

/** Fresh topics and key prefix; replicas of the resolver on demand; everything written to the outputs collected. */
async function stack(opts: { partitions: number; rulesFor?: (spaceId: string) => CompiledIdentityRules; chunkSize?: number }) {
  const topics = topicRegistry(`${uniqueName('res')}.`, { partitions: opts.partitions });
  const dlqTopic = `${topics.eventsRaw.name}.dlq`;
  await ensureTopics(kafka, [
    topics.eventsRaw,
    topics.eventsResolved,
    topics.identityChanges,
    { name: dlqTopic, partitions: 1, config: {} },
  ]);
  await codec.registerTopics([topics.eventsRaw, topics.eventsResolved, topics.identityChanges]);
  const keyPrefix = `${uniqueName('idn')}:`;
  const groupId = uniqueName('resolver');
  const replica = () => {
    const redis = createRedis({ url: testInfrastructure().redisUrl });
    redises.push(redis);
    return createResolverConsumer(
      {
        groupId,
        rawTopic: topics.eventsRaw.name,
        resolvedTopic: topics.eventsResolved.name,
        identityTopic: topics.identityChanges.name,
        dlqTopic,
        chunkSize: opts.chunkSize ?? 100,
        concurrency: 2,
        keyPrefix,
        resultTtlSeconds: 3600,
      },
      { kafka, producer, codec, redis, log, rulesFor: opts.rulesFor ?? (() => DEFAULT_COMPILED_RULES) },
    );
  };
  const out = {
    resolved: [] as ResolvedEvent[],
    resolvedKeys: [] as string[],
    changes: [] as IdentityChange[],
    dead: [] as Array<{ reason: string; step: string }>,
  };
  const reader = kafka.consumer({ groupId: uniqueName('reader') });
  await reader.connect();
  await reader.subscribe({ topics: [topics.eventsResolved.name, topics.identityChanges.name, dlqTopic], fromBeginning: true });
  await reader.run({
    eachMessage: async ({ topic, message }) => {
      if (topic === topics.eventsResolved.name) {
        out.resolved.push(await codec.decode<ResolvedEvent>(message.value));
        out.resolvedKeys.push(String(message.key));
      } else if (topic === topics.identityChanges.name) out.changes.push(await codec.decode<IdentityChange>(message.value));
      else out.dead.push({ reason: String(message.headers?.['dlq-reason']), step: String(message.headers?.['dlq-step']) });
    },
  });
  const send = async (events: Array<RawEvent | Buffer>) =>
    producer.send({
      topic: topics.eventsRaw.name,
      messages: await Promise.all(
        events.map(async (e) =>
          Buffer.isBuffer(e)
            ? { key: 'garbage', value: e }
            : { key: e.user_id ?? e.anonymous_id, value: await codec.encode(valueSubject(topics.eventsRaw.name), e) },
        ),
      ),
    });
  const graph = (spaceId: string) =>
    readGraph(new IdentityRepository({ keyPrefix, resultTtlSeconds: 1 }, { redis: redises[0]! }).graph, spaceId);
  return { topics, replica, out, send, graph, stopReader: () => reader.disconnect() };
}

describe('resolved-event encoding', () => {
  it('splices the raw Avro body behind the resolved fields: decodes to the same record as a full encode', async () => {
    const topics = topicRegistry(`${uniqueName('enc')}.`, { partitions: 1 });
    await codec.registerTopics([topics.eventsRaw, topics.eventsResolved]);
    const ids = {
      raw: await codec.register(valueSubject(topics.eventsRaw.name), 'RawEvent'),
      resolved: await codec.register(valueSubject(topics.eventsResolved.name), 'ResolvedEvent'),
    };
    const e = raw({
      type: 'group',
      user_id: 'ü-1',
      group_id: 'acme',
      traits_json: '{"name":"Ächme"}',
      external_ids: [{ type: 'crm_id', id: 'c1', collection: 'users', encoding: 'none' }],
    });
    const rawBytes = await codec.encode(valueSubject(topics.eventsRaw.name), e);
    for (const [accountId, resolvedAt] of [
      [null, 1_760_000_000_123],
      ['acc_' + 'x'.repeat(200), 0],
      [null, 2 ** 45 + 7],
    ] as const) {
      const fast = resolvedFromRaw(rawBytes, ids, { profileId: 'pro_é' + 'p'.repeat(70), accountId, resolvedAt });
      expect(await codec.decode(fast)).toEqual(
        await codec.decode(
          await codec.encode(valueSubject(topics.eventsResolved.name), {
            ...e,
            profile_id: 'pro_é' + 'p'.repeat(70),
            account_id: accountId,
            resolved_at: resolvedAt,
          }),
        ),
      );
    }
    // Bytes of another writer schema are left to the generic encoder.
    expect(
      resolvedFromRaw(Buffer.concat([Buffer.from([0, 0, 0, 0, 99]), rawBytes.subarray(5)]), ids, {
        profileId: 'p',
        accountId: null,
        resolvedAt: 1,
      }),
    ).toBeNull();
  });
});

describe('raw-event decoding', () => {
  it('decodes RawEvent bytes synchronously to what the registry client decodes; other writers and bad bytes go through the client', async () => {
    const topics = topicRegistry(`${uniqueName('dec')}.`, { partitions: 1 });
    await codec.registerTopics([topics.eventsRaw]);
    const subject = valueSubject(topics.eventsRaw.name);
    const events = [
      raw({ user_id: 'ü-1', anonymous_id: 'a-\u{1F600}', sent_at: 1_760_000_000_001, traits_json: '{"email":"Ada@X.co"}' }),
      raw({
        type: 'group',
        group_id: 'acme',
        external_ids: [{ type: 'crm_id', id: 'c1', collection: 'users', encoding: 'none' }],
      }),
    ];
    // A codec that registered nothing reads through the registry client: the reference.
    const reference = new SchemaCodec({ url: testInfrastructure().schemaRegistryUrl });
    for (const e of events) {
      const bytes = codec.encodeSync(subject, e);
      const sync = codec.decodeSyncWhenKnown(bytes);
      expect(sync).not.toBeInstanceOf(Promise);
      expect(sync).toEqual(e);
      const viaClient = reference.decodeSyncWhenKnown(bytes);
      expect(viaClient).toBeInstanceOf(Promise);
      expect(await viaClient).toEqual(sync);
    }
    const bytes = codec.encodeSync(subject, events[0]);
    // Truncated and trailing bytes, and a message without the wire-format header: the client's errors.
    const decode = (b: Buffer) => Promise.resolve().then(() => codec.decodeSyncWhenKnown(b));
    await expect(decode(bytes.subarray(0, bytes.length - 3))).rejects.toThrow(/truncated/i);
    await expect(decode(Buffer.concat([bytes, Buffer.from([1])]))).rejects.toThrow(/trailing/i);
    await expect(decode(Buffer.from('{"json":true}'))).rejects.toThrow(/not Confluent wire format/);
  });
});

describe('resolver through Kafka', () => {
  it('two replicas, one person on different partitions: one survivor, merges, new ids and account links announced, bad messages dead-lettered', async () => {
    const s = await stack({ partitions: 2 });
    const replicas: Array<BatchConsumer<RawEvent>> = [s.replica(), s.replica()];
    await Promise.all(replicas.map((r) => r.start()));

    // Keys differ (anonymous ids), so the same person's calls spread over both partitions.
    const events = [
      raw({ anonymous_id: 'web-1', type: 'page', event: null, name: 'Pricing' }),
      raw({ anonymous_id: 'phone-1', context_json: JSON.stringify({ device: { id: 'dev-1', type: 'ios' } }) }),
      raw({ anonymous_id: 'web-1', context_json: JSON.stringify({ traits: { email: 'Kim@X.co' } }) }), // email added to the anonymous profile
      raw({ type: 'identify', event: null, user_id: 'uk', anonymous_id: 'phone-1', traits_json: '{"email":"kim@x.co"}' }), // links both devices: merge
      raw({ type: 'group', event: null, user_id: 'uk', group_id: 'acme', traits_json: '{"name":"Acme"}' }),
      raw({ user_id: 'null', anonymous_id: 'web-1' }), // blocked user id ignored: lands on Kim by the anonymous id
      raw({ user_id: 'other', anonymous_id: 'web-1' }), // a second user on a device: no merge (user_id limit 1)
    ];
    const malformed = [raw({ anonymous_id: 'bad-json', traits_json: '{"email":' }), raw({ user_id: 'anonymous', anonymous_id: '0' })];
    await s.send([Buffer.from('not avro at all'), ...malformed]);
    // One call at a time (each on whichever partition its key hashes to, handled by whichever replica owns it), so the expected graph is exact.
    for (const [i, e] of events.entries()) {
      await s.send([e]);
      await waitFor(() => s.out.resolved.length >= i + 1, { timeoutMs: 30000, description: `event ${i} resolved` });
    }
    await s.send([raw({ anonymous_id: 'after-the-bad-ones' })]);
    await waitFor(() => s.out.resolved.length >= events.length + 1 && s.out.dead.length >= 3, {
      timeoutMs: 60000,
      description: 'all resolved and 3 dead letters',
    });
    await Promise.all(replicas.map((r) => r.stop()));

    expect(s.out.dead.map((d) => d.reason).sort()).toEqual([
      expect.stringMatching(/^malformed event msg-\d+: traits_json is not valid JSON/),
      expect.stringMatching(/^no usable identifier in message msg-\d+/),
      expect.stringMatching(/^undecodable: not Confluent wire format/),
    ]);
    const graph = await s.graph('spa_k');
    expect(graphViolations(graph)).toEqual([]);
    const byMessage = new Map(s.out.resolved.map((r, i) => [r.message_id, { ...r, key: s.out.resolvedKeys[i] }]));
    // Every resolved event is keyed by its profile.
    for (const r of byMessage.values()) expect(r.key).toBe(r.profile_id);
    const kim = survivorOf(graph, byMessage.get(events[3]!.message_id)!.profile_id);
    for (const e of events.slice(0, 6)) expect(survivorOf(graph, byMessage.get(e.message_id)!.profile_id)).toBe(kim);
    expect(byMessage.get(events[6]!.message_id)!.profile_id).not.toBe(kim);
    expect(byMessage.get(events[4]!.message_id)!.account_id).toBe(accountProfileId('spa_k', 'acme'));

    const kinds = (kind: IdentityChange['kind']) => s.out.changes.filter((c) => c.kind === kind);
    const merges = kinds('merge');
    expect(merges).toHaveLength(1);
    expect(merges[0]).toEqual(
      expect.objectContaining({
        profile_id: kim,
        merged_profile_ids: [expect.any(String)],
        // The identify's new user id, and the ids of the phone's profile it took over.
        added_external_ids: [
          { type: 'user_id', id: 'uk' },
          { type: 'anonymous_id', id: 'phone-1' },
          { type: 'ios.id', id: 'dev-1' },
        ],
      }),
    );
    expect(survivorOf(graph, merges[0]!.merged_profile_ids[0]!)).toBe(kim);
    expect(kinds('external_id_added')).toContainEqual(expect.objectContaining({ added_external_ids: [{ type: 'email', id: 'kim@x.co' }] }));
    expect(kinds('account_link')).toEqual([
      expect.objectContaining({
        profile_id: kim,
        account_id: accountProfileId('spa_k', 'acme'),
        added_external_ids: [{ type: 'group_id', id: 'acme' }],
      }),
    ]);
    expect([...graph.profiles.get(kim)!].sort()).toEqual([
      'anonymous_id\u001fphone-1',
      'anonymous_id\u001fweb-1',
      'email\u001fkim@x.co',
      'ios.id\u001fdev-1',
      'user_id\u001fuk',
    ]);
    await s.stopReader();
  });

  it("applies each space's own rules (blocked values, limits)", async () => {
    const strict = compileRules({
      ...DEFAULT_IDENTITY_RULES,
      blockedPatterns: ['^qa-'],
      limits: { user_id: { limit: 1, window: 'ever' }, anonymous_id: { limit: 1, window: 'ever' } },
    });
    const s = await stack({ partitions: 1, rulesFor: (spaceId) => (spaceId === 'spa_strict' ? strict : DEFAULT_COMPILED_RULES) });
    const replica = s.replica();
    await replica.start();
    const events = ['spa_strict', 'spa_loose'].flatMap((space_id) => [
      raw({ space_id, user_id: 'qa-user', anonymous_id: 'a1' }),
      raw({ space_id, user_id: 'qa-user', anonymous_id: 'a2' }),
    ]);
    await s.send(events);
    await waitFor(() => s.out.resolved.length >= 4, { timeoutMs: 60000, description: '4 resolved' });
    await replica.stop();
    const profile = (e: RawEvent) => s.out.resolved.find((r) => r.message_id === e.message_id)!.profile_id;
    // Strict: 'qa-user' is blocked and one anonymous id per profile: two profiles. Loose: one.
    expect(profile(events[0]!)).not.toBe(profile(events[1]!));
    expect(profile(events[2]!)).toBe(profile(events[3]!));
    expect([...(await s.graph('spa_strict')).ids.keys()].sort()).toEqual(['anonymous_id\u001fa1', 'anonymous_id\u001fa2']);
    await s.stopReader();
  });

  it('restart mid-stream loses nothing: a second replica picks up where the first stopped', async () => {
    const s = await stack({ partitions: 2, chunkSize: 10 });
    // Per person: browsing on two devices, and a login on each (in whatever order the partitions deliver them).
    const events = Array.from({ length: 300 }, (_, i) => {
      const person = i % 30;
      const kind = Math.floor(i / 30);
      return kind < 2
        ? raw({ user_id: `ru${person}`, anonymous_id: `ra${person}-${kind}` })
        : raw({ anonymous_id: `ra${person}-${kind % 2}` });
    });
    const first = s.replica();
    await first.start();
    await s.send(events);
    await waitFor(() => s.out.resolved.length >= 60, { timeoutMs: 60000, description: 'some resolved' });
    await first.stop();
    const second = s.replica();
    await second.start();
    await waitFor(() => new Set(s.out.resolved.map((r) => r.message_id)).size === events.length, {
      timeoutMs: 60000,
      description: 'every event resolved',
    });
    await second.stop();

    const graph = await s.graph('spa_k');
    expect(graphViolations(graph)).toEqual([]);
    expect(graph.profiles.size).toBe(30);
    // Redelivered or not, every event of a person ends up on that person's profile.
    for (const r of s.out.resolved) {
      const person = Number(/ra(\d+)-/.exec(r.anonymous_id!)![1]);
      expect(survivorOf(graph, r.profile_id)).toBe(graph.ids.get(`user_id\u001fru${person}`));
    }
    await s.stopReader();
  });
});
