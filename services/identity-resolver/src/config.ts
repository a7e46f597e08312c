import { bool, infrastructureConfig, port, positiveInt, z } from '@engage/config';

export const configSchema = z.object({
  ...infrastructureConfig,
  /** HTTP port of /metrics, /healthz, /readyz. */
  OPS_PORT: port(9101),
  /** Messages per chunk: one identity-graph script call per space and one sendBatch each. */
  RESOLVER_CHUNK_SIZE: positiveInt(500),
  /** Partitions handled at once by one replica. */
  RESOLVER_CONCURRENCY: positiveInt(2),
  /** The partitions' chunks of one fetch resolved as one chunk (up to RESOLVER_CHUNK_SIZE; libs/kafka chunk-coalescer.ts). */
  RESOLVER_COALESCE_PARTITIONS: bool(true),
  /**
   * Ids seen on one profile kept in memory (~150 B each), so that an event whose ids all are skips
   * the graph script (known-ids.ts); 0 turns it off. An answer from it may name a profile merged
   * elsewhere since, for at most RESOLVER_KNOWN_IDS_TTL_MS: the evaluator re-addresses such events.
   */
  RESOLVER_KNOWN_IDS: z.coerce.number().int().min(0).default(100_000),
  /** How long a known id is answered from memory after the graph last confirmed it (ms). */
  RESOLVER_KNOWN_IDS_TTL_MS: positiveInt(60_000),
  /** How long the result of an event that announced a change is kept, so a redelivery announces it again (seconds). */
  RESOLVER_RESULT_TTL_SECONDS: positiveInt(24 * 3600),
});

export type Config = z.infer<typeof configSchema>;
