import { httpOverridesSetting } from '@engage/actions';
import { infrastructureConfig, port, positiveInt, z } from '@engage/config';

export const configSchema = z.object({
  ...infrastructureConfig,
  /** The destination this deployment delivers to (`*`: every destination, for local development). */
  DESTINATION_ID: z.string().min(1, 'DESTINATION_ID is required: one dispatcher deployment per destination'),
  /** HTTP port of /metrics, /healthz, /readyz. */
  OPS_PORT: port(9104),
  /** Changes per chunk. */
  DISPATCH_CHUNK_SIZE: positiveInt(200),
  /** Profiles delivered at once (each profile's calls stay in order). */
  DISPATCH_CONCURRENCY: positiveInt(16),
  /** How long a failing call is retried before it is dead-lettered (ms); default 4 hours. */
  DISPATCH_RETRY_WINDOW_MS: positiveInt(4 * 3600 * 1000),
  /** First retry delay (ms); doubles up to DISPATCH_MAX_BACKOFF_MS, with jitter. An answer with Retry-After is retried then instead (never sooner than this). */
  DISPATCH_INITIAL_BACKOFF_MS: positiveInt(500),
  DISPATCH_MAX_BACKOFF_MS: positiveInt(60_000),
  /** How often a destination's retry schedule is checked for due calls (ms). */
  DISPATCH_RETRY_POLL_MS: positiveInt(250),
  /** HTTP request timeout (ms). */
  DISPATCH_TIMEOUT_MS: positiveInt(10_000),
  /**
   * Rate limits hold in any window of 1 s + this margin (ms), measured when we
   * send: the margin absorbs jitter between our clock and the destination's arrivals.
   */
  DISPATCH_RATE_MARGIN_MS: positiveInt(40),
  /** How often list connections are checked for a due flush or "sync now" (ms). */
  DISPATCH_LIST_TICK_MS: positiveInt(1000),
  /** Vendor host -> local host:port over plain HTTP (CONTRACT.md section 8): tests and staging only; unset (none) in production. */
  DESTINATION_HTTP_OVERRIDES: httpOverridesSetting,
  /** How long a delivered messageId is remembered to skip redeliveries (seconds). */
  DISPATCH_DEDUPE_TTL_SECONDS: positiveInt(7 * 24 * 3600),
});

export type Config = z.infer<typeof configSchema>;
