// Per-source request rate limit: a token bucket per source in this process's
// memory, time as an argument. The source's `rateLimit` from engage.config
// wins over the service default.
// NOTE: per replica, not shared: with N replicas behind a load balancer a
// source gets up to N x its rate. Kept local on purpose: a shared bucket would
// add a Redis round trip to every request, the hot path of the whole system.

export interface RateLimitSettings {
  requestsPerSecond: number;
  burst: number;
}

export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number };

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export class SourceRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  /** Takes one token from `sourceId`'s bucket at time `now` (epoch ms). */
  take(sourceId: string, limit: RateLimitSettings, now: number): RateDecision {
    const burst = Math.max(1, limit.burst);
    const rate = limit.requestsPerSecond;
    if (!(rate > 0)) return { ok: true };
    let bucket = this.buckets.get(sourceId);
    if (!bucket) {
      bucket = { tokens: burst, updatedAt: now };
      this.buckets.set(sourceId, bucket);
    }
    const elapsed = Math.max(0, now - bucket.updatedAt);
    bucket.tokens = Math.min(burst, bucket.tokens + (elapsed * rate) / 1000);
    bucket.updatedAt = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) * 1000) / rate) };
  }
}

/** Retry-After is in whole seconds (RFC 9110); never 0, which clients read as "now". */
export const retryAfterSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));
