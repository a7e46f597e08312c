// ensureTopics as six services call it at once against the real broker
// (npm start): the losers of the creation race must not fail.
import { silentLogger } from '@engage/logging';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { ensureTopics } from './admin';
import { createKafka } from './client';

it('lets concurrent callers race to create the same topics; all see every partition led', async () => {
  const kafka = createKafka({ brokers: testInfrastructure().kafkaBrokers, clientId: 'admin-test' }, { log: silentLogger() });
  const prefix = uniqueName('race');
  const topics = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'].map((n) => ({ name: `${prefix}.${n}`, partitions: 6, config: {} }));
  // Six callers, each asking for every topic (as each service ensures the whole registry).
  const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => ensureTopics(kafka, topics)));
  expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok'))).toEqual(Array(6).fill('ok'));

  const admin = kafka.admin();
  await admin.connect();
  try {
    const meta = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.name) });
    expect(meta.topics.map((t) => [t.name, t.partitions.filter((p) => p.leader >= 0).length]).sort()).toEqual(
      topics.map((t) => [t.name, 6]),
    );
    await admin.deleteTopics({ topics: topics.map((t) => t.name) });
  } finally {
    await admin.disconnect();
  }
});
