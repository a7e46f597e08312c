// Errors carry `retriable`; one retry helper with exponential backoff, jitter
// and a cap (kafkajs src/retry, action-destinations packages/core/src/errors.ts).

export class RetriableError extends Error {
  readonly retriable = true;
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, options);
    this.name = 'RetriableError';
    this.retryAfterMs = options?.retryAfterMs;
  }
  readonly retryAfterMs?: number;
}

export class PermanentError extends Error {
  readonly retriable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

/**
 * Programmer errors (TypeError, RangeError, ...) are never retried: retrying
 * a bug only delays the crash. Errors that say `retriable` decide for themselves;
 * other errors (network, timeouts from libraries) are retried.
 */
export function isRetriable(err: unknown): boolean {
  if (err && typeof err === 'object' && 'retriable' in err) return Boolean((err as { retriable: unknown }).retriable);
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError || err instanceof ReferenceError) return false;
  return true;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor?: number;
  /** 0..1: the share of each delay that is random. */
  jitter?: number;
}

/** Delay before attempt `attempt` (0-based), with full jitter on a share of it. */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.min(opts.maxMs, opts.initialMs * (opts.factor ?? 2) ** attempt);
  const jitter = opts.jitter ?? 0.2;
  return Math.round(base * (1 - jitter) + base * jitter * random());
}

export interface RetryOptions extends BackoffOptions {
  retries: number;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= opts.retries || !isRetriable(err)) throw err;
      const hinted = (err as RetriableError).retryAfterMs ?? 0;
      const delay = Math.max(hinted, backoffDelay(attempt, opts));
      opts.onRetry?.(err, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Error codes and messages of a dependency being unreachable or busy (Node, ioredis, undici, Redis replies). */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
]);
const UNREACHABLE_MESSAGE =
  /Connection is closed|Stream isn't writeable|MaxRetriesPerRequest|fetch failed|socket hang up|^(LOADING|BUSY|CLUSTERDOWN|TRYAGAIN|MOVED|ASK|READONLY|MASTERDOWN|NOREPLICAS)\b|timed? ?out/i;

/**
 * Whether an error says "a dependency is down or busy" rather than "this input
 * cannot be processed". Consumers retry the former without limit (the data is
 * fine; dead-lettering it would drop good records during an outage) and the
 * latter a bounded number of times before dead-lettering the record.
 * - errors that carry `retriable` (ours, kafkajs's) decide for themselves;
 *   kafkajs's "number of retries exceeded" is judged by its cause;
 * - otherwise, known network codes and messages (ECONNREFUSED, ioredis's
 *   "Connection is closed", undici's "fetch failed", Redis LOADING/BUSY/...).
 * Anything else (TypeError, a Lua error on odd data, MESSAGE_TOO_LARGE) is
 * the record's problem.
 */
export function isInfrastructureError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const x = e as { name?: string; retriable?: unknown; code?: unknown; message?: unknown; cause?: unknown; originalError?: unknown };
    // kafkajs wraps the last error of its retrier (KafkaJSNumberOfRetriesExceeded, non-retriable itself).
    if (x.name === 'KafkaJSNumberOfRetriesExceeded' && (x.cause || x.originalError)) {
      e = x.cause ?? x.originalError;
      continue;
    }
    if (typeof x.retriable === 'boolean') return x.retriable;
    if (typeof x.code === 'string' && UNREACHABLE_CODES.has(x.code)) return true;
    if (typeof x.message === 'string' && UNREACHABLE_MESSAGE.test(x.message)) return true;
    e = x.cause;
  }
  return false;
}
