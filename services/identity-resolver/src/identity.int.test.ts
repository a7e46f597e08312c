// Identity resolution against the real Redis (the Lua graph update) and, for
// the whole step, real Kafka and schema registry.
import { DEFAULT_IDENTITY_RULES, type ExternalId, type IdentityRules } from '@engage/identity';
import { BatchConsumer, createKafka, createProducer, DeadLetterWriter, ensureTopics, topicRegistry, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec, valueSubject, type IdentityChange, type RawEvent, type ResolvedEvent } from '@engage/schemas';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { IdentityRepository, type ResolveResult } from './identity.repository';
import { ResolveStep, newProfileId } from './resolve.step';

let redis: RedisClient;
let otherRedis: RedisClient;
let repo: IdentityRepository;
let prefix: string;
let msg = 0;

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
  otherRedis = createRedis({ url: testInfrastructure().redisUrl });
});
beforeEach(() => {
  prefix = `${uniqueName('idn')}:`;
  repo = new IdentityRepository({ keyPrefix: prefix, resultTtlSeconds: 3600 }, { redis });
});
afterAll(() => {
  redis.disconnect();
  otherRedis.disconnect();
});

const ids = (...pairs: Array<[string, string]>): ExternalId[] => pairs.map(([type, id]) => ({ type, id }));
function resolve(external: ExternalId[], opts: { rules?: IdentityRules; messageId?: string; on?: IdentityRepository } = {}): Promise<ResolveResult> {
  const messageId = opts.messageId ?? `m${++msg}`;
  return (opts.on ?? repo).resolve({ spaceId: 'spa_1', messageId, newProfileId: newProfileId('spa_1', messageId), ids: external, rules: opts.rules ?? DEFAULT_IDENTITY_RULES, accountId: null });
}

describe('identity graph (Lua in real Redis)', () => {
  it('anonymous browsing then identify: the anonymous profile gains the user id; a second anonymous profile merges in', async () => {
    const browsing = await resolve(ids(['anonymous_id', 'a1']));
    expect(browsing.created).toBe(true);
    const identify = await resolve(ids(['user_id', 'u1'], ['anonymous_id', 'a1']));
    expect(identify).toEqual(expect.objectContaining({ profileId: browsing.profileId, created: false, merged: [], added: ids(['user_id', 'u1']) }));

    const otherDevice = await resolve(ids(['email', 'ada@example.com'], ['anonymous_id', 'a2']));
    expect(otherDevice.profileId).not.toBe(browsing.profileId);
    const login = await resolve(ids(['user_id', 'u1'], ['email', 'ada@example.com']));
    expect(login).toEqual(expect.objectContaining({ profileId: browsing.profileId, merged: [otherDevice.profileId] }));
    expect(login.all.map((x) => `${x.type}:${x.id}`).sort()).toEqual(['anonymous_id:a1', 'anonymous_id:a2', 'email:ada@example.com', 'user_id:u1']);
    // Later events of either id land on the survivor.
    expect((await resolve(ids(['anonymous_id', 'a2']))).profileId).toBe(browsing.profileId);
  });

  it('two users sharing a device do not merge when user_id is limited to 1: the device id is dropped', async () => {
    const first = await resolve(ids(['user_id', 'u1'], ['anonymous_id', 'shared-device']));
    const second = await resolve(ids(['user_id', 'u2'], ['anonymous_id', 'shared-device']));
    expect(second.profileId).not.toBe(first.profileId);
    expect(second).toEqual(expect.objectContaining({ created: true, merged: [], dropped: ids(['anonymous_id', 'shared-device']) }));
    expect((await resolve(ids(['anonymous_id', 'shared-device']))).profileId).toBe(first.profileId);
  });

  it('respects per-type limits: a sixth email stays off the profile', async () => {
    const rules = { ...DEFAULT_IDENTITY_RULES, limits: { user_id: 1, email: 2 } };
    const p = await resolve(ids(['user_id', 'u9'], ['email', 'e1@x.co']), { rules });
    await resolve(ids(['user_id', 'u9'], ['email', 'e2@x.co']), { rules });
    const third = await resolve(ids(['user_id', 'u9'], ['email', 'e3@x.co']), { rules });
    expect(third).toEqual(expect.objectContaining({ profileId: p.profileId, added: [], dropped: ids(['email', 'e3@x.co']) }));
  });

  it('answers a redelivered event exactly as the first time (restart mid-stream)', async () => {
    await resolve(ids(['anonymous_id', 'x1']));
    const first = await resolve(ids(['user_id', 'ux'], ['anonymous_id', 'x1']), { messageId: 'replayed' });
    const again = await resolve(ids(['user_id', 'ux'], ['anonymous_id', 'x1']), { messageId: 'replayed' });
    expect(again).toEqual(first);
    expect(first.added).toEqual(ids(['user_id', 'ux']));
  });

  it('never creates two live profiles for one id under concurrent writers', async () => {
    const second = new IdentityRepository({ keyPrefix: prefix, resultTtlSeconds: 3600 }, { redis: otherRedis });
    // 60 events of one person from two replicas at once, each with a fresh anonymous id and the same email.
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => resolve(ids(['email', 'same@x.co'], ['anonymous_id', `dev-${i % 4}`]), { on: i % 2 ? second : repo })),
    );
    const survivors = new Set(results.map((r) => r.profileId));
    expect(survivors.size).toBe(1);
    const [profile] = [...survivors];
    for (const id of ['dev-0', 'dev-1', 'dev-2', 'dev-3']) expect((await resolve(ids(['anonymous_id', id]))).profileId).toBe(profile);
  });
});

describe('resolve step through Kafka', () => {
  let producer: Producer;
  afterAll(() => producer?.disconnect());

  it('resolves raw events to profile-keyed resolved events and announces merges', async () => {
    const infra = testInfrastructure();
    const log = silentLogger();
    const kafka = createKafka({ brokers: infra.kafkaBrokers, clientId: 'resolver-test' }, { log });
    const topics = topicRegistry(`${uniqueName('res')}.`, { partitions: 1 });
    await ensureTopics(kafka, [topics.eventsRaw, topics.eventsResolved, topics.identityChanges, { name: `${topics.eventsRaw.name}.dlq`, partitions: 1, config: {} }]);
    const codec = new SchemaCodec({ url: infra.schemaRegistryUrl });
    await codec.registerTopics([topics.eventsRaw, topics.eventsResolved, topics.identityChanges]);
    producer = createProducer(kafka);
    await producer.connect();

    const raw = (over: Partial<RawEvent>): RawEvent => ({
      message_id: `msg-${++msg}`, type: 'track', space_id: 'spa_k', source_id: 'src_1', user_id: null, anonymous_id: null, group_id: null, previous_id: null,
      event: 'Viewed', name: null, timestamp: 1_760_000_000_000 + msg, sent_at: null, received_at: 1_760_000_000_000, properties_json: '{}', traits_json: '{}',
      context_json: '{}', integrations_json: '{}', external_ids: [], ...over,
    });
    const events = [
      raw({ anonymous_id: 'anon-k' }),
      raw({ anonymous_id: 'anon-k2', traits_json: '{"email":"k@x.co"}', type: 'identify', event: null }),
      raw({ type: 'identify', event: null, user_id: 'uk', anonymous_id: 'anon-k', traits_json: '{"email":"k@x.co"}' }),
      raw({ user_id: 'null', anonymous_id: 'anonymous' }), // nothing usable: dead-lettered
    ];
    await producer.send({
      topic: topics.eventsRaw.name,
      messages: await Promise.all(events.map(async (e) => ({ key: e.user_id ?? e.anonymous_id, value: await codec.encode(valueSubject(topics.eventsRaw.name), e) }))),
    });

    const step = new ResolveStep(
      { resolvedTopic: topics.eventsResolved.name, identityTopic: topics.identityChanges.name },
      { repository: new IdentityRepository({ keyPrefix: prefix, resultTtlSeconds: 3600 }, { redis }), producer, codec, rulesFor: () => DEFAULT_IDENTITY_RULES },
    );
    const consumer = new BatchConsumer<RawEvent>(
      { groupId: uniqueName('resolver'), topics: [topics.eventsRaw.name], fromBeginning: true },
      { kafka, log, step: 'resolve', decode: (m) => codec.decode(m.value), handle: (ms) => step.handle(ms), deadLetters: new DeadLetterWriter({ topic: `${topics.eventsRaw.name}.dlq` }, { producer }) },
    );
    await consumer.start();

    const resolved: ResolvedEvent[] = [];
    const changes: IdentityChange[] = [];
    const dead: string[] = [];
    const reader = kafka.consumer({ groupId: uniqueName('reader') });
    await reader.connect();
    await reader.subscribe({ topics: [topics.eventsResolved.name, topics.identityChanges.name, `${topics.eventsRaw.name}.dlq`], fromBeginning: true });
    await reader.run({
      eachMessage: async ({ topic, message }) => {
        if (topic === topics.eventsResolved.name) resolved.push(await codec.decode<ResolvedEvent>(message.value));
        else if (topic === topics.identityChanges.name) changes.push(await codec.decode<IdentityChange>(message.value));
        else dead.push(String(message.headers?.['dlq-reason']));
      },
    });
    await waitFor(() => resolved.length === 3 && changes.length >= 1 && dead.length === 1, { timeoutMs: 60000, description: '3 resolved, a merge, a dead letter' });
    await Promise.all([consumer.stop(), reader.disconnect()]);

    // The identify carries the email (priority above anonymous_id): the email's
    // profile survives and the first anonymous profile merges into it.
    const byMessage = new Map(resolved.map((r) => [r.message_id, r]));
    const survivor = byMessage.get(events[2]!.message_id)!.profile_id;
    expect(byMessage.get(events[1]!.message_id)!.profile_id).toBe(survivor);
    const anonymous = byMessage.get(events[0]!.message_id)!.profile_id;
    expect(anonymous).not.toBe(survivor);
    expect(changes).toEqual([expect.objectContaining({ kind: 'merge', profile_id: survivor, merged_profile_ids: [anonymous] })]);
    expect(dead[0]).toMatch(/no usable identifier/);
  });
});
