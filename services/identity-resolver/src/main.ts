// engage.events.raw -> identity graph in Redis -> engage.events.resolved, engage.identity.changes.
// The only place that reads process.env: parse config, wire, run.
import { parseConfig } from '@engage/config';
import { ConfigStore } from '@engage/config-store';
import { deadLetterTopicFor, ensureTopics } from '@engage/kafka';
import { createRuntime, opsComponent } from '@engage/service';
import { configSchema } from './config';
import { createResolverConsumer } from './resolver.consumer';
import { ResolverMetrics } from './resolver.metrics';
import { SpaceRules } from './space-rules';

const config = parseConfig(configSchema, process.env);
const runtime = createRuntime('identity-resolver', config);
const { kafka, codec, producer, redis, log, topics, metrics } = runtime;

const store = new ConfigStore(
  { topic: topics.config.name, groupPrefix: 'identity-resolver' },
  { kafka, codec, log: log.child({ component: 'config-store' }) },
);
const spaceRules = new SpaceRules({ store, log: log.child({ component: 'space-rules' }) });
const dlqTopic = deadLetterTopicFor(topics.eventsRaw);
const consumer = createResolverConsumer(
  {
    groupId: `${config.TOPIC_PREFIX}identity-resolver`,
    rawTopic: topics.eventsRaw.name,
    resolvedTopic: topics.eventsResolved.name,
    identityTopic: topics.identityChanges.name,
    dlqTopic: dlqTopic.name,
    chunkSize: config.RESOLVER_CHUNK_SIZE,
    concurrency: config.RESOLVER_CONCURRENCY,
    coalescePartitions: config.RESOLVER_COALESCE_PARTITIONS,
    sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
    commitIntervalMs: config.KAFKA_COMMIT_INTERVAL_MS,
    keyPrefix: config.REDIS_KEY_PREFIX,
    resultTtlSeconds: config.RESOLVER_RESULT_TTL_SECONDS,
  },
  {
    kafka,
    producer,
    codec,
    redis,
    log: log.child({ component: 'events-consumer' }),
    rulesFor: (spaceId) => spaceRules.for(spaceId),
    metrics: new ResolverMetrics({ registry: metrics }),
  },
);

runtime.service.add(
  ...runtime.infrastructure,
  { name: 'dlq-topic', start: () => ensureTopics(kafka, [dlqTopic]), stop: async () => {} },
  { name: 'config-store', start: () => store.start(), stop: () => store.stop() },
  { name: 'events-consumer', start: () => consumer.start(), stop: () => consumer.stop(), healthcheck: () => consumer.healthcheck() },
  opsComponent(runtime, { port: config.OPS_PORT, host: config.HTTP_HOST }),
);
void runtime.service.run();
