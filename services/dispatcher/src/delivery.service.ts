// One call to one destination, delivered or given up on: throttled through the
// shared bucket, retried on 408/423/429/5xx (not 501) with exponential backoff
// and jitter (429: at least Retry-After), until the retry window is spent.
import { hostname } from 'node:os';
import { classifyResponse, rateLimitOf, type DeliveryVerdict } from '@engage/delivery';
import type { DestinationConfig } from '@engage/config-store';
import { backoffDelay } from '@engage/kafka';
import type { RateLimiter } from './rate-limiter';
import type { DeliveryStatus } from './delivery-status';

export type DeliveryResult =
  | { ok: true; attempts: number; body: unknown }
  | {
      ok: false;
      attempts: number;
      reason: string;
      status?: number;
      /** true when the retry window ran out, false when refused for good */ retriable: boolean;
    };

/** How a destination's answer reads; adapters whose API signals throttling in the body (Facebook: 400 + code 80003) pass their own. */
export type ResponseClassifier = (status: number, body: unknown, retryAfter: string | null, now: number) => DeliveryVerdict;
const defaultClassifier: ResponseClassifier = (status, _body, retryAfter, now) => classifyResponse(status, retryAfter, now);

export interface DeliveryConfig {
  retryWindowMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  timeoutMs: number;
}

export interface HttpRequest {
  url: string;
  method: 'GET' | 'POST' | 'DELETE';
  headers: Record<string, string>;
  body: unknown;
  classify?: ResponseClassifier;
}

/** Which replica sent a call: lets operators (and tests) see several replicas share one destination's limit. */
const REPLICA = `${hostname()}:${process.pid}`;

export class DeliveryService {
  private lastBeat = 0;
  constructor(
    private readonly config: DeliveryConfig,
    private readonly deps: {
      limiter: RateLimiter;
      status: DeliveryStatus;
      now?: () => number;
      sleep?: (ms: number, keepAlive?: () => Promise<void>) => Promise<void>;
    },
  ) {}

  private now() {
    return this.deps.now?.() ?? Date.now();
  }

  /**
   * Sleeps until `ms` from now, heartbeating the consumer at most every 2 s
   * (kafkajs only needs one per few seconds). The deadline is fixed before the
   * heartbeat, so a slow heartbeat does not make a throttled request late.
   */
  private async sleep(ms: number, keepAlive?: () => Promise<void>) {
    if (this.deps.sleep) return this.deps.sleep(ms, keepAlive);
    const until = Date.now() + ms;
    do {
      if (keepAlive && Date.now() - this.lastBeat >= 2000) {
        this.lastBeat = Date.now();
        await keepAlive();
      }
      const left = until - Date.now();
      if (left > 0) await new Promise((r) => setTimeout(r, Math.min(left, 2000)));
    } while (Date.now() < until);
  }

  async deliver(destination: DestinationConfig, request: HttpRequest, keepAlive?: () => Promise<void>): Promise<DeliveryResult> {
    const started = this.now();
    const limit = rateLimitOf(destination);
    const classify = request.classify ?? defaultClassifier;
    for (let attempt = 0; ; attempt++) {
      if (limit) {
        for (;;) {
          const grant = await this.deps.limiter.acquire(destination.id, limit, (ms) => this.sleep(ms, keepAlive));
          if (grant.waitedMs > 0) this.deps.status.count(destination.id, 'throttled');
          // The log records when the request leaves, not when it was granted (see RateLimiter.restamp).
          if (await this.deps.limiter.restamp(destination.id, grant)) break;
        }
      }
      let verdict: DeliveryVerdict;
      let status: number | undefined;
      let body: unknown = null;
      try {
        const res = await fetch(request.url, {
          method: request.method,
          headers: {
            'content-type': 'application/json',
            'user-agent': 'engage-dispatcher/0.1',
            'x-engage-replica': REPLICA,
            ...request.headers,
          },
          body: request.body === undefined ? undefined : JSON.stringify(request.body),
          signal: AbortSignal.timeout(this.config.timeoutMs),
        });
        status = res.status;
        // Always read the body: it drains the socket for keep-alive reuse, and list APIs report per-item outcomes in it.
        const text = await res.text();
        try {
          body = text ? JSON.parse(text) : null;
        } catch {
          body = text;
        }
        verdict = classify(res.status, body, res.headers.get('retry-after'), this.now());
      } catch (err) {
        verdict = { kind: 'retry', reason: `network error: ${(err as Error).message}` };
      }
      if (verdict.kind === 'delivered') {
        this.deps.status.count(destination.id, 'sent');
        return { ok: true, attempts: attempt + 1, body };
      }
      if (verdict.kind === 'fail') {
        this.deps.status.fail(destination.id, verdict.reason);
        return {
          ok: false,
          attempts: attempt + 1,
          status,
          retriable: false,
          reason: `${verdict.reason} from ${destination.name} (not retriable)`,
        };
      }
      const delay = Math.max(
        verdict.retryAfterMs ?? 0,
        backoffDelay(attempt, { initialMs: this.config.initialBackoffMs, maxMs: this.config.maxBackoffMs, jitter: 0.3 }),
      );
      if (this.now() + delay - started > this.config.retryWindowMs) {
        this.deps.status.fail(destination.id, verdict.reason);
        return {
          ok: false,
          attempts: attempt + 1,
          status,
          retriable: true,
          reason: `${verdict.reason} from ${destination.name}; retry window of ${this.config.retryWindowMs} ms spent after ${attempt + 1} attempts`,
        };
      }
      this.deps.status.count(destination.id, 'retried', verdict.reason);
      await this.sleep(delay, keepAlive);
    }
  }
}
