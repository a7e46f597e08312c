// ChangeCommitter against the real broker, registry and Redis: every change
// record carries its profile's changeSeq (the initial sync's handover compares
// it with the state it read), and the state saved holds the same number.
import { compileComputation, parseQuery } from '@engage/engine';
import { createKafka, createProducer, ensureTopics, topicRegistry, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec, type ComputationChange } from '@engage/schemas';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import type { Kafka } from 'kafkajs';
import { CHANGE_SEQ_HEADER, ChangeCommitter } from './change-committer';
import { emptyProfile, ProfileStateRepository } from './profile-state.repository';

const log = silentLogger();
const topics = topicRegistry(`${uniqueName('commit')}.`);
let kafka: Kafka;
let producer: Producer;
let redis: RedisClient;
let codec: SchemaCodec;

beforeAll(async () => {
  kafka = createKafka({ brokers: testInfrastructure().kafkaBrokers, clientId: 'committer-test' }, { log });
  await ensureTopics(kafka, [topics.computationsChanges]);
  codec = new SchemaCodec({ url: testInfrastructure().schemaRegistryUrl });
  await codec.registerTopics([topics.computationsChanges]);
  producer = createProducer(kafka);
  await producer.connect();
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
afterAll(async () => {
  await producer.disconnect();
  redis.disconnect();
});

it("stamps each record with its profile's changeSeq after the commit, one step per commit, and saves it with the state", async () => {
  const profiles = new ProfileStateRepository({ keyPrefix: `${uniqueName('commit')}:` }, { redis });
  const committer = new ChangeCommitter({ changesTopic: topics.computationsChanges.name }, { producer, codec, profiles });
  const compile = (id: string, key: string, cls: 'audience' | 'trait', query: string) =>
    compileComputation(
      {
        id,
        key,
        class: cls,
        ast: parseQuery(query, { type: cls === 'trait' ? 'trait' : 'users' }),
        countsEventsFrom: 0,
        definitionVersion: 1,
      },
      new Set([key]),
    );
  const audience = compile('aud_1', 'buyers', 'audience', "event('Order Completed').count() >= 1");
  const trait = compile('trt_1', 'orders', 'trait', "event('Order Completed').count()");
  const a = { ...emptyProfile({ spaceId: 'spa_c', profileId: 'p-a' }), userId: 'ua' };
  const b = { ...emptyProfile({ spaceId: 'spa_c', profileId: 'p-b' }), userId: 'ub' };
  const change = (computation: typeof audience, value: boolean | number, previous: boolean | number | null) => ({
    computation,
    value,
    previous,
  });
  const ordered = [audience, trait];
  // Commit 1: two changes of p-a, one of p-b. Commit 2: p-a only.
  await committer.commit(
    [a, b].map((profile) => ({ profile, ordered })),
    [
      { profile: a, change: change(audience, true, false), reason: 'realtime', occurredAt: 1, cause: 'e1' },
      { profile: a, change: change(trait, 1, null), reason: 'realtime', occurredAt: 1, cause: 'e1' },
      { profile: b, change: change(trait, 1, null), reason: 'realtime', occurredAt: 1, cause: 'e2' },
    ],
  );
  await committer.commit(
    [{ profile: a, ordered }],
    [{ profile: a, change: change(trait, 2, 1), reason: 'realtime', occurredAt: 2, cause: 'e3' }],
  );

  const seen: Array<[string, unknown, string]> = [];
  const consumer = kafka.consumer({ groupId: uniqueName('reader') });
  await consumer.connect();
  await consumer.subscribe({ topic: topics.computationsChanges.name, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const record = (await codec.decode(message.value!)) as ComputationChange;
      seen.push([record.profile_id, record.value, String(message.headers?.[CHANGE_SEQ_HEADER])]);
    },
  });
  await waitFor(() => seen.length >= 4, { description: '4 change records' });
  await consumer.disconnect();
  expect(seen.filter(([p]) => p === 'p-a')).toEqual([
    ['p-a', true, '1'],
    ['p-a', 1, '1'],
    ['p-a', 2, '2'],
  ]);
  expect(seen.filter(([p]) => p === 'p-b')).toEqual([['p-b', 1, '1']]);
  const [storedA, storedB] = await profiles.load([
    { spaceId: 'spa_c', profileId: 'p-a' },
    { spaceId: 'spa_c', profileId: 'p-b' },
  ]);
  expect([storedA!.changeSeq, storedB!.changeSeq]).toEqual([2, 1]);
  // Members: the audience's are in it; the trait's have a value (its size).
  expect(await profiles.memberCount(audience.id)).toBe(1);
  expect((await redis.smembers(profiles.membersKey(trait.id))).sort()).toEqual(['p-a', 'p-b']);
  // A trait value that goes (null) leaves the set; a value that changes keeps it.
  await committer.commit(
    [{ profile: b, ordered }],
    [{ profile: b, change: { computation: trait, value: null, previous: 1 }, reason: 'realtime', occurredAt: 3, cause: 'e4' }],
  );
  expect(await redis.smembers(profiles.membersKey(trait.id))).toEqual(['p-a']);
});
