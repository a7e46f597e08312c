// Helpers for integration tests: poll a condition with a deadline (never a
// fixed sleep), fresh names per test, the infrastructure the global setup found.
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Shown when the deadline passes. */
  description?: string;
}

/** Polls `check` until it returns a truthy value, which is returned; throws at the deadline. */
export async function waitFor<T>(check: () => Promise<T> | T, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30000);
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const cause = lastError ? ` (last error: ${(lastError as Error).message})` : '';
      throw new Error(`timed out after ${opts.timeoutMs ?? 30000} ms waiting for ${opts.description ?? 'condition'}${cause}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

export interface QuietOptions {
  /** How long `check` must keep holding (ms). */
  quietMs: number;
  intervalMs?: number;
  /** What should stay true; shown when it does not. */
  description?: string;
}

/**
 * An absence check: polls `check` for `quietMs` and throws the first time it
 * returns a falsy value (or throws). For what must NOT happen (no commit, no
 * second delivery): the counterpart of waitFor, still a polled condition
 * rather than a sleep followed by one look.
 */
export async function stillTrueFor(check: () => Promise<unknown> | unknown, opts: QuietOptions): Promise<void> {
  const started = Date.now();
  const what = opts.description ?? 'condition';
  for (;;) {
    let ok: unknown;
    try {
      ok = await check();
    } catch (err) {
      throw new Error(`${what} stopped holding after ${Date.now() - started} ms: ${(err as Error).message}`, { cause: err });
    }
    if (!ok) throw new Error(`${what} stopped holding after ${Date.now() - started} ms (of ${opts.quietMs} ms)`);
    if (Date.now() - started >= opts.quietMs) return;
    await new Promise((r) => setTimeout(r, Math.min(opts.intervalMs ?? 50, Math.max(0, started + opts.quietMs - Date.now()))));
  }
}

/** A fresh name for a topic prefix, group id or Redis key prefix. */
export function uniqueName(prefix: string): string {
  const name = `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  // Recorded for the global teardown, which removes this run's topics and keys (test/setup/drop-run-artifacts.js).
  if (process.env.ENGAGE_TEST_NAMES_FILE) appendFileSync(process.env.ENGAGE_TEST_NAMES_FILE, `${name}\n`);
  return name;
}

export interface TestInfrastructure {
  kafkaBrokers: string[];
  schemaRegistryUrl: string;
  redisUrl: string;
}

/** The infrastructure the integration global setup provided (through the environment). */
export function testInfrastructure(): TestInfrastructure {
  const env = process.env;
  if (!env.KAFKA_BROKERS || !env.SCHEMA_REGISTRY_URL || !env.REDIS_URL) {
    throw new Error('KAFKA_BROKERS, SCHEMA_REGISTRY_URL and REDIS_URL are unset: run integration tests through jest (global setup)');
  }
  return { kafkaBrokers: env.KAFKA_BROKERS.split(','), schemaRegistryUrl: env.SCHEMA_REGISTRY_URL, redisUrl: env.REDIS_URL };
}
/**
 * The environment of services a test starts as processes: the test
 * infrastructure, a fresh topic and Redis key prefix (`prefix`), and port 0
 * everywhere (each service logs the port it got). `extra` adds or overrides.
 */
export function serviceEnv(prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  const infra = testInfrastructure();
  return {
    KAFKA_BROKERS: infra.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl,
    REDIS_URL: infra.redisUrl,
    TOPIC_PREFIX: prefix,
    REDIS_KEY_PREFIX: prefix,
    INGEST_PORT: '0',
    CONTROL_PLANE_PORT: '0',
    OPS_PORT: '0',
    ...extra,
  };
}

export * from './service-process';
