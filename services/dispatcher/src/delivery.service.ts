// One call to one destination, delivered or given up on: throttled through the
// shared bucket, retried on 408/423/429/5xx (not 501) with exponential backoff
// and jitter (429: at least Retry-After), until the retry window is spent.
import { classifyResponse, rateLimitOf } from '@engage/delivery';
import type { DestinationConfig } from '@engage/config-store';
import { backoffDelay } from '@engage/kafka';
import type { RateLimiter } from './rate-limiter';
import type { DeliveryStatus } from './delivery-status';

export type DeliveryResult = { ok: true; attempts: number } | { ok: false; attempts: number; reason: string };

export interface DeliveryConfig {
  retryWindowMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  timeoutMs: number;
}

export interface HttpRequest {
  url: string;
  method: 'POST' | 'DELETE';
  headers: Record<string, string>;
  body: unknown;
}

export class DeliveryService {
  constructor(
    private readonly config: DeliveryConfig,
    private readonly deps: { limiter: RateLimiter; status: DeliveryStatus; now?: () => number; sleep?: (ms: number, keepAlive?: () => Promise<void>) => Promise<void> },
  ) {}

  private now() {
    return this.deps.now?.() ?? Date.now();
  }

  /** Sleeps in slices, calling keepAlive (the consumer's heartbeat) between them. */
  private async sleep(ms: number, keepAlive?: () => Promise<void>) {
    if (this.deps.sleep) return this.deps.sleep(ms, keepAlive);
    const until = Date.now() + ms;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, Math.min(until - Date.now(), 3000)));
      await keepAlive?.();
    }
  }

  async deliver(destination: DestinationConfig, request: HttpRequest, keepAlive?: () => Promise<void>): Promise<DeliveryResult> {
    const started = this.now();
    const limit = rateLimitOf(destination);
    for (let attempt = 0; ; attempt++) {
      if (limit) {
        const wait = await this.deps.limiter.reserve(destination.id, limit);
        if (wait > 0) {
          this.deps.status.count(destination.id, 'throttled');
          await this.sleep(wait, keepAlive);
        }
      }
      let verdict;
      try {
        const res = await fetch(request.url, {
          method: request.method,
          headers: { 'content-type': 'application/json', 'user-agent': 'engage-dispatcher/0.1', ...request.headers },
          body: JSON.stringify(request.body),
          signal: AbortSignal.timeout(this.config.timeoutMs),
        });
        await res.arrayBuffer(); // drain, so the keep-alive socket is reused
        verdict = classifyResponse(res.status, res.headers.get('retry-after'), this.now());
      } catch (err) {
        verdict = { kind: 'retry' as const, reason: `network error: ${(err as Error).message}` };
      }
      if (verdict.kind === 'delivered') {
        this.deps.status.count(destination.id, 'sent');
        return { ok: true, attempts: attempt + 1 };
      }
      if (verdict.kind === 'fail') {
        this.deps.status.fail(destination.id, verdict.reason);
        return { ok: false, attempts: attempt + 1, reason: `${verdict.reason} from ${destination.name} (not retriable)` };
      }
      const delay = Math.max(verdict.retryAfterMs ?? 0, backoffDelay(attempt, { initialMs: this.config.initialBackoffMs, maxMs: this.config.maxBackoffMs, jitter: 0.3 }));
      if (this.now() + delay - started > this.config.retryWindowMs) {
        this.deps.status.fail(destination.id, verdict.reason);
        return { ok: false, attempts: attempt + 1, reason: `${verdict.reason} from ${destination.name}; retry window of ${this.config.retryWindowMs} ms spent after ${attempt + 1} attempts` };
      }
      this.deps.status.count(destination.id, 'retried', verdict.reason);
      await this.sleep(delay, keepAlive);
    }
  }
}
