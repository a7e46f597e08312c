// engage.computations.changes -> one destination (DESTINATION_ID), throttled, retried, dead-lettered.
// The only place that reads process.env: parse config, wire, run.
import { parseConfig } from '@engage/config';
import { ConfigStore } from '@engage/config-store';
import { BatchConsumer, DeadLetterWriter } from '@engage/kafka';
import { ProfileStateRepository } from '@engage/profile-store';
import type { ComputationChange, IdentityChange } from '@engage/schemas';
import { createRuntime, intervalJob, opsComponent } from '@engage/service';
import { listAdapters } from './adapters/list-adapters';
import { configSchema } from './config';
import { DeliveryStatus } from './delivery-status';
import { DeliveryService } from './delivery.service';
import { DispatchStep } from './dispatch.step';
import { ListBuffer } from './list-buffer';
import { RateLimiter } from './rate-limiter';
import { ResyncJob } from './resync.job';

const config = parseConfig(configSchema, process.env);
const runtime = createRuntime('dispatcher', config);
const { kafka, codec, producer, redis, log, topics, metrics } = runtime;
const keyPrefix = config.REDIS_KEY_PREFIX;
const destinationId = config.DESTINATION_ID;

const store = new ConfigStore(
  { topic: topics.config.name, groupPrefix: `dispatcher-${destinationId}` },
  { kafka, codec, log: log.child({ component: 'config-store' }) },
);
const status = new DeliveryStatus({ keyPrefix }, { redis, metrics });
const delivery = new DeliveryService(
  {
    retryWindowMs: config.DISPATCH_RETRY_WINDOW_MS,
    initialBackoffMs: config.DISPATCH_INITIAL_BACKOFF_MS,
    maxBackoffMs: config.DISPATCH_MAX_BACKOFF_MS,
    timeoutMs: config.DISPATCH_TIMEOUT_MS,
  },
  { limiter: new RateLimiter({ keyPrefix, marginMs: config.DISPATCH_RATE_MARGIN_MS }, { redis }), status },
);
const deadLetters = new DeadLetterWriter({ topic: topics.dispatchDlq.name }, { producer });
const lists = new ListBuffer(
  { keyPrefix, destinationId },
  { store, redis, adapters: listAdapters({ delivery }), status, deadLetters, log: log.child({ component: 'list-buffer' }) },
);
const step = new DispatchStep(
  { destinationId, keyPrefix, dedupeTtlSeconds: config.DISPATCH_DEDUPE_TTL_SECONDS, concurrency: config.DISPATCH_CONCURRENCY },
  {
    store,
    delivery,
    status,
    lists,
    redis,
    log: log.child({ component: 'dispatch' }),
    profiles: new ProfileStateRepository({ keyPrefix }, { redis }),
  },
);
const resync = new ResyncJob(
  { keyPrefix, destinationId },
  {
    store,
    profiles: new ProfileStateRepository({ keyPrefix }, { redis }),
    step,
    status,
    redis,
    deadLetters,
    log: log.child({ component: 'resync' }),
  },
);

// One consumer group per destination: a slow destination only lags its own group.
const group = `${config.TOPIC_PREFIX}dispatcher-${destinationId === '*' ? 'all' : destinationId}`;
const changesConsumer = new BatchConsumer<ComputationChange>(
  {
    groupId: group,
    topics: [topics.computationsChanges.name],
    fromBeginning: true,
    chunkSize: config.DISPATCH_CHUNK_SIZE,
    partitionsConsumedConcurrently: 2,
  },
  {
    kafka,
    log: log.child({ component: 'changes-consumer' }),
    step: 'deliver',
    deadLetters,
    decode: (m) => codec.decode(m.value),
    handle: (ms, ctx) => step.handle(ms, ctx),
  },
);
const identityConsumer = new BatchConsumer<IdentityChange>(
  { groupId: `${group}-identity`, topics: [topics.identityChanges.name], fromBeginning: false },
  {
    kafka,
    log: log.child({ component: 'identity-consumer' }),
    step: 'resync',
    deadLetters,
    decode: (m) => codec.decode(m.value),
    handle: (ms) => resync.handleIdentity(ms),
  },
);

runtime.service.add(
  ...runtime.infrastructure,
  { name: 'config-store', start: () => store.start(), stop: () => store.stop() },
  // Listed before the consumers so it stops after them (reverse order) and writes their last counts.
  { name: 'delivery-status', start: async () => undefined, stop: () => status.flush() },
  {
    name: 'changes-consumer',
    start: () => changesConsumer.start(),
    stop: () => changesConsumer.stop(),
    healthcheck: () => changesConsumer.healthcheck(),
  },
  {
    name: 'identity-consumer',
    start: () => identityConsumer.start(),
    stop: () => identityConsumer.stop(),
    healthcheck: () => identityConsumer.healthcheck(),
  },
  intervalJob('initial-sync-loop', 2000, () => resync.syncNewConnections(), { log }),
  intervalJob('list-flush-loop', config.DISPATCH_LIST_TICK_MS, () => lists.flushDue(), { log }),
  opsComponent(runtime, { port: config.OPS_PORT, host: config.HTTP_HOST }),
);
void runtime.service.run();
