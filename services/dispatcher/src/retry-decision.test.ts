import { retryDecision } from './retry-decision';

const policy = { retryWindowMs: 4 * 3600 * 1000, initialBackoffMs: 500, maxBackoffMs: 60_000 };
// Jitter pinned: 0 takes 70% of the backoff, 1 all of it.
const low = () => 0;
const high = () => 1;

describe('retryDecision', () => {
  it('backs off exponentially from the first attempt, capped, with up to 30% jitter', () => {
    const at = (attempt: number, random: () => number) => retryDecision(policy, { attempt, since: 0, now: 1000 }, random);
    expect([0, 1, 2, 3].map((a) => at(a, high))).toEqual([
      { kind: 'retry', delayMs: 500, dueAt: 1500 },
      { kind: 'retry', delayMs: 1000, dueAt: 2000 },
      { kind: 'retry', delayMs: 2000, dueAt: 3000 },
      { kind: 'retry', delayMs: 4000, dueAt: 5000 },
    ]);
    expect(at(0, low)).toEqual({ kind: 'retry', delayMs: 350, dueAt: 1350 });
    expect(at(20, high)).toEqual({ kind: 'retry', delayMs: 60_000, dueAt: 61_000 });
  });

  it('comes back when the destination said (Retry-After), whatever the attempt, without jitter', () => {
    const after = (attempt: number, retryAfterMs: number, random: () => number) =>
      retryDecision(policy, { attempt, since: 0, now: 1000, retryAfterMs }, random);
    expect(after(0, 2000, low)).toEqual({ kind: 'retry', delayMs: 2000, dueAt: 3000 });
    expect(after(0, 2000, high)).toEqual({ kind: 'retry', delayMs: 2000, dueAt: 3000 });
    // After a long outage the backoff is at its cap (60 s here): a throttling destination's 2 s is what counts.
    expect(after(20, 2000, low)).toEqual({ kind: 'retry', delayMs: 2000, dueAt: 3000 });
    // A Retry-After longer than the backoff's cap is honoured too.
    expect(after(0, 120_000, low)).toEqual({ kind: 'retry', delayMs: 120_000, dueAt: 121_000 });
    // Retry-After: 0 does not make a tight loop: never sooner than the first backoff.
    expect(after(5, 0, low)).toEqual({ kind: 'retry', delayMs: 500, dueAt: 1500 });
  });

  it('gives up when the next attempt would fall outside the window that began with the first attempt', () => {
    const window = { ...policy, retryWindowMs: 10_000 };
    expect(retryDecision(window, { attempt: 0, since: 0, now: 9_500 }, high)).toEqual({ kind: 'retry', delayMs: 500, dueAt: 10_000 });
    expect(retryDecision(window, { attempt: 0, since: 0, now: 9_501 }, high)).toEqual({ kind: 'give-up' });
    // A Retry-After past the window's end gives up at once rather than waiting for nothing.
    expect(retryDecision(window, { attempt: 0, since: 0, now: 1000, retryAfterMs: 60_000 }, high)).toEqual({ kind: 'give-up' });
  });
});
