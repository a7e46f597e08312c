// zod helpers for service config. Each service has one schema, parsed once in
// main.ts (the only place that reads process.env) and handed down narrowed.
import { z } from 'zod';

export { z };

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid configuration:\n  ${issues.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses `env` with `schema`; throws one ConfigError listing every bad key. */
export function parseConfig<S extends z.ZodTypeAny>(schema: S, env: Record<string, string | undefined>): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
}

/** A TCP port from a string env value. */
export const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);

/** A positive integer (sizes, counts, milliseconds). */
export const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** "true"/"1"/"yes" and "false"/"0"/"no"; anything else is an error rather than a silent false. */
export const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** A comma-separated list, trimmed, empty items dropped. */
export const csv = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    );

/**
 * `events.raw=12,events.resolved=24` as { 'events.raw': 12, 'events.resolved': 24 }.
 * The format is checked here; the topic names by the topic registry when the
 * service starts (libs/kafka topic-layout.ts), which knows them.
 */
export const partitionOverrides = () =>
  z
    .string()
    .default('')
    .transform((text, ctx) => {
      const overrides: Record<string, number> = {};
      for (const item of text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)) {
        const match = /^([a-z0-9._-]+)=([1-9][0-9]*)$/i.exec(item);
        if (!match) {
          ctx.addIssue({ code: 'custom', message: `"${item}" is not <topic>=<partitions> (e.g. events.raw=12)` });
          continue;
        }
        const [, topic, count] = match;
        if (topic in overrides) ctx.addIssue({ code: 'custom', message: `${topic} is given twice` });
        overrides[topic] = Number(count);
      }
      return overrides;
    });

/** The connection settings every service shares (CONTRACT.md section 0). */
export const infrastructureConfig = {
  KAFKA_BROKERS: csv('127.0.0.1:9092'),
  SCHEMA_REGISTRY_URL: z.string().url().default('http://127.0.0.1:8081/apis/ccompat/v7'),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  /** Prefix for every topic name: lets tests and several stacks share one cluster. */
  TOPIC_PREFIX: z.string().default(''),
  /** Partitions of each data topic when created (the ceiling of a consumer group's replicas); default 6. */
  TOPIC_PARTITIONS: positiveInt(6),
  /** Copies of every partition when created; 3 in production (min.insync.replicas 2 follows), default 1 (one broker). */
  TOPIC_REPLICATION_FACTOR: positiveInt(1),
  /** Partitions per topic over TOPIC_PARTITIONS, `<topic>=<count>` comma-separated, names without `engage.` (e.g. `events.raw=12,events.resolved=24`); default none. */
  TOPIC_PARTITIONS_OVERRIDES: partitionOverrides(),
  /**
   * Grow existing topics that have fewer partitions than configured, instead of
   * refusing to start; breaks per-profile order for records in flight
   * (deploy/README.md "Growing partitions"). Default false.
   */
  TOPIC_PARTITIONS_ALLOW_GROWTH: bool(false),
  /** Prefix for every Redis key, for the same reason. */
  REDIS_KEY_PREFIX: z.string().default(''),
  /** Interface the HTTP servers bind; 0.0.0.0 in containers. */
  HTTP_HOST: z.string().default('127.0.0.1'),
  /**
   * How long a consumer group waits for a silent member (a killed process)
   * before giving its partitions to the others, or to its restarted self (ms).
   */
  KAFKA_SESSION_TIMEOUT_MS: positiveInt(30_000),
  /**
   * How often consumers commit the offsets they have handled, all partitions
   * in one request (ms; 0: after every chunk). A crash redelivers up to this
   * much, which every consumer handles as redelivery (same ids, no double count).
   */
  KAFKA_COMMIT_INTERVAL_MS: z.coerce.number().int().min(0).default(1000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};
