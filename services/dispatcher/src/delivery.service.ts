// Calls to one destination: one attempt throttled through the shared bucket,
// and the retry policy after a retriable answer (408/423/429/5xx but 501:
// exponential backoff and jitter, or the Retry-After an answer names, until the retry
// window is spent). Where a waiting retry waits is the caller's choice.
import { hostname } from 'node:os';
import {
  classifyActionOutcome,
  classifyResponse,
  rateLimitOf,
  type ActionEvent,
  type ActionOutcome,
  type ActionVerdict,
  type DeliveryVerdict,
} from '@engage/delivery';
import type { ActionMapping, DestinationConfig } from '@engage/config-store';
import type { RateLimiter } from './rate-limiter';
import { retryDecision, type RetryDecision } from './retry-decision';
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

/** The outcome of one attempt. */
export type AttemptResult =
  | { kind: 'delivered'; body: unknown }
  | { kind: 'fail'; reason: string; status?: number }
  | { kind: 'retry'; reason: string; status?: number; retryAfterMs?: number };

/** After a retriable answer: when to try again, or why we give up. */
export type NextRetry = Extract<RetryDecision, { kind: 'retry' }> | { kind: 'give-up'; reason: string };

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
  kind?: 'http';
  url: string;
  method: 'GET' | 'POST' | 'DELETE';
  headers: Record<string, string>;
  body: unknown;
  classify?: ResponseClassifier;
}

/** An Actions destination's call: `mapping`'s action run for `event` (adapters/actions.runtime.ts). */
export interface ActionRequest {
  kind: 'action';
  mapping: ActionMapping;
  event: ActionEvent;
}

export type OutboundRequest = HttpRequest | ActionRequest;

/** What runs actions (ActionsRuntime): one outcome per event. */
export interface ActionRunner {
  run(
    destination: DestinationConfig,
    mapping: ActionMapping,
    events: ActionEvent[],
    features?: Record<string, boolean>,
  ): Promise<ActionOutcome[]>;
  /** Events per request for `mapping` (1 when its action does not batch). */
  batchSize(destination: DestinationConfig, mapping: ActionMapping): number;
}

/** Which replica sent a call: lets operators (and tests) see several replicas share one destination's limit. */
const REPLICA = `${hostname()}:${process.pid}`;

export class DeliveryService {
  private lastBeat = 0;
  constructor(
    private readonly config: DeliveryConfig,
    private readonly deps: {
      limiter: RateLimiter;
      status: Pick<DeliveryStatus, 'count' | 'fail' | 'credentialsRefused'>;
      /** The HTTP client (the event tester wraps it to show the request and response it carried). */
      fetch?: typeof fetch;
      /** Runs Actions destinations' calls; without it they fail (not retriable). */
      actions?: ActionRunner;
      now?: () => number;
      /** Jitter source (tests pin it). */
      random?: () => number;
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

  /**
   * One throttled attempt: the throttle's wait (short, paced) stays inline;
   * what to do after a retriable answer is the caller's (nextRetry): the
   * dispatch step and the retry loop schedule it, list flushes sleep (deliver).
   */
  async attempt(destination: DestinationConfig, request: OutboundRequest, keepAlive?: () => Promise<void>): Promise<AttemptResult> {
    await this.throttle(destination, keepAlive);
    if (request.kind === 'action') return (await this.runAction(destination, request.mapping, [request.event]))[0]!;
    const classify = request.classify ?? defaultClassifier;
    let verdict: DeliveryVerdict;
    let status: number | undefined;
    let body: unknown = null;
    try {
      const res = await (this.deps.fetch ?? fetch)(request.url, {
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
    return this.result(destination, verdict, status, body);
  }

  /** Counts a final verdict in the destination's status (a retriable one is counted by nextRetry). */
  private tally(destination: DestinationConfig, verdict: ActionVerdict): void {
    if (verdict.kind === 'delivered') this.deps.status.count(destination.id, 'sent');
    else if (verdict.kind === 'fail') {
      this.deps.status.fail(destination.id, verdict.reason);
      // The vendor refused our credentials: the destination is flagged until a later call gets through.
      if (verdict.credentials) this.deps.status.credentialsRefused(destination.id, verdict.reason);
    }
  }

  private result(
    destination: DestinationConfig,
    verdict: ActionVerdict,
    status: number | undefined,
    body: unknown,
    counted = true,
  ): AttemptResult {
    if (counted) this.tally(destination, verdict);
    if (verdict.kind === 'delivered') return { kind: 'delivered', body };
    if (verdict.kind === 'fail') return { kind: 'fail', status, reason: `${verdict.reason} from ${destination.name} (not retriable)` };
    return { kind: 'retry', status, reason: verdict.reason, retryAfterMs: verdict.retryAfterMs };
  }

  /** One Actions call (already throttled): the action runs, its outcome reads as a webhook's answer would. */
  /** Waits for the destination's shared token bucket: one token per request, whatever it carries. */
  private async throttle(destination: DestinationConfig, keepAlive?: () => Promise<void>): Promise<void> {
    const limit = rateLimitOf(destination);
    if (!limit) return;
    for (;;) {
      const grant = await this.deps.limiter.acquire(destination.id, limit, (ms) => this.sleep(ms, keepAlive));
      if (grant.waitedMs > 0) this.deps.status.count(destination.id, 'throttled');
      // The log records when the request leaves, not when it was granted (see RateLimiter.restamp).
      if (await this.deps.limiter.restamp(destination.id, grant)) return;
    }
  }

  /** How many events of `mapping` one request may carry (1: the action does not batch). */
  batchSize(destination: DestinationConfig, mapping: ActionMapping): number {
    return this.deps.actions?.batchSize(destination, mapping) ?? 1;
  }

  /**
   * One throttled request carrying `events` for `mapping` (onBatch where the
   * action batches): a result per event, each read as a webhook's answer
   * would be, so one refused item does not fail the others.
   */
  async attemptActions(
    destination: DestinationConfig,
    mapping: ActionMapping,
    events: ActionEvent[],
    keepAlive?: () => Promise<void>,
    features?: Record<string, boolean>,
  ): Promise<AttemptResult[]> {
    await this.throttle(destination, keepAlive);
    return this.runAction(destination, mapping, events, features);
  }

  /** One throttled upload of `events` (a full-audience sync): counted once in the destination's status. */
  private async attemptUpload(
    destination: DestinationConfig,
    mapping: ActionMapping,
    events: ActionEvent[],
    features?: Record<string, boolean>,
  ): Promise<AttemptResult[]> {
    await this.throttle(destination);
    return this.runAction(destination, mapping, events, features, true);
  }

  /**
   * Runs `mapping`'s action for `events`: a result per event. Each event's
   * final verdict is counted in the destination's status, unless `asOneUpload`
   * (a full-audience sync: the events are the rows of one upload, which counts
   * once, sent or failed, whatever number of members it carries).
   */
  private async runAction(
    destination: DestinationConfig,
    mapping: ActionMapping,
    events: ActionEvent[],
    features?: Record<string, boolean>,
    asOneUpload = false,
  ): Promise<AttemptResult[]> {
    const outcomes: ActionOutcome[] = this.deps.actions
      ? await this.deps.actions.run(destination, mapping, events, features)
      : events.map(() => ({ ok: false, message: 'this dispatcher runs no Actions destinations' }));
    const now = this.now();
    const verdicts = events.map((_, i) => {
      const outcome = outcomes[i] ?? { ok: false, message: 'no outcome for this event' };
      return { verdict: classifyActionOutcome(outcome, now), status: outcome.status };
    });
    if (asOneUpload) {
      // The upload's outcome: refused when any row was (the first refusal says why); retried whole
      // (nextRetry counts it) when every row may be retried; a retriable row among delivered ones
      // leaves the upload incomplete, which fails it.
      const refusal = (verdicts.find((v) => v.verdict.kind === 'fail') ?? verdicts.find((v) => v.verdict.kind === 'retry'))?.verdict;
      if (!refusal || refusal.kind === 'delivered') this.deps.status.count(destination.id, 'sent');
      else if (refusal.kind === 'fail') this.tally(destination, refusal);
      else if (verdicts.some((v) => v.verdict.kind !== 'retry')) this.deps.status.fail(destination.id, refusal.reason);
    }
    return verdicts.map(({ verdict, status }) => this.result(destination, verdict, status, null, !asOneUpload));
  }

  /**
   * After a retriable answer to attempt number `attempt` (0-based) of a call
   * first tried at `since`: when to try again, or give up (and count it failed)
   * once the retry window would be spent.
   */
  nextRetry(
    destination: Pick<DestinationConfig, 'id' | 'name'>,
    failed: Extract<AttemptResult, { kind: 'retry' }>,
    attempt: number,
    since: number,
  ): NextRetry {
    const decision = retryDecision(this.config, { attempt, since, now: this.now(), retryAfterMs: failed.retryAfterMs }, this.deps.random);
    if (decision.kind === 'retry') this.deps.status.count(destination.id, 'retried', failed.reason);
    else this.deps.status.fail(destination.id, failed.reason);
    return decision.kind === 'retry'
      ? decision
      : {
          kind: 'give-up',
          reason: `${failed.reason} from ${destination.name}; retry window of ${this.config.retryWindowMs} ms spent after ${attempt + 1} attempts`,
        };
  }

  /**
   * One request of `events` for `mapping` with retries inline while the
   * whole request is retriable (a full-audience sync: one upload carries
   * them all), sleeping between attempts as deliver() does: the last results.
   * The destination's counts take the upload as one call: one sent or one
   * failure (and one retry per retried attempt), not one per event.
   */
  async deliverActions(
    destination: DestinationConfig,
    mapping: ActionMapping,
    events: ActionEvent[],
    features?: Record<string, boolean>,
  ): Promise<AttemptResult[]> {
    const started = this.now();
    for (let attempt = 0; ; attempt++) {
      const results = await this.attemptUpload(destination, mapping, events, features);
      const first = results[0];
      if (!first || first.kind !== 'retry' || results.some((r) => r.kind !== 'retry')) return results;
      const next = this.nextRetry(destination, first, attempt, started);
      if (next.kind === 'give-up') return results.map(() => ({ kind: 'fail' as const, status: first.status, reason: next.reason }));
      await this.sleep(next.delayMs);
    }
  }

  /**
   * Delivers with retries inline, sleeping between attempts. Only for work
   * that runs outside a consumer's batch (list flushes, on their own loop):
   * event calls schedule their retries instead (RetrySchedule).
   */
  async deliver(destination: DestinationConfig, request: HttpRequest, keepAlive?: () => Promise<void>): Promise<DeliveryResult> {
    const started = this.now();
    for (let attempt = 0; ; attempt++) {
      const result = await this.attempt(destination, request, keepAlive);
      if (result.kind === 'delivered') return { ok: true, attempts: attempt + 1, body: result.body };
      if (result.kind === 'fail')
        return { ok: false, attempts: attempt + 1, status: result.status, retriable: false, reason: result.reason };
      const next = this.nextRetry(destination, result, attempt, started);
      if (next.kind === 'give-up') return { ok: false, attempts: attempt + 1, status: result.status, retriable: true, reason: next.reason };
      await this.sleep(next.delayMs, keepAlive);
    }
  }
}
