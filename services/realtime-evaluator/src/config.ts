import { infrastructureConfig, port, positiveInt, z } from '@engage/config';

export const configSchema = z.object({
  ...infrastructureConfig,
  /** HTTP port of /metrics, /healthz, /readyz. */
  OPS_PORT: port(9102),
  /**
   * Messages per chunk: one load pipeline, one sendBatch and one atomic save each.
   * NOTE: large on purpose. A live stream fills chunks only with what has
   * arrived (small anyway); a backlog (catching up, a replay) fills them, and
   * a profile's events in one chunk share one save of its state: in the e2e
   * bench 2000 costs about half the CPU per event of 500 (bench/RESULTS.md).
   */
  EVALUATOR_CHUNK_SIZE: positiveInt(2000),
  /** Partitions handled at once by one replica: overlaps one chunk's Redis/Kafka round trips with another's work. */
  EVALUATOR_CONCURRENCY: positiveInt(6),
  /** Events kept per profile (the evaluation history bound). */
  EVALUATOR_MAX_EVENTS_PER_PROFILE: positiveInt(200),
  /**
   * Profiles whose hot state stays in memory after a save (0: none). A load
   * then asks Redis only whether the stored state is still the one this
   * process saved, and skips reading and parsing it; ~10-15 KB of heap each.
   */
  EVALUATOR_STATE_CACHE_PROFILES: z.coerce.number().int().min(0).default(10_000),
  /** Profile write locks expire after this long when their holder dies (ms); far above a chunk's processing time. */
  PROFILE_LOCK_TTL_MS: positiveInt(30_000),
  /** This service's own KAFKA_SESSION_TIMEOUT_MS (ms), when it should differ from the fleet's. */
  EVALUATOR_SESSION_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
});

export type Config = z.infer<typeof configSchema>;
