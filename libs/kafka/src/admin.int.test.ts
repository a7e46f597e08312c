// ensureTopics against the real broker: as six services call it at once
// (npm start), and with the configured layout meeting topics that exist.
import { silentLogger } from '@engage/logging';
import { testInfrastructure, uniqueName } from '@engage/testing';
import type { Kafka } from 'kafkajs';
import { ensureTopics, TopicPartitionsError } from './admin';
import { createKafka } from './client';
import { topicRegistry } from './topics';

let kafka: Kafka;
let admin: ReturnType<Kafka['admin']>;
const created: string[] = [];

beforeAll(async () => {
  kafka = createKafka({ brokers: testInfrastructure().kafkaBrokers, clientId: 'admin-test' }, { log: silentLogger() });
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  if (created.length > 0) await admin.deleteTopics({ topics: created });
  await admin.disconnect();
});

const partitionCounts = async (names: string[]) =>
  Object.fromEntries(
    (await admin.fetchTopicMetadata({ topics: names })).topics.map((t) => [t.name, t.partitions.filter((p) => p.leader >= 0).length]),
  );

it('lets concurrent callers race to create the same topics; all see every partition led', async () => {
  const prefix = uniqueName('race');
  const topics = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'].map((n) => ({ name: `${prefix}.${n}`, partitions: 6, config: {} }));
  created.push(...topics.map((t) => t.name));
  // Six callers, each asking for every topic (as each service ensures the whole registry).
  const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => ensureTopics(kafka, topics)));
  expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok'))).toEqual(Array(6).fill('ok'));
  expect(await partitionCounts(topics.map((t) => t.name))).toEqual(Object.fromEntries(topics.map((t) => [t.name, 6])));
});

it('creates the registry with the configured partitions, overrides and topic settings', async () => {
  const topics = topicRegistry(`${uniqueName('layout')}.`, { partitions: 3, partitionOverrides: { 'events.resolved': 5 } });
  const names = Object.values(topics).map((t) => t.name);
  created.push(...names);
  await ensureTopics(kafka, Object.values(topics));

  expect(await partitionCounts(names)).toEqual(Object.fromEntries(Object.values(topics).map((t) => [t.name, t.partitions])));
  expect([topics.eventsResolved.partitions, topics.eventsRaw.partitions, topics.config.partitions]).toEqual([5, 3, 1]);
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: 2 /* TOPIC */, name: topics.config.name, configNames: ['min.insync.replicas', 'cleanup.policy'] }],
  });
  expect(described.resources[0].configEntries.map((e) => [e.configName, e.configValue]).sort()).toEqual([
    ['cleanup.policy', 'compact'],
    ['min.insync.replicas', '1'],
  ]);
});

describe('a topic that exists with another partition count', () => {
  let name: string;
  beforeEach(async () => {
    name = `${uniqueName('existing')}.engage.events.raw`;
    created.push(name);
    await ensureTopics(kafka, [{ name, partitions: 2, config: {} }]);
  });

  it('refuses to grow it without the flag, naming the topic, and leaves it as it was', async () => {
    const attempt = ensureTopics(kafka, [{ name, partitions: 4, config: {} }]);
    await expect(attempt).rejects.toThrow(TopicPartitionsError);
    await expect(attempt).rejects.toThrow(`${name} has 2, configured 4`);
    expect(await partitionCounts([name])).toEqual({ [name]: 2 });
  });

  it('grows it with the flag, even when several callers grow it at once', async () => {
    const plans = await Promise.all(
      Array.from({ length: 3 }, () => ensureTopics(kafka, [{ name, partitions: 4, config: {} }], { allowPartitionGrowth: true })),
    );
    // A caller that read the topic after another one grew it finds nothing to grow: each either grew it or found
    // it grown, none failed, and at least one grew it.
    for (const p of plans) expect([[], [{ name, from: 2, to: 4 }]]).toContainEqual(p.grow);
    expect(plans.some((p) => p.grow.length === 1)).toBe(true);
    expect(await partitionCounts([name])).toEqual({ [name]: 4 });
  });

  it('leaves a topic with more partitions than configured alone and reports it', async () => {
    const plan = await ensureTopics(kafka, [{ name, partitions: 1, config: {} }]);
    expect([plan.create, plan.morePartitions]).toEqual([[], [{ name, has: 2, wanted: 1 }]]);
    expect(await partitionCounts([name])).toEqual({ [name]: 2 });
  });
});

it('names TOPIC_REPLICATION_FACTOR when the cluster has fewer brokers than copies asked', async () => {
  const { brokers } = await admin.describeCluster();
  const name = `${uniqueName('copies')}.engage.events.raw`;
  await expect(ensureTopics(kafka, [{ name, partitions: 1, replicationFactor: brokers.length + 1, config: {} }])).rejects.toThrow(
    `TOPIC_REPLICATION_FACTOR is ${brokers.length + 1} but the cluster has ${brokers.length} broker(s)`,
  );
  expect(await admin.listTopics()).not.toContain(name);
});
