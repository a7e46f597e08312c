import { bool, infrastructureConfig, port, positiveInt, z } from '@engage/config';

export const configSchema = z.object({
  ...infrastructureConfig,
  /** HTTP port of /metrics, /healthz, /readyz. */
  OPS_PORT: port(9101),
  /** Messages per chunk: one identity-graph script call per space and one sendBatch each. */
  RESOLVER_CHUNK_SIZE: positiveInt(500),
  /** Partitions handled at once by one replica (with RESOLVER_COALESCE_PARTITIONS: those whose chunks of one fetch can be combined). */
  RESOLVER_CONCURRENCY: positiveInt(6),
  /**
   * The partitions' chunks of one fetch resolved as one chunk, in receive order
   * (up to RESOLVER_CHUNK_SIZE): one script call and one produce for all
   * (bench/RESULTS-fleet.md: ~20% less fleet CPU under a live stream).
   */
  RESOLVER_COALESCE_PARTITIONS: bool(true),
  /** How long the result of an event that announced a change is kept, so a redelivery announces it again (seconds). */
  RESOLVER_RESULT_TTL_SECONDS: positiveInt(24 * 3600),
});

export type Config = z.infer<typeof configSchema>;
