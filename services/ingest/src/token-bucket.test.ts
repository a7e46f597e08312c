import { leaseSize, retryAfterSeconds, takeTokens, type BucketState, type RateLimitSettings } from './token-bucket';

/** Runs `steps` through one bucket; returns what each step got. */
function run(limit: RateLimitSettings, steps: Array<{ now: number; want: number }>) {
  let state: BucketState | undefined;
  return steps.map(({ now, want }) => {
    const r = takeTokens(state, limit, now, want);
    state = r.state;
    return { granted: r.granted, retryAfterMs: r.retryAfterMs };
  });
}

describe('takeTokens', () => {
  it('allows the burst, then one token per 1/rate, with the wait to the next token', () => {
    const t0 = 1_000_000;
    const at = (now: number) => ({ now, want: 1 });
    expect(
      run({ requestsPerSecond: 2, burst: 3 }, [at(t0), at(t0), at(t0), at(t0 + 100), at(t0 + 500), at(t0 + 500), at(t0 + 10_000)]),
    ).toEqual([
      { granted: 1, retryAfterMs: 0 },
      { granted: 1, retryAfterMs: 0 },
      { granted: 1, retryAfterMs: 0 },
      { granted: 0, retryAfterMs: 400 },
      { granted: 1, retryAfterMs: 0 },
      { granted: 0, retryAfterMs: 500 },
      { granted: 1, retryAfterMs: 0 },
    ]);
  });

  it('leases up to `want` whole tokens, what is there when less, and refills no further than the burst', () => {
    const t0 = 5_000;
    expect(
      run({ requestsPerSecond: 100, burst: 25 }, [
        { now: t0, want: 10 },
        { now: t0, want: 10 },
        { now: t0, want: 10 },
        { now: t0, want: 10 },
        { now: t0 + 35, want: 10 }, // 3.5 tokens refilled: 3 whole ones
        { now: t0 + 40, want: 10 }, // 0.5 + 0.5
        { now: t0 + 60_000, want: 30 }, // full again, and no fuller
      ]),
    ).toEqual([
      { granted: 10, retryAfterMs: 0 },
      { granted: 10, retryAfterMs: 0 },
      { granted: 5, retryAfterMs: 0 },
      { granted: 0, retryAfterMs: 10 },
      { granted: 3, retryAfterMs: 0 },
      { granted: 1, retryAfterMs: 0 },
      { granted: 25, retryAfterMs: 0 },
    ]);
  });

  it('never runs time backwards: an earlier `now` refills nothing and waits from the later time', () => {
    const limit = { requestsPerSecond: 10, burst: 1 };
    const first = takeTokens(undefined, limit, 2_000, 1);
    expect(first).toEqual({ state: { tokens: 0, updatedAt: 2_000 }, granted: 1, retryAfterMs: 0 });
    // A replica 30 ms behind: the token is there 100 ms after 2_000, 130 ms after its own now.
    expect(takeTokens(first.state, limit, 1_970, 1)).toEqual({ state: { tokens: 0, updatedAt: 2_000 }, granted: 0, retryAfterMs: 130 });
  });
});

describe('leaseSize', () => {
  it('is leaseMs worth of the rate, at least 1, at most the burst', () => {
    expect([
      leaseSize({ requestsPerSecond: 2000, burst: 4000 }, 100),
      leaseSize({ requestsPerSecond: 2000, burst: 50 }, 100),
      leaseSize({ requestsPerSecond: 0.2, burst: 2 }, 100),
      leaseSize({ requestsPerSecond: 95, burst: 100 }, 100),
      leaseSize({ requestsPerSecond: 100, burst: 0.5 }, 100),
    ]).toEqual([200, 50, 1, 9, 1]);
  });
});

describe('retryAfterSeconds', () => {
  it('rounds up to whole seconds, at least 1', () => {
    expect([0, 1, 999, 1000, 1001].map(retryAfterSeconds)).toEqual([1, 1, 1, 1, 2]);
  });
});
