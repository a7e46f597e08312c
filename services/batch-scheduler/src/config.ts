import { infrastructureConfig, port, positiveInt, z } from '@engage/config';

export const configSchema = z.object({
  ...infrastructureConfig,
  /** HTTP port of /metrics, /healthz, /readyz. */
  OPS_PORT: port(9103),
  /** How often due wake-ups are looked for (ms). */
  SCHEDULER_TICK_MS: positiveInt(1000),
  /** Profiles claimed per tick. */
  SCHEDULER_BATCH_SIZE: positiveInt(500),
  /** How often window expiry looks for due wake-ups (ms): the floor of an exit's lateness. */
  SCHEDULER_EXPIRY_POLL_MS: positiveInt(100),
  /**
   * Wake-ups due within this many ms are claimed and evaluated ahead (at their
   * instant), so only the commit is left when it comes (ms; 0: none). Must stay
   * well under SCHEDULER_LEASE_MS.
   */
  SCHEDULER_EXPIRY_LOOKAHEAD_MS: z.coerce.number().int().min(0).default(5000),
  /** A claimed wake-up comes back after this long if its replica dies (ms). */
  SCHEDULER_LEASE_MS: positiveInt(60_000),
  /** Batch computations are recomputed this often (ms); default 8 hours. */
  BATCH_INTERVAL_MS: positiveInt(8 * 3600 * 1000),
  /** Events kept per profile (must match the evaluator's). */
  EVALUATOR_MAX_EVENTS_PER_PROFILE: positiveInt(200),
  /**
   * A backfill with historical data starts this long (ms) after the definition
   * changed, so events stamped (resolved) before the change have reached
   * engage.events.resolved when the replay reads its end offsets; 5 s default.
   */
  BACKFILL_CUT_GRACE_MS: z.coerce.number().int().min(0).default(5000),
  /**
   * Retention of engage.events.resolved (ms) that the scheduler sets on the
   * topic at start: the history backfills replay. -1 (default): unbounded;
   * empty: leave the topic's setting alone.
   */
  EVENTS_RESOLVED_RETENTION_MS: z.string().default('-1'),
  /** Test hook, empty in production: a backfill waits between its replay and its writes while this Redis key exists. */
  BACKFILL_TEST_HOLD_KEY: z.string().default(''),
  /** How often journeys' wait timers are looked for (ms): the floor of a wait's lateness. */
  JOURNEY_POLL_MS: positiveInt(250),
  /** Journey timers claimed per journey per poll. */
  JOURNEY_BATCH_SIZE: positiveInt(500),
  /**
   * Audience sizes are recorded for the console's chart once per this many ms
   * (the recent points' spacing; kept 2 days, then hourly points 90 days);
   * default 1 minute.
   */
  SIZE_HISTORY_INTERVAL_MS: z.coerce.number().int().min(1000).max(3_600_000).default(60_000),
  /** Profile write locks expire after this long when their holder dies (ms); far above a chunk's processing time. */
  PROFILE_LOCK_TTL_MS: positiveInt(30_000),
});

export type Config = z.infer<typeof configSchema>;
