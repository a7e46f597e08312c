// Token-bucket arithmetic, pure: time is an argument. The shared per-source
// bucket in Redis (rate-limit.repository.ts) runs these same steps in Lua, and
// the replicas' limiter (rate-limiter.ts) sizes its leases here.

export interface RateLimitSettings {
  requestsPerSecond: number;
  burst: number;
}

export interface BucketState {
  tokens: number;
  /** Epoch ms the tokens were counted at. */
  updatedAt: number;
}

export interface TakeResult {
  state: BucketState;
  /** Whole tokens taken, 0..want. */
  granted: number;
  /** When nothing was granted: ms from `now` until one token is there; else 0. */
  retryAfterMs: number;
}

/**
 * Takes up to `want` whole tokens at `now` (epoch ms); a missing bucket is full.
 * NOTE: time never runs backwards: a `now` before the last update (a replica
 * whose clock is a little behind another's) refills nothing, and its wait is
 * counted from the later time.
 * `requestsPerSecond` must be > 0 (0 means "no limit" and never gets here).
 */
export function takeTokens(state: BucketState | undefined, limit: RateLimitSettings, now: number, want: number): TakeResult {
  const rate = limit.requestsPerSecond;
  const burst = Math.max(1, limit.burst);
  let tokens = state ? state.tokens : burst;
  let updatedAt = state ? state.updatedAt : now;
  if (now > updatedAt) {
    tokens += ((now - updatedAt) * rate) / 1000;
    updatedAt = now;
  }
  tokens = Math.min(burst, tokens);
  const granted = Math.max(0, Math.min(want, Math.floor(tokens)));
  tokens -= granted;
  const retryAfterMs = granted > 0 ? 0 : Math.ceil(updatedAt - now + ((1 - tokens) * 1000) / rate);
  return { state: { tokens, updatedAt }, granted, retryAfterMs };
}

/**
 * Tokens a replica takes from the shared bucket at once: `leaseMs` worth of
 * the rate, at least 1, at most the burst. Each replica may hold up to this
 * many unspent, which bounds the overshoot across replicas in any window.
 */
export function leaseSize(limit: RateLimitSettings, leaseMs: number): number {
  return Math.max(1, Math.min(Math.floor(Math.max(1, limit.burst)), Math.floor((limit.requestsPerSecond * leaseMs) / 1000)));
}

/** Retry-After is in whole seconds (RFC 9110); never 0, which clients read as "now". */
export const retryAfterSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));
