// The resolver's consumer: engage.events.raw in chunks -> ResolveStep ->
// engage.events.resolved / engage.identity.changes, bad messages to the DLQ.
// One factory for main.ts, the integration tests and the benchmark.
import type { CompiledIdentityRules } from '@engage/identity';
import { BatchConsumer, DeadLetterWriter, type Kafka, type Producer } from '@engage/kafka';
import type { Logger } from '@engage/logging';
import type { RedisClient } from '@engage/redis';
import type { RawEvent, SchemaCodec } from '@engage/schemas';
import { IdentityRepository } from './identity.repository';
import { ResolveStep } from './resolve.step';
import type { ResolverMetrics } from './resolver.metrics';

export interface ResolverConsumerConfig {
  groupId: string;
  rawTopic: string;
  resolvedTopic: string;
  identityTopic: string;
  dlqTopic: string;
  /** Messages per chunk: one script call per space and one sendBatch each. */
  chunkSize: number;
  /** Partitions handled at once by this replica. */
  concurrency: number;
  sessionTimeoutMs?: number;
  /** BatchConsumerConfig.commitIntervalMs (KAFKA_COMMIT_INTERVAL_MS). */
  commitIntervalMs?: number;
  /** BatchConsumerConfig.coalescePartitions: the partitions' chunks of one fetch resolved as one (RESOLVER_COALESCE_PARTITIONS). */
  coalescePartitions?: boolean;
  keyPrefix: string;
  resultTtlSeconds: number;
}

export interface ResolverConsumerDeps {
  kafka: Kafka;
  producer: Producer;
  codec: SchemaCodec;
  redis: RedisClient;
  log: Logger;
  rulesFor: (spaceId: string) => CompiledIdentityRules;
  metrics?: ResolverMetrics;
  onChunk?: ConstructorParameters<typeof BatchConsumer<RawEvent>>[1]['onChunk'];
}

export function createResolverConsumer(config: ResolverConsumerConfig, deps: ResolverConsumerDeps): BatchConsumer<RawEvent> {
  const repository = new IdentityRepository(
    { keyPrefix: config.keyPrefix, resultTtlSeconds: config.resultTtlSeconds },
    { redis: deps.redis },
  );
  const step = new ResolveStep(
    { rawTopic: config.rawTopic, resolvedTopic: config.resolvedTopic, identityTopic: config.identityTopic },
    { repository, producer: deps.producer, codec: deps.codec, rulesFor: deps.rulesFor, metrics: deps.metrics },
  );
  return new BatchConsumer<RawEvent>(
    {
      groupId: config.groupId,
      topics: [config.rawTopic],
      fromBeginning: true,
      chunkSize: config.chunkSize,
      partitionsConsumedConcurrently: config.concurrency,
      // A combined chunk is resolved in receive order (ResolveStep.handle, receive-order.ts): the order in
      // which a person's events of two partitions are resolved decides between a merge and ids added.
      coalescePartitions: config.coalescePartitions,
      sessionTimeoutMs: config.sessionTimeoutMs,
      commitIntervalMs: config.commitIntervalMs,
    },
    {
      kafka: deps.kafka,
      log: deps.log,
      step: 'resolve',
      // Synchronous for RawEvent as this process registered it (the common case), the registry client otherwise.
      decode: (m) => deps.codec.decodeSyncWhenKnown<RawEvent>(m.value),
      handle: (messages) => step.handle(messages),
      deadLetters: new DeadLetterWriter({ topic: config.dlqTopic }, { producer: deps.producer }),
      onChunk: deps.onChunk,
    },
  );
}
