import { infrastructureConfig, port, positiveInt, z } from '@engage/config';

export const configSchema = z.object({
  ...infrastructureConfig,
  /** HTTP port of the tracking API and of /metrics, /healthz, /readyz. */
  INGEST_PORT: port(8080),
  /** Default requests per second per source (a source's own rateLimit wins); 0 disables the limit. */
  INGEST_RATE_LIMIT_PER_SECOND: z.coerce.number().min(0).default(2000),
  /** Default burst (bucket size, requests) per source. */
  INGEST_RATE_LIMIT_BURST: positiveInt(4000),
  /** How long a messageId is remembered per source, seconds (Segment: 24 h). */
  INGEST_DEDUPE_TTL_SECONDS: positiveInt(24 * 60 * 60),
  /** How long a claim of a messageId in flight holds before a crash's retry may go through, ms. */
  INGEST_DEDUPE_PENDING_TTL_MS: positiveInt(30_000),
  /** Extra wait for concurrent requests to join a Kafka send, ms; 0 = the same event-loop turn only. */
  INGEST_LINGER_MS: z.coerce.number().int().min(0).default(0),
  /** Most events in one coalesced send (a request is never split). */
  INGEST_MAX_FLUSH_EVENTS: positiveInt(5000),
  /** On shutdown, how long requests in progress may take before their connections are cut, ms. */
  INGEST_SHUTDOWN_GRACE_MS: positiveInt(10_000),
  /** Coalesced sends in progress at once. */
  INGEST_MAX_CONCURRENT_FLUSHES: positiveInt(3),
});

export type Config = z.infer<typeof configSchema>;
