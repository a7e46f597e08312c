import { infrastructureConfig, port, z } from '@engage/config';

export const configSchema = z.object({
  ...infrastructureConfig,
  /** HTTP port of the API, the Profile API and the ops endpoints. */
  CONTROL_PLANE_PORT: port(8088),
  /** Bearer token of the API (Basic username of the Profile API). Required: there is no safe default. */
  CONTROL_PLANE_TOKEN: z.string().min(8, 'CONTROL_PLANE_TOKEN must be at least 8 characters'),
  /** Largest JSON body accepted, in bytes. */
  CONTROL_PLANE_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(256 * 1024),
});

export type Config = z.infer<typeof configSchema>;
