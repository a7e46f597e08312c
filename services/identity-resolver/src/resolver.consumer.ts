// The resolver's consumer: engage.events.raw in chunks -> ResolveStep ->
// engage.events.resolved / engage.identity.changes, bad messages to the DLQ.
// One factory for main.ts, the integration tests and the benchmark.
import type { CompiledIdentityRules } from '@engage/identity';
import { BatchConsumer, DeadLetterWriter, type Kafka, type Producer } from '@engage/kafka';
import type { Logger } from '@engage/logging';
import type { RedisClient } from '@engage/redis';
import type { RawEvent, SchemaCodec } from '@engage/schemas';
import { IdentityRepository } from './identity.repository';
import { KnownIds, type KnownIdsConfig } from './known-ids';
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
  /** The partitions' chunks of one fetch as one chunk (BatchConsumerConfig.coalescePartitions); default false. */
  coalescePartitions?: boolean;
  /** Ids seen on one profile answered without the graph script (known-ids.ts); absent: every event asks the script. */
  knownIds?: KnownIdsConfig;
  sessionTimeoutMs?: number;
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
    {
      repository,
      producer: deps.producer,
      codec: deps.codec,
      rulesFor: deps.rulesFor,
      metrics: deps.metrics,
      knownIds: config.knownIds ? new KnownIds(config.knownIds) : undefined,
    },
  );
  return new BatchConsumer<RawEvent>(
    {
      groupId: config.groupId,
      topics: [config.rawTopic],
      fromBeginning: true,
      chunkSize: config.chunkSize,
      partitionsConsumedConcurrently: config.concurrency,
      coalescePartitions: config.coalescePartitions,
      sessionTimeoutMs: config.sessionTimeoutMs,
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
