import { httpOverridesSetting } from '@engage/actions';
import { infrastructureConfig, port, z } from '@engage/config';
import { parseAllowList } from './domain/destination-hosts';

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
  /** Profile API requests per second per space before 429 (Segment's default: 100). */
  PROFILE_API_RATE_LIMIT: z.coerce.number().int().positive().default(100),
  /** Seconds an audience CSV's membership snapshot may live in Redis (it is dropped when the export ends). */
  CSV_SNAPSHOT_TTL_SECONDS: z.coerce.number().int().positive().default(3600),
  /** Members read per Redis round trip by the CSV export. */
  CSV_PAGE_SIZE: z.coerce.number().int().positive().default(5000),
  /**
   * Where the formatted CSV export spools its one read of the snapshot (about
   * 100 bytes per member, removed when the export ends). Default: the OS temp dir.
   */
  CSV_SPOOL_DIR: z.string().min(1).optional(),
  /** Hosts, addresses or CIDRs (comma-separated) destinations may reach although loopback, private or link-local. Default: none. */
  DESTINATION_ALLOWED_HOSTS: z
    .string()
    .default('')
    .transform((text, ctx) => {
      try {
        return parseAllowList(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  /**
   * Vendor host -> local host:port over plain HTTP (CONTRACT.md section 8), for
   * an Actions destination's audience created when a connection is made and the
   * event tester: tests and staging only; unset (none) in production.
   */
  DESTINATION_HTTP_OVERRIDES: httpOverridesSetting,
  /** Directory of the console's static build (index.html, assets/). Default: console/dist of the repository. */
  CONSOLE_DIR: z.string().min(1).optional(),
  /** Milliseconds a destination host's DNS lookup may take before it is admitted unresolved. */
  DESTINATION_LOOKUP_TIMEOUT_MS: z.coerce.number().int().positive().default(2000),
  /** Milliseconds the event tester waits for a destination's answer (the dispatcher's DISPATCH_TIMEOUT_MS default). */
  DESTINATION_TEST_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /** The dispatchers' DISPATCH_RATE_MARGIN_MS (ms): the event tester takes its token from their bucket with the same window. */
  DISPATCH_RATE_MARGIN_MS: z.coerce.number().int().positive().default(40),
});

export type Config = z.infer<typeof configSchema>;
