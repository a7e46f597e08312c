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
 * After attempt number `attempt` (0-based) failed at `now`: exponential
 * backoff with 30% jitter, at least the destination's Retry-After; give up
 * when the next attempt would fall outside the window that began at `since`.
 */
export function retryDecision(
  policy: RetryPolicy,
  at: { attempt: number; since: number; now: number; retryAfterMs?: number },
  random: () => number = Math.random,
): RetryDecision {
  const delayMs = Math.max(
    at.retryAfterMs ?? 0,
    backoffDelay(at.attempt, { initialMs: policy.initialBackoffMs, maxMs: policy.maxBackoffMs, jitter: 0.3 }, random),
  );
  if (at.now + delayMs - at.since > policy.retryWindowMs) return { kind: 'give-up' };
  return { kind: 'retry', dueAt: at.now + delayMs, delayMs };
}
