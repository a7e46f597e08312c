// The step of the inbound consumer with a publisher and a source lookup as
// plain objects: what a chunk publishes, what it dead-letters, and the look-up
// again of a write key whose source may not have arrived yet.
import type { ConsumedMessage } from '@engage/kafka';
import type { PublishOutcome } from './events.publisher';
import { InboundStep } from './inbound.consumer';
import { WRITE_KEY_HEADER } from './inbound-record';
import type { AcceptedEvent } from './segment-spec';
import type { IngestSource } from './source-auth';

const NOW = Date.parse('2026-01-02T03:04:05.000Z');

function message(
  offset: number,
  call: Record<string, unknown> | string,
  writeKey = 'wk-1',
  appended = NOW,
): ConsumedMessage<Buffer | null> {
  const value = Buffer.from(typeof call === 'string' ? call : JSON.stringify(call));
  return {
    topic: 'engage.events.inbound',
    partition: 0,
    offset: String(offset),
    key: 'u1',
    timestamp: appended,
    headers: { [WRITE_KEY_HEADER]: writeKey },
    value,
    raw: {} as never,
  };
}

function setup(opts: { inFlight?: number; graceMs?: number; msPerLookup?: number } = {}) {
  const sources = new Map<string, IngestSource>([['wk-1', { id: 'src_1', spaceId: 'spa_1', enabled: true }]]);
  let lookups = 0;
  let now = NOW;
  const published: AcceptedEvent[][] = [];
  const step = new InboundStep(
    { unknownWriteKeyGraceMs: opts.graceMs ?? 0 },
    {
      sources: {
        sourceByWriteKey: (k) => {
          lookups++;
          now += opts.msPerLookup ?? 0;
          return sources.get(k);
        },
      },
      publisher: {
        publish: async (events): Promise<PublishOutcome> => {
          published.push(events);
          return { accepted: events.length, duplicates: 0, inFlight: opts.inFlight ?? 0 };
        },
      },
      now: () => now,
    },
  );
  return { step, sources, published, lookups: () => lookups };
}

const track = (i: number) => ({ type: 'track', userId: 'u1', event: 'E', messageId: `m${i}`, properties: { i } });

it('publishes the valid events of a chunk as one request, in offset order, and dead-letters the rest with their reasons', async () => {
  const { step, published } = setup();
  const outcomes = await step.handle([
    message(0, track(0)),
    message(1, '{"nope'),
    message(2, track(2)),
    message(3, track(3), 'wk-nobody', NOW - 60_000),
    message(4, track(4)),
  ]);
  expect(outcomes).toEqual([
    { kind: 'ok' },
    { kind: 'dlq', reason: expect.stringMatching(/^invalid JSON body: /), step: 'ingest-inbound' },
    { kind: 'ok' },
    { kind: 'dlq', reason: 'invalid write key', step: 'ingest-inbound' },
    { kind: 'ok' },
  ]);
  expect(published.map((events) => events.map((e) => [e.key, e.record.message_id, e.record.received_at]))).toEqual([
    [
      ['u1', 'm0', NOW],
      ['u1', 'm2', NOW],
      ['u1', 'm4', NOW],
    ],
  ]);
});

it('throws a retriable error when an event is still being written by another request: the chunk is read again', async () => {
  const { step } = setup({ inFlight: 1 });
  await expect(step.handle([message(0, track(0))])).rejects.toMatchObject({ retriable: true });
});

it('looks an unknown write key up again while its record is within the grace period, and not after', async () => {
  const { step, sources, published, lookups } = setup({ graceMs: 10_000 });
  // Appended long ago: dead-lettered at once, looked up once.
  expect(await step.handle([message(0, track(0), 'wk-new', NOW - 60_000)])).toEqual([
    { kind: 'dlq', reason: 'invalid write key', step: 'ingest-inbound' },
  ]);
  expect(lookups()).toBe(1);
  // Appended just now: its source arrives while the step waits.
  const handled = step.handle([message(1, track(1), 'wk-new')]);
  await new Promise((r) => setImmediate(r));
  sources.set('wk-new', { id: 'src_new', spaceId: 'spa_1', enabled: true });
  expect(await handled).toEqual([{ kind: 'ok' }]);
  expect(published.at(-1)!.map((e) => e.record.source_id)).toEqual(['src_new']);
});

it('waits at most the grace period for a record stamped in the future (a topic without LogAppendTime)', async () => {
  // Each look-up takes a second of the clock.
  const { step, lookups } = setup({ graceMs: 2000, msPerLookup: 1000 });
  expect(await step.handle([message(0, track(0), 'wk-new', NOW + 3_600_000)])).toEqual([
    { kind: 'dlq', reason: 'invalid write key', step: 'ingest-inbound' },
  ]);
  // The first look-up, then one per second until the grace period from the start has passed.
  expect(lookups()).toBe(3);
});
