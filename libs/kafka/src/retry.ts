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
