// The shared rate limit against the real Redis: the Lua bucket follows the
// pure arithmetic, two limiters (two replicas) together stay within one
// source's budget while rarely asking Redis, and a Redis that does not answer
// lets traffic through. Time is the take() argument throughout: nothing here
// depends on how fast the test runs.
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger, silentLogger } from '@engage/logging';
import { createRedis, Redis, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { RateLimitRepository, type Lease } from './rate-limit.repository';
import { SourceRateLimiter } from './rate-limiter';
import { takeTokens, type BucketState, type RateLimitSettings } from './token-bucket';

const log = silentLogger();
// Two clients: the two "replicas" do not share a connection either.
let redisA: RedisClient;
let redisB: RedisClient;

beforeAll(() => {
  redisA = createRedis({ url: testInfrastructure().redisUrl });
  redisB = createRedis({ url: testInfrastructure().redisUrl });
});
afterAll(async () => {
  await Promise.all([redisA.quit(), redisB.quit()]);
});

/** A RateLimitRepository that counts its round trips. */
class CountingRepository extends RateLimitRepository {
  calls = 0;
  override lease(sourceId: string, limit: RateLimitSettings, now: number, want: number): Promise<Lease> {
    this.calls++;
    return super.lease(sourceId, limit, now, want);
  }
}

const T0 = 1_760_000_000_000;

it('the Redis bucket takes exactly what takeTokens takes', async () => {
  const repo = new RateLimitRepository({ keyPrefix: `${uniqueName('rlua')}.` }, { redis: redisA });
  const limit = { requestsPerSecond: 7, burst: 12 };
  const steps = [
    { now: T0, want: 5 },
    { now: T0, want: 5 },
    { now: T0 + 1, want: 5 },
    { now: T0 + 143, want: 1 }, // 1.001 tokens: one whole
    { now: T0 + 150, want: 3 },
    { now: T0 + 120, want: 1 }, // a replica whose clock is behind
    { now: T0 + 900, want: 4 },
    { now: T0 + 60_000, want: 20 }, // full again: the burst, no more
    { now: T0 + 60_000, want: 1 },
  ];
  let state: BucketState | undefined;
  const expected = steps.map(({ now, want }) => {
    const r = takeTokens(state, limit, now, want);
    state = r.state;
    return { granted: r.granted, retryAfterMs: r.retryAfterMs };
  });
  const got: Lease[] = [];
  for (const { now, want } of steps) got.push(await repo.lease('src_1', limit, now, want));
  expect(got).toEqual(expected);
  expect(got.map((g) => g.granted)).toEqual([5, 5, 2, 1, 0, 0, 4, 12, 0]);
});

describe('two replicas sharing one source', () => {
  const limit = { requestsPerSecond: 100, burst: 50 };
  const leaseMs = 100; // 10 tokens per lease

  function replicas() {
    const keyPrefix = `${uniqueName('rl')}.`;
    return [redisA, redisB].map((redis) => {
      const bucket = new CountingRepository({ keyPrefix }, { redis });
      return { bucket, limiter: new SourceRateLimiter({ leaseMs, redisTimeoutMs: 5000 }, { bucket, log }) };
    });
  }

  it('admit at most burst + rate x elapsed together, and at most 2 leases more in any window', async () => {
    const [a, b] = replicas();
    // 2 s of 800 requests/s, 8 times the rate: 4 at once on each replica every 10 ms.
    const steps = 200;
    const admittedAt: number[] = [];
    const perReplica = [0, 0];
    for (let s = 0; s < steps; s++) {
      const now = T0 + s * 10;
      const decisions = await Promise.all([a!, a!, a!, a!, b!, b!, b!, b!].map((r) => r.limiter.take('src_1', limit, now)));
      decisions.forEach((d, i) => d.ok && perReplica[i < 4 ? 0 : 1]!++);
      admittedAt.push(decisions.filter((d) => d.ok).length);
    }
    const admitted = perReplica[0]! + perReplica[1]!;
    const budget = limit.burst + (limit.requestsPerSecond * (steps - 1) * 10) / 1000; // 249
    expect(admitted).toBeLessThanOrEqual(budget);
    // Not far under it either: each replica strands less than a lease, and the
    // bucket keeps less than a lease's refill while both wait to ask again.
    expect(admitted).toBeGreaterThanOrEqual(budget - 3 * 10);
    expect(perReplica.every((n) => n > 0)).toBe(true);
    // Any window [i, j] of steps: the burst, the window's refill, and the two replicas' leases held into it.
    let worst = -Infinity;
    for (let i = 0; i < steps; i++) {
      let inWindow = 0;
      for (let j = i; j < steps; j++) {
        inWindow += admittedAt[j]!;
        worst = Math.max(worst, inWindow - (limit.burst + (limit.requestsPerSecond * (j - i) * 10) / 1000 + 2 * 10));
      }
    }
    expect(worst).toBeLessThanOrEqual(0);
    // 1600 requests, at most one in ten asked Redis: the rest were answered (mostly 429) from what the replica knew.
    expect(a!.bucket.calls + b!.bucket.calls).toBeLessThanOrEqual(1600 / 10);
  });

  it('below the rate, admit everything at one Redis call per lease', async () => {
    const [a, b] = replicas();
    // 3 requests per 100 ms on each replica for 2 s: 60 requests/s of the 100 allowed.
    const perReplica = [0, 0];
    for (let s = 0; s < 20; s++) {
      for (let k = 0; k < 3; k++) {
        const now = T0 + s * 100 + k;
        const [da, db] = await Promise.all([a!.limiter.take('src_1', limit, now), b!.limiter.take('src_1', limit, now)]);
        if (da.ok) perReplica[0]!++;
        if (db.ok) perReplica[1]!++;
      }
    }
    expect(perReplica).toEqual([60, 60]);
    expect([a!.bucket.calls, b!.bucket.calls]).toEqual([6, 6]);
  });

  it("a 429 says when the shared bucket, not the replica's, has a token again", async () => {
    const [a, b] = replicas();
    // Leases of 1: the replica asks again exactly when the next token is due.
    const small = { requestsPerSecond: 1, burst: 2 };
    expect(await a!.limiter.take('src_1', small, T0)).toEqual({ ok: true });
    expect(await b!.limiter.take('src_1', small, T0)).toEqual({ ok: true });
    expect(await a!.limiter.take('src_1', small, T0 + 250)).toEqual({ ok: false, retryAfterMs: 750 });
    expect(await b!.limiter.take('src_1', small, T0 + 500)).toEqual({ ok: false, retryAfterMs: 500 });
    // Once refilled, either replica gets it, and only one of them.
    const later = await Promise.all([a!.limiter.take('src_1', small, T0 + 1000), b!.limiter.take('src_1', small, T0 + 1000)]);
    expect(later.filter((d) => d.ok)).toHaveLength(1);
  });
});

describe('when Redis fails, the limiter lets traffic through and logs it', () => {
  function capturingLog() {
    const lines: Array<{ msg: string; sourceId?: string }> = [];
    const destination = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    });
    return { lines, log: createLogger({ service: 'test', destination }) };
  }

  /** burst + 4 requests at one instant: past the limit, were it counted. */
  async function takeMany(limiter: SourceRateLimiter) {
    const limit = { requestsPerSecond: 1, burst: 1 };
    const decisions = [];
    for (let i = 0; i < 5; i++) decisions.push(await limiter.take('src_1', limit, T0 + i));
    return decisions;
  }

  it('on an error reply', async () => {
    const bucket = new RateLimitRepository({ keyPrefix: `${uniqueName('rlerr')}.` }, { redis: redisA });
    // Something else wrote the key: every script call on it fails with WRONGTYPE.
    await redisA.set(bucket.key('src_1'), 'not a hash', 'EX', 60);
    const { lines, log } = capturingLog();
    const limiter = new SourceRateLimiter({ leaseMs: 100, redisTimeoutMs: 5000 }, { bucket, log });
    expect(await takeMany(limiter)).toEqual(Array(5).fill({ ok: true }));
    // One failed lease, then no Redis calls for the next second: logged once.
    const failures = lines.filter((l) => l.msg === 'rate_limit_unavailable');
    expect(failures).toEqual([
      expect.objectContaining({ sourceId: 'src_1', err: expect.objectContaining({ message: expect.stringMatching(/WRONGTYPE/) }) }),
    ]);
  });

  it('without an answer within the timeout', async () => {
    // A Redis that hangs: it accepts connections and never answers.
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.resume(); // reads (and drops) commands, so the client's close is seen
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    // NOTE: no ready check or client-info handshake, which would never be answered
    // either: commands go straight to the silent server.
    const hung = new Redis(`redis://127.0.0.1:${port}`, { enableReadyCheck: false, disableClientInfo: true });
    try {
      const { lines, log } = capturingLog();
      const bucket = new RateLimitRepository({ keyPrefix: 'hung.' }, { redis: hung });
      const limiter = new SourceRateLimiter({ leaseMs: 100, redisTimeoutMs: 50 }, { bucket, log });
      expect(await takeMany(limiter)).toEqual(Array(5).fill({ ok: true }));
      expect(lines.filter((l) => l.msg === 'rate_limit_unavailable')).toEqual([
        expect.objectContaining({ sourceId: 'src_1', err: expect.objectContaining({ message: 'no answer from Redis within 50 ms' }) }),
      ]);
    } finally {
      hung.disconnect();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
