// The topic settings as a deployed service meets them (libs/service runtime,
// libs/kafka ensureTopics): a built service, started as production starts it,
// against topics that already exist with fewer partitions than configured.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { createKafka, topicRegistry } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { startService, testInfrastructure, uniqueName } from '@engage/testing';
import type { Kafka } from 'kafkajs';

let kafka: Kafka;
let admin: ReturnType<Kafka['admin']>;
const created: string[] = [];

beforeAll(async () => {
  kafka = createKafka({ brokers: testInfrastructure().kafkaBrokers, clientId: 'topic-layout-test' }, { log: silentLogger() });
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  const existing = new Set(await admin.listTopics());
  const ours = created.filter((t) => existing.has(t));
  if (ours.length > 0) await admin.deleteTopics({ topics: ours });
  await admin.disconnect();
});

function serviceEnv(prefix: string, extra: Record<string, string>): Record<string, string> {
  const infra = testInfrastructure();
  return {
    KAFKA_BROKERS: infra.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl,
    REDIS_URL: infra.redisUrl,
    TOPIC_PREFIX: prefix,
    REDIS_KEY_PREFIX: `${uniqueName('layout')}:`,
    OPS_PORT: '0',
    ...extra,
  };
}

const partitionCounts = async (names: string[]) =>
  Object.fromEntries((await admin.fetchTopicMetadata({ topics: names })).topics.map((t) => [t.name, t.partitions.length]));

it('refuses to start on a topic with fewer partitions than configured, changing nothing, and grows it when allowed', async () => {
  const prefix = `${uniqueName('layout')}.`;
  const topics = topicRegistry(prefix);
  created.push(...Object.values(topics).map((t) => t.name), `${topics.eventsRaw.name}.dlq`);
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: topics.eventsRaw.name, numPartitions: 2, replicationFactor: 1 }] });

  const refused = startService('identity-resolver', serviceEnv(prefix, { TOPIC_PARTITIONS: '4' }));
  expect(await refused.exited).toBe(1);
  expect(refused.logs.find((l) => l.msg === 'start_failed')?.err).toMatchObject({
    type: 'TopicPartitionsError',
    message: expect.stringContaining(`${topics.eventsRaw.name} has 2, configured 4`),
  });
  // Refused before creating anything: the other topics of the registry are still missing.
  expect((await admin.listTopics()).filter((t) => t.startsWith(prefix))).toEqual([topics.eventsRaw.name]);

  const grown = startService('identity-resolver', serviceEnv(prefix, { TOPIC_PARTITIONS: '4', TOPIC_PARTITIONS_ALLOW_GROWTH: 'true' }));
  try {
    await grown.port();
    expect(grown.logs.filter((l) => l.msg === 'topic_partitions_growing').map((l) => [l.name, l.from, l.to])).toEqual([
      [topics.eventsRaw.name, 2, 4],
    ]);
    expect(await partitionCounts([topics.eventsRaw.name, topics.eventsResolved.name, topics.config.name])).toEqual({
      [topics.eventsRaw.name]: 4,
      [topics.eventsResolved.name]: 4,
      [topics.config.name]: 1,
    });
  } finally {
    expect(await grown.stop()).toBe(0);
  }
});

it('stops at start, naming the setting, on an override of a topic that does not exist', () => {
  const prefix = `${uniqueName('layout')}.`;
  const result = spawnSync(process.execPath, [path.join(__dirname, '../services/identity-resolver/dist/main.js')], {
    env: { ...process.env, ...serviceEnv(prefix, { TOPIC_PARTITIONS_OVERRIDES: 'events.rawz=12' }) },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(result.status).toBe(1);
  expect(result.stderr).toContain('invalid configuration:\n  TOPIC_PARTITIONS_OVERRIDES: no topic named events.rawz');
});
