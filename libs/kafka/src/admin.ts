import type { Kafka } from 'kafkajs';
import type { Logger } from '@engage/logging';
import type { TopicSpec } from './topics';

/** A topic to create when missing; one copy unless told (tests, bare DLQ names). */
export type TopicToEnsure = Pick<TopicSpec, 'name' | 'partitions' | 'config'> & Partial<Pick<TopicSpec, 'replicationFactor'>>;

/** What the cluster already holds of a topic we ensure. */
export interface ExistingTopic {
  name: string;
  partitions: number;
  /** The fewest copies any of its partitions has. */
  replicationFactor: number;
}

export interface TopicPlan {
  create: TopicToEnsure[];
  /** Existing topics with fewer partitions than configured, grown only when allowed (see refused). */
  grow: Array<{ name: string; from: number; to: number }>;
  /** The same, when growth is not allowed: the start fails naming them. */
  refused: Array<{ name: string; has: number; wanted: number }>;
  /** Reported, left alone: more partitions than configured is only a higher ceiling. */
  morePartitions: Array<{ name: string; has: number; wanted: number }>;
  /** Reported, left alone: adding copies to a live topic is a partition reassignment (deploy/README.md). */
  fewerReplicas: Array<{ name: string; has: number; wanted: number }>;
}

/**
 * What ensureTopics does with `wanted` given what exists. Pure.
 * TRICKY: growing a profile-keyed topic moves keys to other partitions (murmur2
 * modulo the count): a profile's records written after the growth can be read
 * before its records still waiting in the old partition, so order per profile
 * breaks until every consumer has drained the old records. Hence refused
 * unless the operator says it is safe (TOPIC_PARTITIONS_ALLOW_GROWTH,
 * deploy/README.md "Growing partitions").
 */
export function planTopics(wanted: TopicToEnsure[], existing: ExistingTopic[], opts: { allowPartitionGrowth: boolean }): TopicPlan {
  const plan: TopicPlan = { create: [], grow: [], refused: [], morePartitions: [], fewerReplicas: [] };
  const byName = new Map(existing.map((t) => [t.name, t]));
  for (const topic of wanted) {
    const found = byName.get(topic.name);
    if (!found) {
      plan.create.push(topic);
      continue;
    }
    if (found.partitions < topic.partitions) {
      if (opts.allowPartitionGrowth) plan.grow.push({ name: topic.name, from: found.partitions, to: topic.partitions });
      else plan.refused.push({ name: topic.name, has: found.partitions, wanted: topic.partitions });
    } else if (found.partitions > topic.partitions) {
      plan.morePartitions.push({ name: topic.name, has: found.partitions, wanted: topic.partitions });
    }
    const replicationFactor = topic.replicationFactor ?? 1;
    if (found.replicationFactor < replicationFactor)
      plan.fewerReplicas.push({ name: topic.name, has: found.replicationFactor, wanted: replicationFactor });
  }
  return plan;
}

/** The start refuses: existing topics have fewer partitions than configured and growing them was not allowed. */
export class TopicPartitionsError extends Error {
  constructor(readonly refused: TopicPlan['refused']) {
    super(
      `topics have fewer partitions than configured: ${refused.map((r) => `${r.name} has ${r.has}, configured ${r.wanted}`).join('; ')}. ` +
        'Growing a live topic breaks per-profile order (records of a profile move to another partition while older ones wait in the old one). ' +
        'Configure the existing counts (TOPIC_PARTITIONS, TOPIC_PARTITIONS_OVERRIDES), or follow deploy/README.md "Growing partitions" ' +
        'and start once with TOPIC_PARTITIONS_ALLOW_GROWTH=true.',
    );
    this.name = 'TopicPartitionsError';
  }
}

export interface EnsureTopicsOptions {
  /** Grow existing topics with fewer partitions than configured instead of refusing to start (TOPIC_PARTITIONS_ALLOW_GROWTH). */
  allowPartitionGrowth?: boolean;
  /** Where mismatches left alone (more partitions, fewer copies) and growths are reported. */
  log?: Logger;
}

/**
 * Creates the topics that do not exist yet and waits for their leaders.
 * Existing topics with fewer partitions than asked are refused
 * (TopicPartitionsError) or grown (allowPartitionGrowth); other mismatches are
 * logged. Returns the plan it followed.
 * NOTE: KRaft does not auto-create fast enough for kafkajs' first metadata
 * request, so every service calls this at start.
 */
export async function ensureTopics(kafka: Kafka, topics: TopicToEnsure[], options: EnsureTopicsOptions = {}): Promise<TopicPlan> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const names = new Set(await admin.listTopics());
    const present = topics.filter((t) => names.has(t.name));
    const existing = await describeExisting(
      admin,
      present.map((t) => t.name),
      LEADER_WAIT_MS,
    );
    const plan = planTopics(topics, existing, { allowPartitionGrowth: options.allowPartitionGrowth ?? false });
    if (plan.refused.length > 0) throw new TopicPartitionsError(plan.refused);
    for (const t of plan.morePartitions) options.log?.info(t, 'topic_has_more_partitions_than_configured');
    for (const t of plan.fewerReplicas) options.log?.warn(t, 'topic_has_fewer_replicas_than_configured');
    if (plan.create.length > 0) await createMissing(admin, plan.create);
    if (plan.grow.length > 0) await grow(admin, plan.grow, options.log);
    const changed = [...plan.create, ...plan.grow.map((g) => ({ name: g.name, partitions: g.to }))];
    if (changed.length > 0) await waitForLeaders(admin, changed, LEADER_WAIT_MS);
    return plan;
  } finally {
    await admin.disconnect();
  }
}

async function createMissing(admin: ReturnType<Kafka['admin']>, missing: TopicToEnsure[]): Promise<void> {
  const needed = Math.max(...missing.map((t) => t.replicationFactor ?? 1));
  if (needed > 1) {
    // The broker's own refusal (INVALID_REPLICATION_FACTOR) names no setting: say which one.
    const { brokers } = await admin.describeCluster();
    if (brokers.length < needed)
      throw new Error(
        `TOPIC_REPLICATION_FACTOR is ${needed} but the cluster has ${brokers.length} broker(s): ` +
          `topics ${missing.map((t) => t.name).join(', ')} cannot be created`,
      );
  }
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((t) => ({
        topic: t.name,
        numPartitions: t.partitions,
        replicationFactor: t.replicationFactor ?? 1,
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
}

async function grow(admin: ReturnType<Kafka['admin']>, growth: TopicPlan['grow'], log: Logger | undefined): Promise<void> {
  for (const g of growth) log?.warn(g, 'topic_partitions_growing');
  try {
    await admin.createPartitions({ topicPartitions: growth.map((g) => ({ topic: g.name, count: g.to })) });
  } catch (err) {
    // Another replica starting with the same flag grew it first
    // (INVALID_PARTITIONS: "already has N partitions"): waitForLeaders checks the count.
    if (!hasErrorType(err, 'INVALID_PARTITIONS')) throw err;
  }
}

function hasErrorType(err: unknown, type: string): boolean {
  const e = err as { type?: string; errors?: Array<{ type?: string }>; cause?: { type?: string } };
  return [e.type, e.cause?.type, ...(e.errors ?? []).map((x) => x.type)].includes(type);
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
/**
 * Partition and replica counts of topics listed as existing.
 * TRICKY: a topic another service has just created is listed before its
 * metadata answers (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, or no
 * partitions yet): that is "not yet", not a failure, until the deadline.
 */
async function describeExisting(admin: ReturnType<Kafka['admin']>, names: string[], timeoutMs: number): Promise<ExistingTopic[]> {
  if (names.length === 0) return [];
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (let attempt = 0; ; attempt++) {
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: names });
      if (topics.every((m) => m.partitions.length > 0))
        return topics.map((m) => ({
          name: m.name,
          partitions: m.partitions.length,
          replicationFactor: Math.min(...m.partitions.map((p) => p.replicas.length)),
        }));
      last = new Error('some topics have no partitions yet');
    } catch (err) {
      if (!isCreationRace(err)) throw err;
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`topics ${names.join(', ')} could not be described after ${timeoutMs} ms: ${(last as Error)?.message ?? last}`);
    await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
  }
}

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
