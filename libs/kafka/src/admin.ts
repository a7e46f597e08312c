import type { Kafka } from 'kafkajs';
import type { TopicSpec } from './topics';

/**
 * Creates the topics that do not exist yet and waits for their leaders.
 * NOTE: KRaft does not auto-create fast enough for kafkajs' first metadata
 * request, so every service calls this at start.
 */
export async function ensureTopics(kafka: Kafka, topics: Array<Pick<TopicSpec, 'name' | 'partitions' | 'config'>>): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.name));
    if (missing.length === 0) return;
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((t) => ({
          topic: t.name,
          numPartitions: t.partitions,
          replicationFactor: 1,
          configEntries: Object.entries(t.config).map(([name, value]) => ({ name, value })),
        })),
      });
    } catch (err) {
      // Services start together and race to create the same topics: losing
      // that race is fine as long as every topic exists afterwards.
      const now = new Set(await admin.listTopics());
      if (!missing.every((t) => now.has(t.name))) throw err;
    }
    await admin.fetchTopicMetadata({ topics: missing.map((t) => t.name) });
  } finally {
    await admin.disconnect();
  }
}
