// Segment HTTP tracking API and engage.events.inbound -> engage.events.raw
// The only place that reads process.env: parse config, wire, run.
import { randomUUID } from 'node:crypto';
import { parseConfig } from '@engage/config';
import { ConfigStore } from '@engage/config-store';
import { deadLetterTopicFor, ensureTopics } from '@engage/kafka';
import { createRuntime } from '@engage/service';
import { Counter, Gauge, Histogram } from 'prom-client';
import { configSchema } from './config';
import { DedupeRepository } from './dedupe.repository';
import { EventPublisher } from './events.publisher';
import { createInboundConsumer, inboundTimestampType } from './inbound.consumer';
import { RateLimitRepository } from './rate-limit.repository';
import { SourceRateLimiter } from './rate-limiter';
import { TrackingServer } from './tracking.http';

const config = parseConfig(configSchema, process.env);
const runtime = createRuntime('ingest', config);
const { kafka, codec, producer, redis, log, topics, metrics: registers } = runtime;

const metrics = {
  requests: new Counter({
    name: 'ingest_requests_total',
    help: 'Tracking API requests by route and status',
    labelNames: ['route', 'status'] as const,
    registers: [registers],
  }),
  requestSeconds: new Histogram({
    name: 'ingest_request_duration_seconds',
    help: 'Tracking API request duration (to the broker ack)',
    labelNames: ['route'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registers],
  }),
  events: new Counter({
    name: 'ingest_events_total',
    help: 'Events by outcome (accepted, duplicate, in_flight: still written elsewhere at the deadline, failed, queue_full: refused, 503)',
    labelNames: ['outcome'] as const,
    registers: [registers],
  }),
  flushSize: new Histogram({
    name: 'ingest_flush_events',
    help: 'Events per coalesced Kafka send',
    buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000],
    registers: [registers],
  }),
  flushSeconds: new Histogram({
    name: 'ingest_flush_duration_seconds',
    help: 'Dedupe claim + Kafka send of one flush',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registers],
  }),
  inboundRecords: new Counter({
    name: 'ingest_inbound_records_total',
    help: 'Records of engage.events.inbound by outcome (published: accepted or duplicate, dead_lettered)',
    labelNames: ['outcome'] as const,
    registers: [registers],
  }),
  waiting: new Gauge({
    name: 'ingest_events_waiting',
    help: 'Events waiting for another request writing the same messageId',
    registers: [registers],
  }),
};

const store = new ConfigStore(
  { topic: topics.config.name, groupPrefix: 'ingest' },
  { kafka, codec, log: log.child({ component: 'config-store' }) },
);
const dedupe = new DedupeRepository(
  { keyPrefix: config.REDIS_KEY_PREFIX, ttlSeconds: config.INGEST_DEDUPE_TTL_SECONDS, pendingTtlMs: config.INGEST_DEDUPE_PENDING_TTL_MS },
  { redis },
);
const publisher = new EventPublisher(
  {
    topic: topics.eventsRaw.name,
    lingerMs: config.INGEST_LINGER_MS,
    maxFlushEvents: config.INGEST_MAX_FLUSH_EVENTS,
    maxConcurrentFlushes: config.INGEST_MAX_CONCURRENT_FLUSHES,
    inFlightWaitMs: config.INGEST_DEDUPE_WAIT_MS,
    inFlightPollMs: config.INGEST_DEDUPE_POLL_MS,
    maxQueuedEvents: config.INGEST_MAX_QUEUED_EVENTS,
    maxQueuedBytes: config.INGEST_MAX_QUEUED_BYTES,
  },
  { producer, codec, dedupe, log: log.child({ component: 'publisher' }), metrics },
);
const limiter = new SourceRateLimiter(
  { leaseMs: config.INGEST_RATE_LIMIT_LEASE_MS, redisTimeoutMs: config.INGEST_RATE_LIMIT_REDIS_TIMEOUT_MS },
  { bucket: new RateLimitRepository({ keyPrefix: config.REDIS_KEY_PREFIX }, { redis }), log: log.child({ component: 'rate-limiter' }) },
);
const server = new TrackingServer(
  {
    port: config.INGEST_PORT,
    host: config.HTTP_HOST,
    rateLimit: { requestsPerSecond: config.INGEST_RATE_LIMIT_PER_SECOND, burst: config.INGEST_RATE_LIMIT_BURST },
    shutdownGraceMs: config.INGEST_SHUTDOWN_GRACE_MS,
  },
  {
    sources: store,
    limiter,
    publisher,
    ops: runtime.ops,
    log: log.child({ component: 'http' }),
    newMessageId: randomUUID,
    metrics,
  },
);

const inboundDlq = deadLetterTopicFor(topics.eventsInbound);
const inbound = createInboundConsumer(
  {
    groupId: `${config.TOPIC_PREFIX}ingest-inbound`,
    topic: topics.eventsInbound.name,
    dlqTopic: inboundDlq.name,
    chunkSize: config.INGEST_INBOUND_CHUNK_SIZE,
    concurrency: config.INGEST_INBOUND_CONCURRENCY,
    sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
    commitIntervalMs: config.KAFKA_COMMIT_INTERVAL_MS,
    unknownWriteKeyGraceMs: config.INGEST_INBOUND_UNKNOWN_KEY_GRACE_MS,
  },
  {
    kafka,
    producer,
    sources: store,
    publisher,
    log: log.child({ component: 'inbound-consumer' }),
    metrics: { records: metrics.inboundRecords },
  },
);

runtime.service.add(
  ...runtime.infrastructure,
  { name: 'inbound-dlq-topic', start: () => ensureTopics(kafka, [inboundDlq]), stop: async () => {} },
  // Before anything reads write keys: every source known at start is loaded.
  { name: 'config-store', start: () => store.start(), stop: () => store.stop() },
  // Stops after HTTP and the inbound consumer: what they handed it is written first.
  { name: 'publisher', start: () => publisher.start(), stop: () => publisher.drain() },
  ...(config.INGEST_INBOUND_ENABLED
    ? [
        {
          name: 'inbound-consumer',
          start: async () => {
            const type = await inboundTimestampType(kafka, topics.eventsInbound.name);
            if (type !== 'LogAppendTime')
              log.warn(
                { topic: topics.eventsInbound.name, type, effect: "receive times are the producers' clocks" },
                'inbound_topic_not_log_append_time',
              );
            await inbound.start();
          },
          stop: () => inbound.stop(),
          healthcheck: () => inbound.healthcheck(),
        },
      ]
    : []),
  { name: 'tracking-http', start: async () => log.info({ port: await server.start() }, 'http_listening'), stop: () => server.stop() },
);
void runtime.service.run();
