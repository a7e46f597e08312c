// The produce path of kafkajs is patched (libs/kafka/patches, applied by
// `npm ci` through patch-package) to write record batches in one pass. These
// tests hold the patched encoder to the wire format itself: every request it
// builds must be byte for byte what a plain encoder written from the Kafka
// protocol guide gives (https://kafka.apache.org/documentation/#recordbatch),
// and the CRC-32C must be the Castagnoli CRC computed bit by bit. The broker
// checks the CRC of every batch it is sent, so the integration tests check it
// again end to end.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Partitioners } from 'kafkajs';
import { waitFor } from '@engage/testing';

/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internal modules have no types */
const produceV3 = require('kafkajs/src/protocol/requests/produce/v3/request') as (args: object) => {
  encode: () => Promise<{ buffer: Buffer }>;
};
const crc32C = require('kafkajs/src/protocol/recordBatch/crc32C') as (b: Buffer) => number;
const groupMessagesPerPartition = require('kafkajs/src/producer/groupMessagesPerPartition') as (
  args: object,
) => Record<string, Array<{ key: string; value: string }>>;
const Long = require('kafkajs/src/utils/long') as { fromNumber: (n: number) => unknown };
const decodeRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (decoder: unknown) => Promise<{
  records: Array<{ offset: string; timestamp: string; key: Buffer | null; value: Buffer | null; headers: Record<string, unknown> }>;
}>;
const Decoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => unknown;
/* eslint-enable @typescript-eslint/no-require-imports */

interface Message {
  key?: string | Buffer | null;
  value: string | Buffer | null;
  timestamp?: string | number;
  headers?: Record<string, string | Buffer | Array<string | Buffer>>;
  partition?: number;
}

// ---- reference encoder, from the protocol guide, written for clarity not speed ----
const int8 = (n: number) => Buffer.from([n & 0xff]);
const int16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const int64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return b;
};
function varlong(n: bigint): Buffer {
  let zigzag = n >= 0n ? n << 1n : (-n << 1n) - 1n;
  const out: number[] = [];
  while (zigzag >= 0x80n) {
    out.push(Number(zigzag & 0x7fn) | 0x80);
    zigzag >>= 7n;
  }
  out.push(Number(zigzag));
  return Buffer.from(out);
}
const varint = (n: number) => varlong(BigInt(n));
const bytesOf = (v: string | Buffer) => (Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8'));
const varBytes = (v: string | Buffer | null | undefined) =>
  v == null ? varint(-1) : Buffer.concat([varint(bytesOf(v).length), bytesOf(v)]);

function crc32cBitwise(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function referenceRecord(m: Message, offsetDelta: number, timestampDelta: number): Buffer {
  const headers: Buffer[] = [];
  for (const [key, value] of Object.entries(m.headers ?? {})) {
    for (const one of Array.isArray(value) ? value : [value]) headers.push(Buffer.concat([varBytes(key), varBytes(one)]));
  }
  const body = Buffer.concat([
    int8(0),
    varlong(BigInt(timestampDelta)),
    varint(offsetDelta),
    varBytes(m.key),
    varBytes(m.value),
    varint(headers.length),
    ...headers,
  ]);
  return Buffer.concat([varint(body.length), body]);
}

function referenceBatch(
  messages: Message[],
  now: number,
  producerId: number,
  producerEpoch: number,
  firstSequence: number,
  baseOffset = 0n,
): Buffer {
  const times = messages.filter((m) => m.timestamp != null).map((m) => Number(m.timestamp));
  const first = times.length ? Math.min(...times) : now;
  const max = times.length ? Math.max(...times) : now;
  const records = messages.map((m, i) => referenceRecord(m, i, (m.timestamp != null ? Number(m.timestamp) : now) - first));
  const afterCrc = Buffer.concat([
    int16(0), // attributes: no compression, create time, not transactional
    int32(messages.length - 1),
    int64(BigInt(first)),
    int64(BigInt(max)),
    int64(BigInt(producerId)),
    int16(producerEpoch),
    int32(firstSequence),
    int32(records.length),
    ...records,
  ]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32cBitwise(afterCrc));
  const batch = Buffer.concat([int32(0), int8(2), crc, afterCrc]); // leader epoch, magic 2
  return Buffer.concat([int64(baseOffset), int32(batch.length), batch]);
}

const string16 = (s: string) => Buffer.concat([int16(Buffer.byteLength(s)), Buffer.from(s)]);

// ---- a deterministic random stream of awkward messages ----
let seed = 7;
const rand = (n: number) => {
  seed = (seed * 48271) % 2147483647;
  return seed % n;
};
function randomMessage(i: number, now: number): Message {
  const m: Message = { value: null };
  const k = rand(4);
  if (k === 1) m.key = `profile-${i}-é`;
  if (k === 2) m.key = randomBytes(rand(200));
  if (k === 3) m.key = null;
  const v = rand(5);
  m.value = v === 0 ? null : v === 1 ? `ünïcode ${'x'.repeat(rand(400))}` : randomBytes(rand(3000));
  const t = rand(4);
  if (t === 1) m.timestamp = String(now - rand(86_400_000));
  if (t === 2) m.timestamp = now + rand(1000);
  if (rand(8) === 0) m.headers = { trace: 'abc', many: ['x', Buffer.from('y')] };
  return m;
}

describe('patched kafkajs produce encoding', () => {
  it('is applied (npm ci runs patch-package)', () => {
    const source = readFileSync(require.resolve('kafkajs/src/protocol/recordBatch/v0/index.js'), 'utf8');
    expect(source).toContain('engage patch');
  });

  it('computes CRC-32C (Castagnoli) like the bitwise definition, at every length and alignment', () => {
    expect(crc32C(Buffer.from('123456789'))).toBe(0xe3069283); // the standard check value
    const data = randomBytes(2100);
    for (let length = 0; length < 70; length++) {
      for (const start of [0, 1, 3, 5]) {
        const slice = data.subarray(start, start + length * 29);
        expect(crc32C(slice)).toBe(crc32cBitwise(slice));
      }
    }
  });

  it('writes produce requests byte for byte as the protocol guide defines them', async () => {
    const now = 1_764_650_000_123;
    const dateNow = jest.spyOn(Date, 'now').mockReturnValue(now);
    try {
      for (let round = 0; round < 60; round++) {
        const producerId = rand(3) === 0 ? -1 : rand(1_000_000_000);
        const producerEpoch = rand(5);
        const partitions = Array.from({ length: 1 + rand(3) }, (_, partition) => ({
          partition,
          firstSequence: rand(100_000),
          messages: Array.from({ length: 1 + rand(round < 5 ? 600 : 120) }, (__, i) => randomMessage(i, now)),
        }));
        const request = produceV3({
          acks: -1,
          timeout: 30_000,
          producerId: Long.fromNumber(producerId),
          producerEpoch,
          topicData: [{ topic: `topic-${round}`, partitions }],
        });
        const actual = (await request.encode()).buffer;
        const expected = Buffer.concat([
          int16(-1), // transactional id: null
          int16(-1), // acks
          int32(30_000),
          int32(1),
          string16(`topic-${round}`),
          int32(partitions.length),
          ...partitions.flatMap((p) => {
            const batch = referenceBatch(p.messages, now, producerId, producerEpoch, p.firstSequence);
            return [int32(p.partition), int32(batch.length), batch];
          }),
        ]);
        expect(actual.equals(expected)).toBe(true);
      }
    } finally {
      dateNow.mockRestore();
    }
  });

  it('decodes records as the protocol guide defines them: offsets and timestamps as decimal strings, beyond 2^53 too', async () => {
    const now = 1_764_650_000_123;
    for (const baseOffset of [0n, 123_456_789_012n, 2n ** 60n + 7n]) {
      for (let round = 0; round < 10; round++) {
        const messages = Array.from({ length: 1 + rand(300) }, (_, i) => randomMessage(i, now));
        if (round === 0) messages.push({ value: 'far future', timestamp: String(2 ** 62) }); // a varlong over 7 bytes
        const { records } = await decodeRecordBatch(new Decoder(referenceBatch(messages, now, -1, 0, 0, baseOffset)));
        const times = messages.filter((m) => m.timestamp != null).map((m) => BigInt(m.timestamp!));
        const first = times.length ? times.reduce((a, b) => (a < b ? a : b)) : BigInt(now);
        expect(records).toHaveLength(messages.length);
        records.forEach((r, i) => {
          const m = messages[i]!;
          expect(r.offset).toBe(String(baseOffset + BigInt(i)));
          // first timestamp + the delta the reference wrote (computed in doubles, as kafkajs does)
          const delta = BigInt((m.timestamp != null ? Number(m.timestamp) : now) - Number(first));
          expect(r.timestamp).toBe(String(first + delta));
          expect(r.key === null ? null : r.key.toString('hex')).toBe(m.key == null ? null : bytesOf(m.key).toString('hex'));
          expect(r.value === null ? null : r.value.toString('hex')).toBe(m.value == null ? null : bytesOf(m.value).toString('hex'));
        });
      }
    }
  });

  it('groups a batch by partition in one pass, keeping each partition in send order', () => {
    const messages = Array.from({ length: 5000 }, (_, i) => ({ key: `k${i % 97}`, value: String(i) }));
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionMetadata = Array.from({ length: 6 }, (_, partitionId) => ({
      partitionId,
      leader: 0,
      partitionErrorCode: 0,
      replicas: [0],
      isr: [0],
    }));
    const grouped = groupMessagesPerPartition({ topic: 't', partitionMetadata, messages, partitioner });
    const all = Object.values(grouped).flat();
    expect(all).toHaveLength(messages.length);
    for (const [partition, list] of Object.entries(grouped)) {
      const order = list.map((m) => Number(m.value));
      expect(order).toEqual([...order].sort((a, b) => a - b));
      for (const m of list) expect(partitioner({ topic: 't', partitionMetadata, message: m })).toBe(Number(partition));
    }
  });
});

// The request queue is patched too (libs/kafka/patches): upstream scheduled a
// check of its pending requests after every response whether any were pending
// or not, 1 ms ahead when not throttled, and every check scheduled the next: a
// timer loop per broker connection for the life of the client (tulios/kafkajs
// issues 1556, 1704). Patched, a check is scheduled only while requests wait.
describe('patched kafkajs request queue', () => {
  /* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internal modules have no types */
  const RequestQueue = require('kafkajs/src/network/requestQueue') as new (args: object) => {
    push(r: { entry: object; expectResponse: boolean; sendRequest: () => void }): void;
    fulfillRequest(r: { correlationId: number; payload: Buffer | null; size: number }): void;
    maybeThrottle(ms: number): void;
    destroy(): void;
    pending: unknown[];
    throttleCheckTimeoutId: unknown;
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
  const logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
  const queueOf = (maxInFlightRequests: number | null) =>
    new RequestQueue({
      maxInFlightRequests,
      requestTimeout: 30_000,
      enforceRequestTimeout: false,
      clientId: 'test',
      broker: 'b:1',
      logger,
    });
  let correlationId = 0;
  /** Pushes a request; `sent` and `answered` say what became of it. */
  const push = (queue: InstanceType<typeof RequestQueue>) => {
    const request = { id: ++correlationId, sent: false, answered: false };
    queue.push({
      entry: {
        correlationId: request.id,
        apiKey: 1,
        apiName: 'Fetch',
        apiVersion: 11,
        resolve: () => (request.answered = true),
        reject: () => {},
      },
      expectResponse: true,
      sendRequest: () => (request.sent = true),
    });
    return request;
  };

  it('is applied (npm ci runs patch-package)', () => {
    expect(readFileSync(require.resolve('kafkajs/src/network/requestQueue/index.js'), 'utf8')).toContain('engage patch');
  });

  it('schedules no check once a response leaves nothing pending (upstream: a 1 ms timer loop)', () => {
    const queue = queueOf(null);
    const request = push(queue);
    expect(request.sent).toBe(true);
    queue.fulfillRequest({ correlationId: request.id, payload: null, size: 0 });
    expect(request.answered).toBe(true);
    expect(queue.pending).toHaveLength(0);
    expect(queue.throttleCheckTimeoutId).toBeNull();
    queue.destroy();
  });

  it('sends a request held by client-side throttling once the throttle ends, then stops checking', async () => {
    const queue = queueOf(null);
    queue.maybeThrottle(50);
    const request = push(queue);
    expect(request.sent).toBe(false);
    expect(queue.throttleCheckTimeoutId).not.toBeNull();
    await waitFor(() => request.sent, { timeoutMs: 5_000, intervalMs: 5, description: 'the throttled request to be sent' });
    queue.fulfillRequest({ correlationId: request.id, payload: null, size: 0 });
    expect(request.answered).toBe(true);
    expect(queue.throttleCheckTimeoutId).toBeNull();
    queue.destroy();
  });

  it('sends a request held by the in-flight limit when a response frees a slot; the check it scheduled runs out', async () => {
    const queue = queueOf(1);
    const first = push(queue);
    const second = push(queue);
    expect([first.sent, second.sent]).toEqual([true, false]);
    queue.fulfillRequest({ correlationId: first.id, payload: null, size: 0 });
    expect(second.sent).toBe(true);
    queue.fulfillRequest({ correlationId: second.id, payload: null, size: 0 });
    expect(queue.pending).toHaveLength(0);
    // The check scheduled while the second request waited fires once, finds nothing, and schedules no other.
    await waitFor(() => queue.throttleCheckTimeoutId === null, {
      timeoutMs: 5_000,
      intervalMs: 5,
      description: 'the pending check to run out',
    });
    queue.destroy();
  });
});
