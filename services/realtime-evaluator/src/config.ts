import { bool, infrastructureConfig, port, positiveInt, z } from '@engage/config';

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
  /**
   * The partitions' chunks of one fetch evaluated as one chunk (up to
   * EVALUATOR_CHUNK_SIZE): under a live stream each partition brings a few
   * events, and every chunk pays its locks, load, produce and save once
   * (libs/kafka chunk-coalescer.ts). false: each partition's chunk alone.
   */
  EVALUATOR_COALESCE_PARTITIONS: bool(true),
  /** Events kept per profile (the evaluation history bound). */
  EVALUATOR_MAX_EVENTS_PER_PROFILE: positiveInt(200),
  /**
   * Profiles whose hot state stays in memory after a save (0: none). A load
   * then asks Redis only whether the stored state is still the one this
   * process saved, and skips reading and parsing it; ~10-15 KB of heap each.
   */
  EVALUATOR_STATE_CACHE_PROFILES: z.coerce.number().int().min(0).default(10_000),
  /**
   * Write-behind (libs/profile-store write-behind.ts): the profiles evaluated
   * are kept in memory under their locks and saved together at most this long
   * (ms) after their changes went out, so a profile with several events in an
   * interval is saved once; offsets are committed after the save. 0: every
   * chunk saves its profiles before its offsets are resolved (the old path).
   * Other writers of a held profile (merges, expiry, backfills) wait up to
   * this long for its lock; readers (the Profile API, Trait Enrichment) see
   * its state that much later.
   * NOTE: off by default: measured slower than the per-chunk save in the e2e
   * bench (bench/RESULTS-e2e.md, stops 21 and 22: backlog 124-148 vs 98-111 µs
   * per event, paced 182-230 vs 167-172, worse p99), also once the undo's copy
   * was made cheap: held states outlive the young generation and cost more
   * garbage collection than the saves they spare.
   */
  EVALUATOR_FLUSH_MS: z.coerce.number().int().min(0).default(0),
  /** Write-behind: profiles held at once before a flush starts early. */
  EVALUATOR_FLUSH_MAX_PROFILES: positiveInt(5_000),
  /** Profile write locks expire after this long when their holder dies (ms); far above a chunk's processing time. */
  PROFILE_LOCK_TTL_MS: positiveInt(30_000),
  /** This service's own KAFKA_SESSION_TIMEOUT_MS (ms), when it should differ from the fleet's. */
  EVALUATOR_SESSION_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
});

export type Config = z.infer<typeof configSchema>;
