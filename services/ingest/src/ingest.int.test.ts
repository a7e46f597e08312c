// The ingest as a process (built dist/main.js) against real Kafka, registry and
// Redis: a real Segment client, raw HTTP for the edges, and every accepted
// event read back from engage.events.raw, decoded.
import { gzipSync } from 'node:zlib';
import { Analytics } from '@segment/analytics-node';
import type { RawEvent } from '@engage/schemas';
import { startService, waitFor } from '@engage/testing';
import { DedupeRepository } from './dedupe.repository';
import { post as postTo, sourceConfig as source, startIngestProcess, type IngestProcess } from './testing/ingest-process';

const WRITE_KEY = 'wk-main-0123456789';
const LIMITED_KEY = 'wk-limited-0123456789';
const DISABLED_KEY = 'wk-disabled-0123456789';
const SHARED_KEY = 'wk-shared-0123456789';

let ingest: IngestProcess;
let base: string;

beforeAll(async () => {
  ingest = await startIngestProcess(
    'ingest',
    [
      source('src_main', WRITE_KEY),
      source('src_limited', LIMITED_KEY, { rateLimit: { requestsPerSecond: 0.2, burst: 2 } }),
      source('src_disabled', DISABLED_KEY, { enabled: false }),
      // A token per 100 s: what two calls spend stays spent for the rest of the run.
      source('src_shared', SHARED_KEY, { rateLimit: { requestsPerSecond: 0.01, burst: 2 } }),
    ],
    {
      // Far longer than the test that holds a claim needs to settle it.
      INGEST_DEDUPE_WAIT_MS: '15000',
      // HTTP only (inbound.int.test.ts covers engage.events.inbound): these tests
      // SIGKILL extra replicas, and a killed member of the inbound consumer group
      // holds the next join, and so a SIGTERM during it, for the session timeout.
      INGEST_INBOUND_ENABLED: 'false',
    },
  );
  base = ingest.base;
});

afterAll(async () => {
  await ingest?.close();
});

const post = (
  path: string,
  body: unknown,
  opts: { writeKey?: string | null; headers?: Record<string, string>; raw?: Buffer | string; url?: string } = {},
) => postTo(`${opts.url ?? base}${path}`, body, { ...opts, writeKey: opts.writeKey === undefined ? WRITE_KEY : opts.writeKey });

const byMessageId = (id: string) => ingest.byMessageId(id);
const waitForMessage = (id: string) => ingest.waitForMessage(id);

/** A call as a client put it on the wire. */
interface SentCall {
  type: RawEvent['type'];
  messageId: string;
  timestamp: string;
  userId?: string;
  anonymousId?: string;
  groupId?: string;
  previousId?: string;
  event?: string;
  name?: string;
  category?: string;
  properties?: Record<string, unknown>;
  traits?: Record<string, unknown>;
  context?: { externalIds?: Array<{ id: string; type: string; collection?: string; encoding?: string }> } & Record<string, unknown>;
  integrations?: Record<string, unknown>;
}

/** What the ingest must have written for a call as the client sent it (Segment's fields -> RawEvent). */
function expectedRecord(call: SentCall, batchSentAt: string | undefined, sourceId = 'src_main'): RawEvent {
  return {
    message_id: call.messageId,
    type: call.type,
    space_id: 'spa_ingest',
    source_id: sourceId,
    user_id: call.userId ?? null,
    anonymous_id: call.anonymousId ?? null,
    group_id: call.groupId ?? null,
    previous_id: call.previousId ?? null,
    event: call.type === 'track' ? (call.event ?? null) : null,
    name: call.type === 'page' || call.type === 'screen' ? (call.name ?? null) : null,
    timestamp: Date.parse(call.timestamp),
    sent_at: batchSentAt ? Date.parse(batchSentAt) : null,
    received_at: expect.any(Number) as unknown as number,
    // page/screen category travels in properties (the client already put it there for page).
    properties_json: JSON.stringify(
      (call.type === 'page' || call.type === 'screen') && call.category !== undefined
        ? { ...call.properties, category: call.properties?.category ?? call.category }
        : (call.properties ?? {}),
    ),
    traits_json: JSON.stringify(call.traits ?? {}),
    context_json: JSON.stringify(call.context ?? {}),
    integrations_json: JSON.stringify(call.integrations ?? {}),
    external_ids: (call.context?.externalIds ?? []).map((x) => ({
      type: x.type,
      id: x.id,
      collection: x.collection ?? null,
      encoding: x.encoding ?? null,
    })),
  };
}

describe('with @segment/analytics-node pointed at the ingest', () => {
  it('delivers identify, track, page, screen, group and alias, field for field', async () => {
    const analytics = new Analytics({ writeKey: WRITE_KEY, host: base, flushAt: 6, flushInterval: 200, maxRetries: 0 });
    const sent: Array<{ sentAt: string; call: SentCall }> = [];
    analytics.on('http_request', ({ body }) => {
      const parsed = JSON.parse(body as unknown as string);
      for (const call of parsed.batch) sent.push({ sentAt: parsed.sentAt, call });
    });
    const errors: unknown[] = [];
    analytics.on('error', (err) => errors.push(err));
    const started = Date.now();
    analytics.identify({
      userId: 'user-1',
      anonymousId: 'anon-1',
      traits: { email: 'ada@example.com', plan: 'pro' },
      context: { externalIds: [{ id: 'crm-1', type: 'crm_id', collection: 'users', encoding: 'none' }] },
    });
    analytics.track({ userId: 'user-1', event: 'Order Completed', properties: { total: 42.5, items: [{ sku: 'a' }] } });
    analytics.page({ anonymousId: 'anon-1', name: 'Home', category: 'Docs', properties: { path: '/' } });
    analytics.screen({ userId: 'user-1', name: 'Settings', category: 'Account', properties: { tab: 'privacy' } });
    analytics.group({ userId: 'user-1', groupId: 'acct-1', traits: { name: 'Acme' } });
    analytics.alias({ userId: 'user-1', previousId: 'anon-1' });
    await analytics.closeAndFlush({ timeout: 10000 });
    expect(errors).toEqual([]);
    expect(sent.map((s) => s.call.type)).toEqual(['identify', 'track', 'page', 'screen', 'group', 'alias']);

    for (const { sentAt, call } of sent) {
      const [got] = [await waitForMessage(call.messageId)];
      expect(byMessageId(call.messageId)).toHaveLength(1);
      expect(got.key).toBe(call.userId ?? call.anonymousId);
      expect(got.value).toEqual(expectedRecord(call, sentAt));
      expect(got.value.received_at).toBeGreaterThanOrEqual(started - 1);
      expect(got.value.received_at).toBeLessThanOrEqual(Date.now());
    }
  });

  it('delivers a flush of many events, each once, in batches', async () => {
    const analytics = new Analytics({ writeKey: WRITE_KEY, host: base, flushAt: 100, flushInterval: 200, maxRetries: 0 });
    let requests = 0;
    const ids: string[] = [];
    analytics.on('http_request', ({ body }) => {
      requests++;
      for (const call of JSON.parse(body as unknown as string).batch) ids.push(call.messageId);
    });
    for (let i = 0; i < 1000; i++) analytics.track({ userId: `many-${i % 37}`, event: 'Viewed', properties: { i } });
    await analytics.closeAndFlush({ timeout: 20000 });
    expect(ids).toHaveLength(1000);
    expect(requests).toBeGreaterThanOrEqual(10);
    await waitFor(() => ids.every((id) => byMessageId(id).length > 0), { timeoutMs: 30000, description: '1000 events in Kafka' });
    const got = ids.map((id) => byMessageId(id));
    expect(got.every((g) => g.length === 1)).toBe(true);
    expect(got.map((g) => JSON.parse(g[0]!.value.properties_json).i).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 1000 }, (_, i) => i),
    );
    expect(got.every((g) => g[0]!.key === g[0]!.value.user_id)).toBe(true);
  });
});

describe('the HTTP API directly', () => {
  it('answers every short alias with its call type', async () => {
    const calls: Array<[string, Record<string, unknown>]> = [
      ['/v1/i', { type: 'identify', userId: 'alias-u', messageId: 'alias-i' }],
      ['/v1/t', { userId: 'alias-u', event: 'E', messageId: 'alias-t' }],
      ['/v1/p', { userId: 'alias-u', name: 'P', messageId: 'alias-p' }],
      ['/v1/s', { userId: 'alias-u', name: 'S', messageId: 'alias-s' }],
      ['/v1/g', { userId: 'alias-u', groupId: 'g', messageId: 'alias-g' }],
      ['/v1/a', { userId: 'alias-u', previousId: 'x', messageId: 'alias-a' }],
      ['/v1/b', { batch: [{ type: 'track', userId: 'alias-u', event: 'B', messageId: 'alias-b' }] }],
    ];
    const answers = await Promise.all(calls.map(([path, body]) => post(path, body)));
    expect(answers).toEqual(calls.map(() => ({ status: 200, retryAfter: null, body: { success: true } })));
    const types = await Promise.all(
      ['alias-i', 'alias-t', 'alias-p', 'alias-s', 'alias-g', 'alias-a', 'alias-b'].map(
        async (id) => (await waitForMessage(id)).value.type,
      ),
    );
    expect(types).toEqual(['identify', 'track', 'page', 'screen', 'group', 'alias', 'track']);
  });

  it('authenticates by Basic auth or body writeKey; unknown, missing or disabled keys get 401', async () => {
    expect([
      await post('/v1/track', { userId: 'auth-u', event: 'E', messageId: 'auth-basic' }),
      await post('/v1/track', { userId: 'auth-u', event: 'E', messageId: 'auth-body', writeKey: WRITE_KEY }, { writeKey: null }),
      await post('/v1/track', { userId: 'auth-u', event: 'E', messageId: 'auth-bad' }, { writeKey: 'nope' }),
      await post('/v1/track', { userId: 'auth-u', event: 'E', messageId: 'auth-none' }, { writeKey: null }),
      await post('/v1/track', { userId: 'auth-u', event: 'E', messageId: 'auth-disabled' }, { writeKey: DISABLED_KEY }),
    ]).toEqual([
      { status: 200, retryAfter: null, body: { success: true } },
      { status: 200, retryAfter: null, body: { success: true } },
      { status: 401, retryAfter: null, body: { success: false, message: 'invalid write key' } },
      {
        status: 401,
        retryAfter: null,
        body: { success: false, message: 'missing write key: send Authorization: Basic base64(<writeKey>:) or "writeKey" in the body' },
      },
      { status: 401, retryAfter: null, body: { success: false, message: 'source src_disabled is disabled' } },
    ]);
    await waitForMessage('auth-body');
    await waitForMessage('auth-basic');
  });

  it('rejects bad input with 400 naming the limit or field, and none of it reaches Kafka', async () => {
    const track = (over: Record<string, unknown>) => ({ userId: 'bad-u', event: 'E', ...over });
    const items = (n: number) => Array.from({ length: n }, (_, i) => track({ type: 'track', messageId: `bad-many-${i}` }));
    expect([
      await post('/v1/track', track({ messageId: 'bad-big', properties: { blob: 'x'.repeat(40_000) } })),
      await post('/v1/batch', { batch: items(2501) }),
      await post('/v1/batch', {
        batch: items(1)
          .map((x) => ({ ...x, properties: { blob: 'x'.repeat(30_000) } }))
          .concat(Array(20).fill({ ...items(1)[0], properties: { blob: 'y'.repeat(30_000) } })),
      }),
      await post('/v1/track', null, { raw: '{"userId": "bad-u", "event": ' }),
      await post('/v1/track', { userId: 'bad-u', messageId: 'bad-noevent' }),
      await post('/v1/group', { userId: 'bad-u', messageId: 'bad-nogroup' }),
      await post('/v1/alias', { userId: 'bad-u', messageId: 'bad-noprev' }),
      await post('/v1/identify', { traits: {}, messageId: 'bad-noid' }),
      await post('/v1/track', track({ messageId: 'bad-ts', timestamp: '01/02/2026' })),
      await post('/v1/identify', { userId: 'bad-u', messageId: 'bad-xid', context: { externalIds: [{ id: 'x' }] } }),
      await post('/v1/batch', {
        batch: [track({ type: 'track', messageId: 'bad-b0' }), { type: 'track', userId: 'bad-u', messageId: 'bad-b1' }],
      }),
    ]).toEqual([
      {
        status: 400,
        retryAfter: null,
        body: {
          success: false,
          message: expect.stringMatching(/^event is 400\d\d bytes, over the 32 KB \(32768 bytes\) per-event limit$/),
        },
      },
      { status: 400, retryAfter: null, body: { success: false, message: 'batch has 2501 events, over the 2500 events per-batch limit' } },
      {
        status: 400,
        retryAfter: null,
        body: {
          success: false,
          message: expect.stringMatching(/^batch is 63\d{4} bytes, over the 500 KB \(512000 bytes\) per-batch limit$/),
        },
      },
      { status: 400, retryAfter: null, body: { success: false, message: expect.stringMatching(/^invalid JSON body: /) } },
      { status: 400, retryAfter: null, body: { success: false, message: 'event is required for track calls' } },
      { status: 400, retryAfter: null, body: { success: false, message: 'groupId is required for group calls' } },
      { status: 400, retryAfter: null, body: { success: false, message: 'previousId is required for alias calls' } },
      { status: 400, retryAfter: null, body: { success: false, message: 'userId or anonymousId is required' } },
      { status: 400, retryAfter: null, body: { success: false, message: 'timestamp is not an ISO 8601 date-time: "01/02/2026"' } },
      { status: 400, retryAfter: null, body: { success: false, message: 'context.externalIds[0].type is required' } },
      { status: 400, retryAfter: null, body: { success: false, message: 'batch[1].event is required for track calls' } },
    ]);
    // A good call sent after them arrives; none of the bad ones did.
    expect(await post('/v1/track', track({ userId: 'good-after-bad', messageId: 'good-after-bad' }))).toEqual({
      status: 200,
      retryAfter: null,
      body: { success: true },
    });
    await waitForMessage('good-after-bad');
    expect(ingest.received.filter((r) => r.value.user_id === 'bad-u')).toEqual([]);
  });

  it('accepts gzip request bodies', async () => {
    const body = gzipSync(
      JSON.stringify({ batch: [{ type: 'track', userId: 'gz-u', event: 'Zipped', messageId: 'gz-1', properties: { n: 1 } }] }),
    );
    expect(await post('/v1/batch', null, { raw: body, headers: { 'content-encoding': 'gzip' } })).toEqual({
      status: 200,
      retryAfter: null,
      body: { success: true },
    });
    expect(JSON.parse((await waitForMessage('gz-1')).value.properties_json)).toEqual({ n: 1 });
    expect(await post('/v1/batch', null, { raw: Buffer.from('not gzip'), headers: { 'content-encoding': 'gzip' } })).toEqual({
      status: 400,
      retryAfter: null,
      body: { success: false, message: expect.stringMatching(/^invalid gzip body: /) },
    });
    // The 32 KB limit holds for the decompressed size, whatever the compressed one.
    const bomb = gzipSync(JSON.stringify({ userId: 'gz-u', event: 'E', properties: { blob: 'z'.repeat(100_000) } }));
    expect(bomb.length).toBeLessThan(2000);
    expect(await post('/v1/track', null, { raw: bomb, headers: { 'content-encoding': 'gzip' } })).toEqual({
      status: 400,
      retryAfter: null,
      body: { success: false, message: 'event is over the 32 KB (32768 bytes) per-event limit' },
    });
  });

  it('accepts and drops a duplicate messageId from the same source, in separate requests and within one batch', async () => {
    const call = { userId: 'dup-u', event: 'Dup', messageId: 'dup-1' };
    expect((await post('/v1/track', call)).status).toBe(200);
    expect((await post('/v1/track', { ...call, properties: { second: true } })).status).toBe(200);
    expect(
      (
        await post('/v1/batch', {
          batch: [
            { ...call, type: 'track' },
            { type: 'track', userId: 'dup-u', event: 'Dup', messageId: 'dup-2' },
            { type: 'track', userId: 'dup-u', event: 'Dup', messageId: 'dup-2' },
          ],
        })
      ).status,
    ).toBe(200);
    expect((await post('/v1/track', { userId: 'dup-u', event: 'Sentinel', messageId: 'dup-sentinel' })).status).toBe(200);
    await waitForMessage('dup-sentinel');
    await waitForMessage('dup-2');
    expect([byMessageId('dup-1').length, byMessageId('dup-2').length]).toEqual([1, 1]);
    expect(byMessageId('dup-1')[0]!.value.properties_json).toBe('{}');
  });

  it('waits for a duplicate whose first copy is still being written: dropped once it is written, written once it failed', async () => {
    // Another request or replica has claimed these two and is writing them.
    const other = new DedupeRepository({ keyPrefix: ingest.prefix, ttlSeconds: 600, pendingTtlMs: 30_000 }, { redis: ingest.redis });
    const keys = ['held-1', 'held-2'].map((messageId) => ({ sourceId: 'src_main', messageId }));
    const [writtenThere, failedThere] = [await other.claim(keys.slice(0, 1)), await other.claim(keys.slice(1))];
    expect([...writtenThere.results, ...failedThere.results]).toEqual(['new', 'new']);
    const answers = Promise.all(keys.map((k) => post('/v1/track', { userId: 'held-u', event: 'E', messageId: k.messageId })));
    await waitFor(async () => /^ingest_events_waiting(\{[^}]*\})? 2$/m.test(await (await fetch(`${base}/metrics`)).text()), {
      timeoutMs: 10000,
      description: 'both events waiting',
    });
    // held-1's other copy was written (confirmed); held-2's send failed (released).
    await other.confirm(writtenThere);
    await other.release(failedThere);
    expect(await answers).toEqual([
      { status: 200, retryAfter: null, body: { success: true } },
      { status: 200, retryAfter: null, body: { success: true } },
    ]);
    // Same key, same partition: once the sentinel is read, so is everything written before it.
    expect((await post('/v1/track', { userId: 'held-u', event: 'E', messageId: 'held-sentinel' })).status).toBe(200);
    await waitForMessage('held-sentinel');
    expect([byMessageId('held-1').length, byMessageId('held-2').length]).toEqual([0, 1]);
  });

  it('limits a source to its configured rate: 429 with Retry-After', async () => {
    const call = (i: number) => post('/v1/track', { userId: 'rl-u', event: 'E', messageId: `rl-${i}` }, { writeKey: LIMITED_KEY });
    const answers = [await call(1), await call(2), await call(3)];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 429]);
    expect(answers[2]).toEqual({
      status: 429,
      retryAfter: expect.stringMatching(/^[1-5]$/),
      body: { success: false, message: 'rate limit of 0.2 requests per second for source src_limited exceeded' },
    });
    // Another source is not affected.
    expect((await post('/v1/track', { userId: 'rl-u', event: 'E', messageId: 'rl-other' })).status).toBe(200);
  });

  it("shares a source's rate across replicas", async () => {
    const call = (url: string, i: number) =>
      post('/v1/track', { userId: 'shared-u', event: 'E', messageId: `shared-${i}` }, { writeKey: SHARED_KEY, url });
    expect([(await call(base, 1)).status, (await call(base, 2)).status]).toEqual([200, 200]);
    // A second replica finds the burst spent: with a bucket per replica it would admit two more.
    const second = startService('ingest', ingest.env);
    try {
      const other = `http://127.0.0.1:${await second.port()}`;
      expect(await call(other, 3)).toEqual({
        status: 429,
        retryAfter: expect.stringMatching(/^\d+$/),
        body: { success: false, message: 'rate limit of 0.01 requests per second for source src_shared exceeded' },
      });
    } finally {
      await second.stop('SIGKILL');
    }
  });

  it('on SIGTERM answers the requests it has and writes their events before exiting 0', async () => {
    const second = startService('ingest', ingest.env);
    try {
      const url = `http://127.0.0.1:${await second.port()}/v1/track`;
      const send = (i: number) =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}` },
          body: JSON.stringify({ userId: 'term-u', event: 'E', messageId: `term-${i}` }),
        }).then(
          (r) => r.status,
          () => 'failed',
        );
      expect(await send(0)).toBe(200);
      const answers = Array.from({ length: 200 }, (_, i) => send(i + 1));
      // Terminate while the wave is being answered: some requests are mid-flight in the ingest.
      await Promise.race(answers);
      second.child.kill('SIGTERM');
      const statuses = [200, ...(await Promise.all(answers))];
      expect(await second.exited).toBe(0);
      expect(second.logs.filter((l) => l.msg === 'component_stop_failed')).toEqual([]);
      // Every request either got a 200 (and its event is in Kafka) or failed to connect: no 5xx, nothing lost.
      expect(statuses.filter((s) => s !== 200 && s !== 'failed')).toEqual([]);
      const ok = statuses.flatMap((s, i) => (s === 200 ? [`term-${i}`] : []));
      expect(ok.length).toBeGreaterThan(1);
      await waitFor(() => ok.every((id) => byMessageId(id).length === 1), {
        timeoutMs: 20000,
        description: `${ok.length} answered events in Kafka`,
      });
    } finally {
      await second.stop('SIGKILL');
    }
  });

  it('a 200 means the event is in Kafka: it survives killing the process right after', async () => {
    expect(await post('/v1/track', { userId: 'durable-u', event: 'E', messageId: 'durable-1' })).toEqual({
      status: 200,
      retryAfter: null,
      body: { success: true },
    });
    await ingest.proc.stop('SIGKILL');
    expect((await waitForMessage('durable-1')).value.user_id).toBe('durable-u');
  });
});
