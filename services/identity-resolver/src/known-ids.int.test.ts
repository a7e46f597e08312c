// The resolver's known ids (known-ids.ts) through the real step: real Redis
// graph, real Kafka output, schema registry encoding.
import { DEFAULT_COMPILED_RULES, DEFAULT_IDENTITY_RULES, compileRules, type CompiledIdentityRules } from '@engage/identity';
import { createKafka, createProducer, ensureTopics, topicRegistry, type ConsumedMessage, type Kafka, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec, type RawEvent, type ResolvedEvent } from '@engage/schemas';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { IdentityRepository, type ResolveRequest, type ResolveResult } from './identity.repository';
import { KnownIds } from './known-ids';
import { ResolveStep } from './resolve.step';

const log = silentLogger();
let kafka: Kafka;
let codec: SchemaCodec;
let producer: Producer;
let redis: RedisClient;
let msg = 0;

beforeAll(async () => {
  const infra = testInfrastructure();
  kafka = createKafka({ brokers: infra.kafkaBrokers, clientId: 'known-ids-test' }, { log });
  codec = new SchemaCodec({ url: infra.schemaRegistryUrl });
  producer = createProducer(kafka);
  await producer.connect();
  redis = createRedis({ url: infra.redisUrl });
});
afterAll(async () => {
  await producer.disconnect();
  redis.disconnect();
});

const raw = (over: Partial<RawEvent>): RawEvent => ({
  message_id: `msg-${++msg}`,
  type: 'track',
  space_id: 'spa_known',
  source_id: 'src_1',
  user_id: null,
  anonymous_id: null,
  group_id: null,
  previous_id: null,
  event: 'Viewed',
  name: null,
  timestamp: 1_760_000_000_000 + msg,
  sent_at: null,
  received_at: 1_760_000_000_000 + msg,
  properties_json: '{}',
  traits_json: '{}',
  context_json: '{}',
  integrations_json: '{}',
  external_ids: [],
  ...over,
});

const consumed = (e: RawEvent, offset: number): ConsumedMessage<RawEvent> => ({
  topic: 'raw',
  partition: 0,
  offset: String(offset),
  key: e.user_id ?? e.anonymous_id,
  timestamp: 0,
  headers: {},
  value: e,
  raw: { key: null, value: null, timestamp: '0', attributes: 0, offset: String(offset), headers: {} },
});

/** The graph as the resolver uses it, counting the events it is asked to resolve. */
class CountingRepository extends IdentityRepository {
  asked = 0;
  override resolveAll(requests: ResolveRequest[]): Promise<ResolveResult[]> {
    this.asked += requests.length;
    return super.resolveAll(requests);
  }
}

/** Fresh topics and graph; steps sharing that graph, each with its own known ids; the resolved records collected. */
async function stack() {
  const topics = topicRegistry(`${uniqueName('known')}.`, { partitions: 1 });
  await ensureTopics(kafka, [topics.eventsResolved, topics.identityChanges]);
  await codec.registerTopics([topics.eventsResolved, topics.identityChanges]);
  const keyPrefix = `${uniqueName('idn')}:`;
  let now = Date.now();
  const clock = { advance: (ms: number) => (now += ms) };
  const step = (opts: { rulesFor?: () => CompiledIdentityRules; resolvedTopic?: string } = {}) => {
    const repository = new CountingRepository({ keyPrefix, resultTtlSeconds: 3600 }, { redis });
    const knownIds = new KnownIds({ maxEntries: 1000, ttlMs: 60_000 }, { now: () => now });
    const resolve = new ResolveStep(
      { resolvedTopic: opts.resolvedTopic ?? topics.eventsResolved.name, identityTopic: topics.identityChanges.name },
      { repository, producer, codec, rulesFor: opts.rulesFor ?? (() => DEFAULT_COMPILED_RULES), knownIds },
    );
    let offset = 0;
    return {
      repository,
      knownIds,
      handle: (...events: RawEvent[]) => resolve.handle(events.map((e) => consumed(e, offset++))),
    };
  };
  const resolved = new Map<string, ResolvedEvent>();
  const reader = kafka.consumer({ groupId: uniqueName('reader') });
  await reader.connect();
  await reader.subscribe({ topics: [topics.eventsResolved.name], fromBeginning: true });
  await reader.run({
    eachMessage: async ({ message }) => {
      const e = await codec.decode<ResolvedEvent>(message.value);
      resolved.set(e.message_id, e);
    },
  });
  const profileOf = (e: RawEvent) =>
    waitFor(() => resolved.get(e.message_id)?.profile_id, { description: `event ${e.message_id} resolved` });
  return { step, clock, profileOf, stopReader: () => reader.disconnect() };
}

describe('known ids', () => {
  it('an event whose ids all were on one profile is resolved without the graph script, to the profile the graph holds them on', async () => {
    const s = await stack();
    const a = s.step();
    const first = raw({ user_id: 'u1', anonymous_id: 'a1' });
    await a.handle(first);
    expect(a.repository.asked).toBe(1);
    const again = raw({ user_id: 'u1', anonymous_id: 'a1' });
    const onlyAnonymous = raw({ anonymous_id: 'a1' });
    await a.handle(again, onlyAnonymous);
    expect(a.repository.asked).toBe(1);
    const profile = await s.profileOf(first);
    expect(await s.profileOf(again)).toBe(profile);
    expect(await s.profileOf(onlyAnonymous)).toBe(profile);
    expect(await a.repository.graph.profileOf('spa_known', 'anonymous_id', 'a1')).toBe(profile);
    // A new id on the profile: the graph adds it, and afterwards knows it too.
    const withEmail = raw({ user_id: 'u1', type: 'identify', event: null, traits_json: '{"email":"u1@example.com"}' });
    await a.handle(withEmail);
    expect(a.repository.asked).toBe(2);
    await a.handle(raw({ user_id: 'u1', traits_json: '{"email":"u1@example.com"}', type: 'identify', event: null }));
    expect(a.repository.asked).toBe(2);
    await s.stopReader();
  });

  it('after a merge by another replica, a known id answers the merged profile (the evaluator re-addresses it) until it is forgotten, then the survivor', async () => {
    const s = await stack();
    const a = s.step();
    const b = s.step();
    const visitor = raw({ anonymous_id: 'a9' });
    await a.handle(visitor);
    const merged = await s.profileOf(visitor);
    const user = raw({ user_id: 'u9' });
    await b.handle(user);
    const survivor = await s.profileOf(user);
    await b.handle(raw({ type: 'identify', event: null, user_id: 'u9', anonymous_id: 'a9' }));
    expect(await a.repository.graph.profileOf('spa_known', 'anonymous_id', 'a9')).toBe(survivor);

    const soon = raw({ anonymous_id: 'a9' });
    await a.handle(soon);
    expect(await s.profileOf(soon)).toBe(merged);
    s.clock.advance(60_000);
    const later = raw({ anonymous_id: 'a9' });
    await a.handle(later);
    expect(await s.profileOf(later)).toBe(survivor);
    expect(a.repository.asked).toBe(2);
    await s.stopReader();
  });

  it('events with a group, or an id of a type whose limit has a time window, always go to the graph', async () => {
    const windowed = compileRules({
      ...DEFAULT_IDENTITY_RULES,
      limits: { ...DEFAULT_IDENTITY_RULES.limits, anonymous_id: { limit: 5, window: 'daily' } },
    });
    const s = await stack();
    const a = s.step({ rulesFor: () => windowed });
    await a.handle(raw({ user_id: 'u5' }), raw({ user_id: 'u5', anonymous_id: 'a5' }));
    expect(a.repository.asked).toBe(2);
    await a.handle(raw({ user_id: 'u5' }));
    expect(a.repository.asked).toBe(2);
    // anonymous_id counts values seen in the last day: the graph records when a5 was last seen.
    await a.handle(raw({ user_id: 'u5', anonymous_id: 'a5' }), raw({ anonymous_id: 'a5' }));
    expect(a.repository.asked).toBe(4);
    // A group call links the profile to its account in the graph.
    await a.handle(raw({ type: 'group', event: null, user_id: 'u5', group_id: 'acme' }));
    expect(a.repository.asked).toBe(5);
    await s.stopReader();
  });

  it('a chunk whose records Kafka did not take leaves nothing known: its retry asks the graph again', async () => {
    const s = await stack();
    // Kafka refuses the name: the chunk fails after the graph answered.
    const failing = s.step({ resolvedTopic: 'not a topic name!' });
    await expect(failing.handle(raw({ user_id: 'u7', anonymous_id: 'a7' }))).rejects.toThrow();
    expect(failing.repository.asked).toBe(1);
    expect(failing.knownIds.profileOf('spa_known', [{ type: 'user_id', id: 'u7' }])).toBeNull();
    await s.stopReader();
  });
});
