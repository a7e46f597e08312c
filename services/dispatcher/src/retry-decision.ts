// When a call that got a retriable answer is tried again: pure (clock and
// jitter are arguments), so the policy is unit-tested without waiting.
import { backoffDelay } from '@engage/kafka';

export interface RetryPolicy {
  /** How long after its first attempt a call may still be retried (ms). */
  retryWindowMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

export type RetryDecision = { kind: 'retry'; dueAt: number; delayMs: number } | { kind: 'give-up' };

/**
 * After attempt number `attempt` (0-based) failed at `now`: when the
 * destination said when to come back (Retry-After), then (never earlier than
 * initialBackoffMs); otherwise exponential backoff with 30%
 * jitter. Give up when the next attempt would fall outside the window that
 * began at `since`.
 * NOTE: a Retry-After replaces the backoff, it does not add to it (as
 * Segment's own libraries honour it): after a long outage the backoff is at
 * its cap (a minute by default), and a destination that is back but
 * throttling for a few seconds would otherwise get its calls a minute later.
 * The destination's token bucket (rate-limiter.ts) still spreads those
 * retries at its rate when many come back at once.
 */
export function retryDecision(
  policy: RetryPolicy,
  at: { attempt: number; since: number; now: number; retryAfterMs?: number },
  random: () => number = Math.random,
): RetryDecision {
  const delayMs =
    at.retryAfterMs !== undefined
      ? Math.max(at.retryAfterMs, policy.initialBackoffMs)
      : backoffDelay(at.attempt, { initialMs: policy.initialBackoffMs, maxMs: policy.maxBackoffMs, jitter: 0.3 }, random);
  if (at.now + delayMs - at.since > policy.retryWindowMs) return { kind: 'give-up' };
  return { kind: 'retry', dueAt: at.now + delayMs, delayMs };
}
