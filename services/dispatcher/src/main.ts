// engage.computations.changes -> one destination (DESTINATION_ID), throttled, retried, dead-lettered;
// DESTINATION_ID=* serves every destination, each in its own pipeline and groups (destination-pipeline.ts).
// The only place that reads process.env: parse config, wire, run.
import { parseConfig } from '@engage/config';
import { ConfigStore } from '@engage/config-store';
import { DeadLetterWriter } from '@engage/kafka';
import { createRuntime, opsComponent, type Component } from '@engage/service';
import { ActionsRuntime } from './adapters/actions.runtime';
import { configSchema } from './config';
import { DeliveryStatus } from './delivery-status';
import { DeliveryService } from './delivery.service';
import { AllDestinations, DestinationPipeline } from './destination-pipeline';
import { RateLimiter } from './rate-limiter';

const config = parseConfig(configSchema, process.env);
const runtime = createRuntime('dispatcher', config);
const { kafka, codec, producer, redis, log, topics, metrics } = runtime;
const keyPrefix = config.REDIS_KEY_PREFIX;
const destinationId = config.DESTINATION_ID;

const store = new ConfigStore(
  { topic: topics.config.name, groupPrefix: `dispatcher-${destinationId}`, destinationSecrets: 'keep' },
  { kafka, codec, log: log.child({ component: 'config-store' }) },
);
const status = new DeliveryStatus({ keyPrefix }, { redis, metrics });
const actions = new ActionsRuntime({ overrides: config.DESTINATION_HTTP_OVERRIDES });
const delivery = new DeliveryService(
  {
    retryWindowMs: config.DISPATCH_RETRY_WINDOW_MS,
    initialBackoffMs: config.DISPATCH_INITIAL_BACKOFF_MS,
    maxBackoffMs: config.DISPATCH_MAX_BACKOFF_MS,
    timeoutMs: config.DISPATCH_TIMEOUT_MS,
  },
  { limiter: new RateLimiter({ keyPrefix, marginMs: config.DISPATCH_RATE_MARGIN_MS }, { redis }), status, actions },
);
const deadLetters = new DeadLetterWriter({ topic: topics.dispatchDlq.name }, { producer });

const pipelineOf = (id: string) =>
  new DestinationPipeline(
    {
      destinationId: id,
      topicPrefix: config.TOPIC_PREFIX,
      keyPrefix,
      changesTopic: topics.computationsChanges.name,
      chunkSize: config.DISPATCH_CHUNK_SIZE,
      sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
      commitIntervalMs: config.KAFKA_COMMIT_INTERVAL_MS,
      dedupeTtlSeconds: config.DISPATCH_DEDUPE_TTL_SECONDS,
      concurrency: config.DISPATCH_CONCURRENCY,
      initialSyncEveryMs: 2000,
      retryPollMs: config.DISPATCH_RETRY_POLL_MS,
      retryLeaseMs: config.DISPATCH_TIMEOUT_MS + 50_000,
      listTickMs: config.DISPATCH_LIST_TICK_MS,
    },
    { kafka, codec, redis, store, delivery, status, deadLetters, log },
  );
// DESTINATION_ID=* (local development): every destination of the configuration, each under its own groups.
const destinations: Component =
  destinationId === '*'
    ? new AllDestinations({ store, create: pipelineOf, log: log.child({ component: 'all-destinations' }) })
    : pipelineOf(destinationId);

runtime.service.add(
  ...runtime.infrastructure,
  { name: 'config-store', start: () => store.start(), stop: () => store.stop() },
  // Listed before the consumers so it stops after them (reverse order) and writes their last counts.
  { name: 'delivery-status', start: async () => undefined, stop: () => status.flush() },
  { name: 'actions-runtime', start: async () => undefined, stop: async () => actions.close() },
  destinations,
  opsComponent(runtime, { port: config.OPS_PORT, host: config.HTTP_HOST }),
);
void runtime.service.run();
