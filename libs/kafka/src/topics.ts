// The one topic registry (DESIGN.md, "Topics"). Every service and test gets its
// names from here; `prefix` lets tests and parallel stacks share a cluster.
// Partitions and replication come from the layout (topic-layout.ts).
import { applyTopicLayout, durabilityConfig } from './topic-layout';

export type TopicKey =
  'config' | 'eventsInbound' | 'eventsRaw' | 'eventsResolved' | 'identityChanges' | 'computationsChanges' | 'dispatchDlq';

export interface TopicSpec {
  key: TopicKey;
  name: string;
  partitions: number;
  /** Copies of each partition (TOPIC_REPLICATION_FACTOR); min.insync.replicas in `config` follows it. */
  replicationFactor: number;
  /** Set when the partition count is part of the design: why it may not be overridden. */
  fixedPartitions?: string;
  /** Broker-side topic config (cleanup policy, retention). */
  config: Record<string, string>;
  /** The Avro record (schemas/*.avsc) of the values; null when they are not Avro (the DLQ keeps original bytes; inbound is JSON). */
  valueRecord: string | null;
  /** What the record key is, for readers of this file. */
  keyedBy: string;
}

export interface TopicLayout {
  /** Partitions of the data topics (TOPIC_PARTITIONS, default 6); the compacted config topic always has one (total order). */
  partitions?: number;
  /** Copies of every partition (TOPIC_REPLICATION_FACTOR, default 1: a single development broker). */
  replicationFactor?: number;
  /**
   * Partitions per topic, by name without prefix and `engage.` (e.g. `events.raw`),
   * over `partitions` (TOPIC_PARTITIONS_OVERRIDES). An unknown name, or a topic
   * whose count is fixed, is refused: topicRegistry throws TopicLayoutError.
   */
  partitionOverrides?: Record<string, number>;
  /** Retention of engage.events.resolved (ms, -1: unbounded, the default): how far back backfills can replay. */
  eventsResolvedRetentionMs?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export function topicRegistry(prefix = '', layout: TopicLayout = {}): Record<TopicKey, TopicSpec> {
  const partitions = layout.partitions ?? 6;
  const name = (suffix: string) => `${prefix}engage.${suffix}`;
  const specs: Record<TopicKey, Omit<TopicSpec, 'replicationFactor'>> = {
    config: {
      key: 'config',
      name: name('config'),
      // NOTE: one partition so every service sees config changes in write order.
      partitions: 1,
      fixedPartitions: 'every service must see config changes in write order (one partition)',
      config: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '60000' },
      valueRecord: 'ConfigRecord',
      keyedBy: '<kind>:<id>',
    },
    eventsInbound: {
      key: 'eventsInbound',
      name: name('events.inbound'),
      partitions,
      // Segment JSON written by producers that do not use HTTP; the ingest
      // validates it like a request body and writes engage.events.raw.
      // NOTE: LogAppendTime: a record's timestamp is the broker's append time,
      // the event's receive time (received_at), the same on every redelivery.
      config: { 'retention.ms': String(7 * DAY_MS), 'message.timestamp.type': 'LogAppendTime' },
      valueRecord: null,
      keyedBy: 'userId, else anonymousId (per-person order); the write key in the engage-write-key header',
    },
    eventsRaw: {
      key: 'eventsRaw',
      name: name('events.raw'),
      partitions,
      config: { 'retention.ms': String(7 * DAY_MS) },
      valueRecord: 'RawEvent',
      keyedBy: "the sender's identity (userId, else anonymousId)",
    },
    eventsResolved: {
      key: 'eventsResolved',
      name: name('events.resolved'),
      partitions,
      // Long retention: this is the history backfills replay (from its start).
      // Unbounded by default; the batch scheduler applies
      // EVENTS_RESOLVED_RETENTION_MS to the topic when it starts.
      config: { 'retention.ms': String(layout.eventsResolvedRetentionMs ?? -1) },
      valueRecord: 'ResolvedEvent',
      keyedBy: 'profile_id',
    },
    identityChanges: {
      key: 'identityChanges',
      name: name('identity.changes'),
      partitions,
      config: { 'retention.ms': String(30 * DAY_MS) },
      valueRecord: 'IdentityChange',
      keyedBy: 'profile_id',
    },
    computationsChanges: {
      key: 'computationsChanges',
      name: name('computations.changes'),
      partitions,
      config: { 'retention.ms': String(30 * DAY_MS) },
      valueRecord: 'ComputationChange',
      keyedBy: 'profile_id',
    },
    dispatchDlq: {
      key: 'dispatchDlq',
      name: name('dispatch.dlq'),
      partitions: 1,
      config: { 'retention.ms': String(30 * DAY_MS) },
      valueRecord: null,
      keyedBy: 'the original key',
    },
  };
  return applyTopicLayout(specs, { prefix: name(''), ...layout });
}

/**
 * Dead letters of a consuming step, next to its input (`<input>.dlq`), original
 * bytes kept. The dispatcher's is the registry's `dispatchDlq` (DESIGN.md).
 */
export function deadLetterTopicFor(
  inputTopic: string | Pick<TopicSpec, 'name' | 'replicationFactor'>,
): Pick<TopicSpec, 'name' | 'partitions' | 'config' | 'replicationFactor'> {
  // Given the input's spec, the DLQ is as durable as its input; given a bare
  // name (tests), one copy, as before the replication factor was configurable.
  const input = typeof inputTopic === 'string' ? { name: inputTopic, replicationFactor: 1 } : inputTopic;
  return {
    name: `${input.name}.dlq`,
    partitions: 1,
    replicationFactor: input.replicationFactor,
    config: { 'retention.ms': String(30 * DAY_MS), ...durabilityConfig(input.replicationFactor) },
  };
}
