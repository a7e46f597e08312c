import { infrastructureConfig, port, z } from '@engage/config';

export const configSchema = z.object({
  ...infrastructureConfig,
  /** HTTP port of /metrics, /healthz, /readyz. */
  INGEST_PORT: port(8080),
});

export type Config = z.infer<typeof configSchema>;
