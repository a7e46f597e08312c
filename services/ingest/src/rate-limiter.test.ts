import { retryAfterSeconds, SourceRateLimiter } from './rate-limiter';

describe('SourceRateLimiter', () => {
  it('allows the burst, then one request per 1/rate, per source, with the wait to the next token', () => {
    const limiter = new SourceRateLimiter();
    const limit = { requestsPerSecond: 2, burst: 3 };
    const t0 = 1_000_000;
    const seen = [
      limiter.take('a', limit, t0),
      limiter.take('a', limit, t0),
      limiter.take('a', limit, t0),
      limiter.take('a', limit, t0 + 100),
      limiter.take('b', limit, t0 + 100),
      limiter.take('a', limit, t0 + 500),
      limiter.take('a', limit, t0 + 500),
      limiter.take('a', limit, t0 + 10_000),
    ];
    expect(seen).toEqual([
      { ok: true },
      { ok: true },
      { ok: true },
      { ok: false, retryAfterMs: 400 },
      { ok: true },
      { ok: true },
      { ok: false, retryAfterMs: 500 },
      { ok: true },
    ]);
  });

  it('does not limit when the rate is 0', () => {
    const limiter = new SourceRateLimiter();
    expect(Array.from({ length: 5 }, () => limiter.take('a', { requestsPerSecond: 0, burst: 1 }, 0))).toEqual(Array(5).fill({ ok: true }));
  });

  it('rounds Retry-After up to whole seconds, at least 1', () => {
    expect([0, 1, 999, 1000, 1001].map(retryAfterSeconds)).toEqual([1, 1, 1, 1, 2]);
  });
});
