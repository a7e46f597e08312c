// engage.events.resolved + engage.identity.changes -> per-profile state in Redis -> engage.computations.changes.
// The only place that reads process.env: parse config, wire, run.
import { parseConfig } from '@engage/config';
import { ConfigStore } from '@engage/config-store';
import { BatchConsumer, DeadLetterWriter, deadLetterTopicFor, ensureTopics } from '@engage/kafka';
import { ChangeCommitter, ComputationsRegistry, ProfileStateRepository, WriteBehindProfiles } from '@engage/profile-store';
import type { IdentityChange, ResolvedEvent } from '@engage/schemas';
import { createRuntime, opsComponent } from '@engage/service';
import { Counter, Gauge } from 'prom-client';
import { configSchema } from './config';
import { AccountStep } from './account.step';
import { EvaluateStep } from './evaluate.step';
import { EvaluatorMetrics } from './evaluator.metrics';
import { IdentityStep } from './identity.step';

const config = parseConfig(configSchema, process.env);
const runtime = createRuntime('realtime-evaluator', config);
const { kafka, codec, producer, redis, log, topics, metrics } = runtime;

const store = new ConfigStore(
  { topic: topics.config.name, groupPrefix: 'realtime-evaluator' },
  { kafka, codec, log: log.child({ component: 'config-store' }) },
);
const registry = new ComputationsRegistry(
  { computeMode: 'realtime' },
  { store, onError: (err, id) => log.error({ err, computationId: id }, 'computation_unparsable') },
);
const profiles = new ProfileStateRepository(
  {
    keyPrefix: config.REDIS_KEY_PREFIX,
    lockTtlMs: config.PROFILE_LOCK_TTL_MS,
    maxEvents: config.EVALUATOR_MAX_EVENTS_PER_PROFILE,
    hotStateCacheSize: config.EVALUATOR_STATE_CACHE_PROFILES,
  },
  { redis },
);
// The hot-state cache, read when /metrics is scraped: a low hit ratio means it is smaller than the working set.
let counted = { hits: 0, misses: 0 };
new Counter({
  name: 'engage_evaluator_state_cache_lookups_total',
  help: 'Realtime profile loads by outcome: hit (the cached state was current) or miss (read and parsed from Redis)',
  labelNames: ['outcome'],
  registers: [metrics],
  collect() {
    const { hits, misses } = profiles.cacheStats();
    this.inc({ outcome: 'hit' }, hits - counted.hits);
    this.inc({ outcome: 'miss' }, misses - counted.misses);
    counted = { hits, misses };
  },
});
new Gauge({
  name: 'engage_evaluator_state_cache_profiles',
  help: 'Profiles whose hot state the evaluator keeps in memory',
  registers: [metrics],
  collect() {
    this.set(profiles.cacheStats().size);
  },
});
const committer = new ChangeCommitter({ changesTopic: topics.computationsChanges.name }, { producer, codec, profiles });
const stepConfig = { maxEventsPerProfile: config.EVALUATOR_MAX_EVENTS_PER_PROFILE };
const accounts = new AccountStep({ profiles, registry, committer });
const writeBehind =
  config.EVALUATOR_FLUSH_MS > 0
    ? new WriteBehindProfiles(
        { flushMs: config.EVALUATOR_FLUSH_MS, maxProfiles: config.EVALUATOR_FLUSH_MAX_PROFILES },
        { profiles, onError: (err) => log.warn({ err }, 'state_flush_failed') },
      )
    : undefined;
const evaluate = new EvaluateStep(stepConfig, { profiles, registry, committer, accounts, writeBehind });
const evaluatorMetrics = new EvaluatorMetrics({ registry: metrics });
const identity = new IdentityStep(stepConfig, { profiles, registry, committer, accounts });

const eventsDlq = deadLetterTopicFor(topics.eventsResolved);
const deadLetters = new DeadLetterWriter({ topic: eventsDlq.name }, { producer });
const consumerConfig = {
  fromBeginning: true,
  chunkSize: config.EVALUATOR_CHUNK_SIZE,
  partitionsConsumedConcurrently: config.EVALUATOR_CONCURRENCY,
  coalescePartitions: config.EVALUATOR_COALESCE_PARTITIONS,
  sessionTimeoutMs: config.EVALUATOR_SESSION_TIMEOUT_MS ?? config.KAFKA_SESSION_TIMEOUT_MS,
  commitIntervalMs: config.KAFKA_COMMIT_INTERVAL_MS,
};
const eventsConsumer = new BatchConsumer<ResolvedEvent>(
  { ...consumerConfig, groupId: `${config.TOPIC_PREFIX}realtime-evaluator`, topics: [topics.eventsResolved.name] },
  {
    kafka,
    log: log.child({ component: 'events-consumer' }),
    step: 'evaluate',
    deadLetters,
    decode: (m) => codec.decodeSyncWhenKnown(m.value),
    handle: evaluatorMetrics.timed((ms) => evaluate.handle(ms)),
    writeBehind,
  },
);
const identityConsumer = new BatchConsumer<IdentityChange>(
  { ...consumerConfig, groupId: `${config.TOPIC_PREFIX}realtime-evaluator-identity`, topics: [topics.identityChanges.name] },
  {
    kafka,
    log: log.child({ component: 'identity-consumer' }),
    step: 'merge',
    deadLetters,
    decode: (m) => codec.decode(m.value),
    handle: (ms) => identity.handle(ms),
  },
);

runtime.service.add(
  ...runtime.infrastructure,
  { name: 'dlq-topic', start: () => ensureTopics(kafka, [eventsDlq]), stop: async () => {} },
  { name: 'config-store', start: () => store.start(), stop: () => store.stop() },
  {
    name: 'events-consumer',
    start: () => eventsConsumer.start(),
    stop: async () => {
      await eventsConsumer.stop();
      writeBehind?.stop();
    },
    healthcheck: () => eventsConsumer.healthcheck(),
  },
  {
    name: 'identity-consumer',
    start: () => identityConsumer.start(),
    stop: () => identityConsumer.stop(),
    healthcheck: () => identityConsumer.healthcheck(),
  },
  opsComponent(runtime, { port: config.OPS_PORT, host: config.HTTP_HOST }),
);
void runtime.service.run();
