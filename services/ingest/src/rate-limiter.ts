// Per-source request rate limit, shared by every replica of the ingest. The
// source's `rateLimit` from engage.config wins over the service default.
//
// The bucket that counts is one per source in Redis (rate-limit.repository.ts).
// A round trip per request would tax the hot path of the whole system, so each
// replica leases tokens from it in blocks (token-bucket.ts leaseSize: by
// default 100 ms of the rate) and spends them locally: at full rate about ten
// Redis calls per second per source and replica, whatever the request rate.
// Bounds: since the shared bucket was created, all replicas together admit at
// most burst + rate x elapsed (every admitted request's token came from it);
// in any shorter window, at most replicas x lease size more than that (tokens
// leased before the window and spent in it). Not counted: seconds spent failing
// open (below), and a bucket lost with its Redis (it comes back full).
// When the shared bucket is empty a replica does not ask again until a lease's
// worth could be there: requests in between get their 429 without Redis.
// Redis down or slow: the limiter lets traffic through (fail open) and skips
// Redis for a second; an outage of Redis must not become one of the ingest.
import type { Logger } from '@engage/logging';
import type { Lease } from './rate-limit.repository';
import { leaseSize, type RateLimitSettings } from './token-bucket';

export { retryAfterSeconds, type RateLimitSettings } from './token-bucket';

export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number };

export interface RateLimiterConfig {
  /** Lease size, in ms of the source's rate (at least 1 token). */
  leaseMs: number;
  /** Longest wait for Redis before failing open, ms. */
  redisTimeoutMs: number;
}

/** What one replica knows of a source's budget. */
interface LocalBudget {
  /** Leased from the shared bucket, not spent yet. */
  tokens: number;
  /** Epoch ms before which the shared bucket is known to have nothing to lease. */
  deniedUntil: number;
  /** A lease on its way: concurrent requests wait for it instead of each asking Redis. */
  leasing: Promise<void> | null;
}

const OK: RateDecision = { ok: true };
/** After Redis failed, how long requests pass without asking it, ms. */
const FAIL_OPEN_MS = 1000;

export class SourceRateLimiter {
  private readonly budgets = new Map<string, LocalBudget>();
  private failOpenUntil = 0;

  constructor(
    private readonly config: RateLimiterConfig,
    private readonly deps: {
      bucket: { lease(sourceId: string, limit: RateLimitSettings, now: number, want: number): Promise<Lease> };
      log: Logger;
    },
  ) {}

  /** Takes one token of `sourceId`'s budget at `now` (epoch ms, the request's receive time). */
  async take(sourceId: string, limit: RateLimitSettings, now: number): Promise<RateDecision> {
    if (!(limit.requestsPerSecond > 0)) return OK;
    let budget = this.budgets.get(sourceId);
    if (!budget) {
      budget = { tokens: 0, deniedUntil: 0, leasing: null };
      this.budgets.set(sourceId, budget);
    }
    // Each pass either spends, denies, or waits for a lease that grants, denies
    // or fails; a lease others emptied first is followed by another one.
    for (;;) {
      if (budget.tokens >= 1) {
        budget.tokens -= 1;
        return OK;
      }
      if (now < budget.deniedUntil) return { ok: false, retryAfterMs: budget.deniedUntil - now };
      if (now < this.failOpenUntil) return OK;
      budget.leasing ??= this.lease(sourceId, budget, limit, now);
      await budget.leasing;
    }
  }

  private async lease(sourceId: string, budget: LocalBudget, limit: RateLimitSettings, now: number): Promise<void> {
    const want = leaseSize(limit, this.config.leaseMs);
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer from Redis within ${this.config.redisTimeoutMs} ms`)),
          this.config.redisTimeoutMs,
        );
      });
      const lease = await Promise.race([this.deps.bucket.lease(sourceId, limit, now, want), timeout]);
      budget.tokens += lease.granted;
      // Not again before a whole lease could be there (the first token, then
      // want - 1 more): asking sooner would mostly buy single tokens, a round
      // trip each. The shared bucket keeps what refills meanwhile.
      if (lease.granted === 0) budget.deniedUntil = now + lease.retryAfterMs + Math.ceil(((want - 1) * 1000) / limit.requestsPerSecond);
    } catch (err) {
      // NOTE: a lease answered after the timeout is lost to everyone (spent in
      // Redis, never here): the limit errs on the strict side, and only then.
      this.failOpenUntil = now + FAIL_OPEN_MS;
      this.deps.log.warn({ err, sourceId, failOpenMs: FAIL_OPEN_MS }, 'rate_limit_unavailable');
    } finally {
      clearTimeout(timer);
      budget.leasing = null;
    }
  }
}
