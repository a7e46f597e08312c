import { bool, infrastructureConfig, port, positiveInt, z } from '@engage/config';

export const configSchema = z
  .object({
    ...infrastructureConfig,
    /** HTTP port of the tracking API and of /metrics, /healthz, /readyz. */
    INGEST_PORT: port(8080),
    /** Default requests per second per source (a source's own rateLimit wins); 0 disables the limit. */
    INGEST_RATE_LIMIT_PER_SECOND: z.coerce.number().min(0).default(2000),
    /** Default burst (bucket size, requests) per source. */
    INGEST_RATE_LIMIT_BURST: positiveInt(4000),
    /** A replica's lease from the shared bucket, in ms of the source's rate (>= 1 token); the overshoot per replica. */
    INGEST_RATE_LIMIT_LEASE_MS: positiveInt(100),
    /** Longest wait for a lease from Redis before the limiter lets the request through (fail open), ms. */
    INGEST_RATE_LIMIT_REDIS_TIMEOUT_MS: positiveInt(100),
    /** How long a messageId is remembered per source, seconds (Segment: 24 h). */
    INGEST_DEDUPE_TTL_SECONDS: positiveInt(24 * 60 * 60),
    /** How long a claim of a messageId in flight holds before a crash's retry may go through, ms. */
    INGEST_DEDUPE_PENDING_TTL_MS: positiveInt(30_000),
    /** How long a duplicate waits for the other copy's claim to settle before a 503, ms; at most the pending TTL. */
    INGEST_DEDUPE_WAIT_MS: positiveInt(5_000),
    /** How often the claims such duplicates wait on are re-read, ms. */
    INGEST_DEDUPE_POLL_MS: positiveInt(25),
    /** Extra wait for concurrent requests to join a Kafka send, ms; 0 = the same event-loop turn only. */
    INGEST_LINGER_MS: z.coerce.number().int().min(0).default(0),
    /** Most events in one coalesced send (a request is never split). */
    INGEST_MAX_FLUSH_EVENTS: positiveInt(5000),
    /** On shutdown, how long requests in progress may take before their connections are cut, ms. */
    INGEST_SHUTDOWN_GRACE_MS: positiveInt(10_000),
    /** Coalesced sends in progress at once. */
    INGEST_MAX_CONCURRENT_FLUSHES: positiveInt(3),
    /** Most events a replica holds unanswered (queued, being sent, waiting) before it answers 503 with Retry-After. */
    INGEST_MAX_QUEUED_EVENTS: positiveInt(100_000),
    /** Most request-body bytes a replica holds unanswered before it answers 503 with Retry-After (default 64 MiB). */
    INGEST_MAX_QUEUED_BYTES: positiveInt(64 * 1024 * 1024),
    /** Consume engage.events.inbound (Segment JSON written to Kafka directly); false: this replica serves HTTP only. */
    INGEST_INBOUND_ENABLED: bool(true),
    /** Records of engage.events.inbound per chunk: one dedupe claim and one Kafka send each. */
    INGEST_INBOUND_CHUNK_SIZE: positiveInt(500),
    /** Partitions of engage.events.inbound one replica handles at once. */
    INGEST_INBOUND_CONCURRENCY: positiveInt(2),
    /** How long after its append a record with an unknown write key is looked up again before it is dead-lettered, ms (a source just created). */
    INGEST_INBOUND_UNKNOWN_KEY_GRACE_MS: z.coerce.number().int().min(0).default(2000),
  })
  // Past the pending TTL the claim waited on is gone anyway; waiting longer only delays the answer.
  .refine(
    (c) => c.INGEST_DEDUPE_WAIT_MS <= c.INGEST_DEDUPE_PENDING_TTL_MS,
    (c) => ({
      message: `${c.INGEST_DEDUPE_WAIT_MS} ms is longer than INGEST_DEDUPE_PENDING_TTL_MS (${c.INGEST_DEDUPE_PENDING_TTL_MS} ms)`,
      path: ['INGEST_DEDUPE_WAIT_MS'],
    }),
  );

export type Config = z.infer<typeof configSchema>;
