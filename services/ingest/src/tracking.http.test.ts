// The HTTP shell's answers on its edges, with the publisher, limiter and
// source lookup as plain objects (no infrastructure): what a body nested too
// deep, a call over a per-event limit and a full publisher queue answer.
import { silentLogger } from '@engage/logging';
import { Registry } from 'prom-client';
import { QueueFullError, type PublishOutcome } from './events.publisher';
import type { AcceptedEvent } from './segment-spec';
import { TrackingServer, type TrackingDeps } from './tracking.http';

const WRITE_KEY = 'wk-test';

async function withServer(
  publish: (events: AcceptedEvent[], bytes?: number) => Promise<PublishOutcome>,
  run: (post: (path: string, body: string) => Promise<{ status: number; headers: Headers; body: { message?: string } }>) => Promise<void>,
) {
  const deps: TrackingDeps = {
    sources: { sourceByWriteKey: (k) => (k === WRITE_KEY ? { id: 'src_1', spaceId: 'spa_1', enabled: true } : undefined) },
    limiter: { take: async () => ({ ok: true as const }) },
    publisher: { publish },
    ops: { registry: new Registry() },
    log: silentLogger(),
    newMessageId: () => 'gen-1',
  };
  const server = new TrackingServer(
    { port: 0, host: '127.0.0.1', rateLimit: { requestsPerSecond: 0, burst: 1 }, shutdownGraceMs: 1000 },
    deps,
  );
  const port = await server.start();
  try {
    await run(async (path, body) => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}` },
        body,
      });
      return { status: res.status, headers: res.headers, body: (await res.json()) as { message?: string } };
    });
  } finally {
    await server.stop();
  }
}

const accepted = async (events: AcceptedEvent[]) => ({ accepted: events.length, duplicates: 0, inFlight: 0 });

it('answers 400 naming the nesting limit for a deeply nested body (it was a 500: JSON.stringify overflowed the stack)', async () => {
  await withServer(accepted, async (post) => {
    const deep = `{"userId":"u1","event":"E","properties":{"a":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`;
    expect(deep.length).toBeLessThan(32 * 1024);
    expect(await post('/v1/track', deep)).toMatchObject({
      status: 400,
      body: { message: 'JSON body nests objects and arrays deeper than the 64-level nesting limit' },
    });
    // Depth 64 exactly is fine: the body is level 1, properties level 2.
    const ok = `{"userId":"u1","event":"E","properties":${'{"a":'.repeat(63)}1${'}'.repeat(63)}}`;
    expect((await post('/v1/track', ok)).status).toBe(200);
    // Brackets inside strings are text, not nesting.
    expect((await post('/v1/track', JSON.stringify({ userId: 'u1', event: 'E', properties: { s: '[{'.repeat(100) } }))).status).toBe(200);
  });
});

it('answers 400 naming the limit and the batch item for a call over a per-event limit', async () => {
  await withServer(accepted, async (post) => {
    const traits = Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`t${i}`, i]));
    expect(await post('/v1/identify', JSON.stringify({ userId: 'u1', traits }))).toMatchObject({
      status: 400,
      body: { message: 'traits has 201 keys, over the 200 traits per-call limit' },
    });
    const externalIds = Array.from({ length: 26 }, (_, i) => ({ id: `x${i}`, type: 'crm_id' }));
    const batch = [
      { type: 'track', userId: 'u1', event: 'E' },
      { type: 'track', userId: 'u1', event: 'E', context: { externalIds } },
    ];
    expect(await post('/v1/batch', JSON.stringify({ batch }))).toMatchObject({
      status: 400,
      body: { message: 'batch[1].context.externalIds has 26 entries, over the 25 external ids per-event limit' },
    });
  });
});

it('answers 503 with Retry-After when the publisher queue is full, and hands the publisher the body size', async () => {
  const sizes: Array<number | undefined> = [];
  let full = false;
  const publish = async (events: AcceptedEvent[], bytes?: number) => {
    sizes.push(bytes);
    if (full)
      throw new QueueFullError('ingest queue full (8 events, 800 bytes waiting for Kafka; limits 10 events, 1000 bytes): retry later');
    return accepted(events);
  };
  await withServer(publish, async (post) => {
    const body = JSON.stringify({ userId: 'u1', event: 'E' });
    expect((await post('/v1/track', body)).status).toBe(200);
    full = true;
    const res = await post('/v1/track', body);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(res.body.message).toMatch(/^ingest queue full/);
    expect(sizes).toEqual([body.length, body.length]);
  });
});
