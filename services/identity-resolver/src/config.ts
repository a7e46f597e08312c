import { bool, infrastructureConfig, port, positiveInt, z } from '@engage/config';

export const configSchema = z.object({
  ...infrastructureConfig,
  /** HTTP port of /metrics, /healthz, /readyz. */
  OPS_PORT: port(9101),
  /** Messages per chunk: one identity-graph script call per space and one sendBatch each. */
  RESOLVER_CHUNK_SIZE: positiveInt(500),
  /** Partitions handled at once by one replica (with RESOLVER_COALESCE_PARTITIONS: whose chunks of one fetch can be combined; 6 then). */
  RESOLVER_CONCURRENCY: positiveInt(2),
  /**
   * The partitions' chunks of one fetch resolved as one chunk, in receive order
   * (up to RESOLVER_CHUNK_SIZE): one script call and one produce for all.
   * NOTE: off by default. Faster under a live stream (bench/RESULTS-fleet.md),
   * but it changes the timing of a login's merge against the anonymous
   * profile's own events, and the evaluator applies identify traits in the
   * order it processes them, not by event time: in test/read-side.test.ts an
   * older trait value then won 2 times in 8 (0 in 8 with it off).
   */
  RESOLVER_COALESCE_PARTITIONS: bool(false),
  /** How long the result of an event that announced a change is kept, so a redelivery announces it again (seconds). */
  RESOLVER_RESULT_TTL_SECONDS: positiveInt(24 * 3600),
});

export type Config = z.infer<typeof configSchema>;
