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
      // that race (TOPIC_ALREADY_EXISTS), or asking for leaders before the new
      // topics' metadata has spread (UNKNOWN_TOPIC_OR_PARTITION), is fine as
      // long as every topic has its leaders in the end: waitForLeaders decides.
      if (!isCreationRace(err)) throw err;
    }
    await waitForLeaders(admin, missing, LEADER_WAIT_MS);
  } finally {
    await admin.disconnect();
  }
}

const RACE_ERRORS = new Set(['TOPIC_ALREADY_EXISTS', 'UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE']);

function isCreationRace(err: unknown): boolean {
  const e = err as { type?: string; errors?: Array<{ type?: string }>; cause?: { type?: string } };
  const types = [e.type, e.cause?.type, ...(e.errors ?? []).map((x) => x.type)].filter((t): t is string => t !== undefined);
  return types.length > 0 && types.every((t) => RACE_ERRORS.has(t) || t === 'KAFKAJS_AGGREGATE_ERROR');
}

/** How long a service waits at start for the leaders of topics it (or another service) just created. */
const LEADER_WAIT_MS = 60_000;

/**
 * Polls metadata until every partition of `topics` has a leader.
 * TRICKY: the loser of a creation race gets no waitForLeaders from its own
 * (failed) createTopics, and metadata asked too early answers
 * UNKNOWN_TOPIC_OR_PARTITION ("This server does not host this
 * topic-partition"): that is "not yet", not a failure, until the deadline.
 */
async function waitForLeaders(
  admin: ReturnType<Kafka['admin']>,
  topics: Array<Pick<TopicSpec, 'name' | 'partitions'>>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (let attempt = 0; ; attempt++) {
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.name) });
      const ready = topics.every((t) => {
        const m = meta.find((x) => x.name === t.name);
        return m !== undefined && m.partitions.length >= t.partitions && m.partitions.every((p) => p.leader >= 0);
      });
      if (ready) return;
      last = new Error('some partitions have no leader yet');
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `topics ${topics.map((t) => t.name).join(', ')} have no leaders after ${timeoutMs} ms: ${(last as Error)?.message ?? last}`,
      );
    await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
  }
}
