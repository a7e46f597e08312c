import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import { silentLogger } from '@engage/logging';
import { stillTrueFor, testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import {
  BatchConsumer,
  createKafka,
  createProducer,
  DeadLetterWriter,
  DLQ_HEADERS,
  dlq,
  ensureTopics,
  ok,
  type ConsumedMessage,
  type Producer,
} from './index';

const log = silentLogger();
let kafka: Kafka;
let producer: Producer;

beforeAll(async () => {
  kafka = createKafka({ brokers: testInfrastructure().kafkaBrokers, clientId: 'batch-consumer-test' }, { log });
  producer = createProducer(kafka);
  await producer.connect();
});
afterAll(() => producer.disconnect());

async function freshTopic(partitions = 3) {
  const topic = uniqueName('test.consumer');
  await ensureTopics(kafka, [
    { name: topic, partitions, config: {} },
    { name: `${topic}.dlq`, partitions: 1, config: {} },
  ]);
  return topic;
}

async function readAll(topic: string, count: number) {
  const seen: Array<{ key: string | null; value: string; headers: Record<string, string> }> = [];
  const consumer = kafka.consumer({ groupId: uniqueName('reader') });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
      seen.push({ key: message.key?.toString() ?? null, value: message.value?.toString() ?? '', headers });
    },
  });
  await waitFor(() => seen.length >= count, { description: `${count} messages on ${topic}` });
  await consumer.disconnect();
  return seen;
}

describe('BatchConsumer against a real broker', () => {
  it('hands chunks of one partition in offset order and consumes everything once', async () => {
    const topic = await freshTopic();
    const messages = Array.from({ length: 300 }, (_, i) => ({ key: `profile-${i % 7}`, value: String(i) }));
    await producer.send({ topic, messages });

    const perKey = new Map<string, number[]>();
    const chunkSizes: number[] = [];
    const consumer = new BatchConsumer<string>(
      { groupId: uniqueName('g'), topics: [topic], fromBeginning: true, chunkSize: 25 },
      {
        kafka,
        log,
        step: 'test',
        deadLetters: new DeadLetterWriter({ topic: `${topic}.dlq` }, { producer }),
        decode: (m) => m.value!.toString(),
        handle: async (chunk: Array<ConsumedMessage<string>>) => {
          chunkSizes.push(chunk.length);
          for (const m of chunk) perKey.set(m.key!, [...(perKey.get(m.key!) ?? []), Number(m.value)]);
          return chunk.map(() => ok);
        },
      },
    );
    await consumer.start();
    await waitFor(() => [...perKey.values()].reduce((n, v) => n + v.length, 0) >= 300, { description: '300 handled' });
    await consumer.stop();

    expect([...perKey.values()].flat().sort((a, b) => a - b)).toEqual(messages.map((_, i) => i));
    // Per-key order is the production order.
    for (const [key, values] of perKey) expect(values).toEqual(messages.map((m, i) => (m.key === key ? i : -1)).filter((i) => i >= 0));
    expect(Math.max(...chunkSizes)).toBeLessThanOrEqual(25);
  });

  it('with coalescePartitions, the partitions of one fetch reach the handler together, each in offset order; a poison record is isolated within its own partition', async () => {
    const topic = await freshTopic(3);
    // Keys spread over the three partitions (murmur2 of the key); 17 is the poison record.
    const messages = Array.from({ length: 60 }, (_, i) => ({ key: `profile-${i % 9}`, value: String(i) }));
    await producer.send({ topic, messages });

    const calls: Array<Array<{ partition: number; offset: number }>> = [];
    const handled = new Map<string, number[]>();
    const consumer = new BatchConsumer<number>(
      {
        groupId: uniqueName('g'),
        topics: [topic],
        fromBeginning: true,
        chunkSize: 100,
        partitionsConsumedConcurrently: 3,
        coalescePartitions: true,
        maxAttempts: 2,
        retryBackoffMs: 10,
      },
      {
        kafka,
        log,
        step: 'coalesced',
        deadLetters: new DeadLetterWriter({ topic: `${topic}.dlq` }, { producer }),
        decode: (m) => Number(m.value!.toString()),
        handle: async (chunk) => {
          calls.push(chunk.map((m) => ({ partition: m.partition, offset: Number(m.offset) })));
          if (chunk.some((m) => m.value === 17)) throw new Error('record 17 cannot be handled');
          for (const m of chunk) handled.set(m.key!, [...(handled.get(m.key!) ?? []), m.value]);
          return chunk.map(() => ok);
        },
      },
    );
    await consumer.start();
    const letters = await readAll(`${topic}.dlq`, 1);
    await waitFor(() => [...handled.values()].reduce((n, v) => n + v.length, 0) >= 59, { description: '59 handled' });
    await consumer.stop();

    // The first fetch brought all three partitions: one call held them all.
    expect(new Set(calls[0]!.map((m) => m.partition)).size).toBe(3);
    for (const call of calls)
      for (const p of new Set(call.map((m) => m.partition))) {
        const offsets = call.filter((m) => m.partition === p).map((m) => m.offset);
        expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
      }
    // Everything but 17 handled, per key in production order; 17 alone dead-lettered.
    for (const [key, values] of handled) expect(values).toEqual(messages.flatMap((m, i) => (m.key === key && i !== 17 ? [i] : [])));
    expect([...handled.values()].flat()).toHaveLength(59);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ key: 'profile-8', value: '17' });
    expect(letters[0]!.headers[DLQ_HEADERS.reason]).toBe('failed 2 times: record 17 cannot be handled');
  });

  it('dead-letters an undecodable message and a rejected one with their reasons, and goes on', async () => {
    const topic = await freshTopic(1);
    await producer.send({
      topic,
      messages: [
        { key: 'a', value: '1' },
        { key: 'b', value: 'not-a-number' },
        { key: 'c', value: '3' },
        { key: 'd', value: '-4' },
        { key: 'e', value: '5' },
      ],
    });
    const handled: number[] = [];
    const consumer = new BatchConsumer<number>(
      { groupId: uniqueName('g'), topics: [topic], fromBeginning: true },
      {
        kafka,
        log,
        step: 'sum',
        deadLetters: new DeadLetterWriter({ topic: `${topic}.dlq` }, { producer }),
        decode: (m) => {
          const n = Number(m.value!.toString());
          if (Number.isNaN(n)) throw new Error(`value '${m.value}' is not a number`);
          return n;
        },
        handle: async (chunk) =>
          chunk.map((m) => {
            if (m.value < 0) return dlq(`negative value ${m.value} (limit: >= 0)`);
            handled.push(m.value);
            return ok;
          }),
      },
    );
    await consumer.start();
    const letters = await readAll(`${topic}.dlq`, 2);
    await waitFor(() => handled.length === 3, { description: 'three good messages' });
    await consumer.stop();

    expect(handled).toEqual([1, 3, 5]);
    expect(
      letters.map((l) => ({
        key: l.key,
        value: l.value,
        reason: l.headers[DLQ_HEADERS.reason],
        step: l.headers[DLQ_HEADERS.step],
        offset: l.headers[DLQ_HEADERS.sourceOffset],
      })),
    ).toEqual([
      { key: 'b', value: 'not-a-number', reason: "undecodable: value 'not-a-number' is not a number", step: 'decode', offset: '1' },
      { key: 'd', value: '-4', reason: 'negative value -4 (limit: >= 0)', step: 'sum', offset: '3' },
    ]);
  });

  it('loses nothing when a consumer is killed mid-batch: the rest is redelivered after restart', async () => {
    const topic = await freshTopic(1);
    const groupId = uniqueName('g');
    await producer.send({ topic, messages: Array.from({ length: 100 }, (_, i) => ({ key: 'k', value: String(i) })) });
    const outFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'engage-')), 'handled.txt');
    fs.writeFileSync(outFile, '');

    const child = spawn(process.execPath, [path.join(__dirname, '../test-fixtures/hanging-consumer.js'), topic, groupId, outFile, '55'], {
      env: process.env,
      stdio: 'inherit',
    });
    await waitFor(() => fs.readFileSync(outFile, 'utf8').includes('HANG'), {
      timeoutMs: 60000,
      description: 'the child to reach message 55',
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const handledByChild = fs
      .readFileSync(outFile, 'utf8')
      .split('\n')
      .filter((l) => /^\d+$/.test(l))
      .map(Number);
    expect(handledByChild).toEqual(Array.from({ length: 50 }, (_, i) => i));

    const handledAfterRestart: number[] = [];
    const consumer = new BatchConsumer<string>(
      { groupId, topics: [topic], fromBeginning: true, chunkSize: 10, sessionTimeoutMs: 6000 },
      {
        kafka,
        log,
        step: 'test',
        deadLetters: new DeadLetterWriter({ topic: `${topic}.dlq` }, { producer }),
        decode: (m) => m.value!.toString(),
        handle: async (chunk) => {
          handledAfterRestart.push(...chunk.map((m) => Number(m.value)));
          return chunk.map(() => ok);
        },
      },
    );
    await consumer.start();
    await waitFor(() => handledAfterRestart.includes(99), { timeoutMs: 60000, description: 'message 99 after restart' });
    await consumer.stop();

    // At least once: the union is everything; the hung chunk (50..59) and all after it came again.
    const union = new Set([...handledByChild, ...handledAfterRestart]);
    expect([...union].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(handledAfterRestart.slice(-50)).toEqual(Array.from({ length: 50 }, (_, i) => 50 + i));
  });

  it('a record the handler throws on is retried a bounded number of times, then dead-lettered with the error; the partition goes on in order', async () => {
    const topic = await freshTopic(1);
    await producer.send({ topic, messages: Array.from({ length: 40 }, (_, i) => ({ key: `k${i % 3}`, value: String(i) })) });
    const handled: number[] = [];
    const triesOf17 = { n: 0 };
    const consumer = new BatchConsumer<number>(
      { groupId: uniqueName('g'), topics: [topic], fromBeginning: true, chunkSize: 16, maxAttempts: 2, retryBackoffMs: 10 },
      {
        kafka,
        log,
        step: 'poison',
        deadLetters: new DeadLetterWriter({ topic: `${topic}.dlq` }, { producer }),
        decode: (m) => Number(m.value!.toString()),
        // All or nothing per call, like a handler whose one sendBatch is refused (MESSAGE_TOO_LARGE).
        handle: async (chunk) => {
          if (chunk.some((m) => m.value === 17)) {
            triesOf17.n++;
            throw Object.assign(new Error('The request included a message larger than the max message size the server will accept'), {
              name: 'KafkaJSProtocolError',
              retriable: false,
            });
          }
          handled.push(...chunk.map((m) => m.value));
          return chunk.map(() => ok);
        },
      },
    );
    await consumer.start();
    const letters = await readAll(`${topic}.dlq`, 1);
    await waitFor(() => handled.includes(39), { description: 'the rest of the partition handled' });
    expect(consumer.healthcheck()).toEqual({ ok: true });
    await consumer.stop();

    expect(handled).toEqual(Array.from({ length: 40 }, (_, i) => i).filter((i) => i !== 17));
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ key: 'k2', value: '17' });
    expect(letters[0]!.headers[DLQ_HEADERS.reason]).toBe(
      'failed 2 times: The request included a message larger than the max message size the server will accept',
    );
    expect(letters[0]!.headers[DLQ_HEADERS.step]).toBe('poison');
    // Bounded: 2 attempts at the chunk and at each half that holds it (16 -> 8 -> 4 -> 2 -> 1).
    expect(triesOf17.n).toBe(10);
  });

  it('an infrastructure error is never dead-lettered: the records wait, /healthz reports the stall, and they are handled once it clears', async () => {
    const topic = await freshTopic(1);
    await producer.send({ topic, messages: [0, 1, 2].map((i) => ({ key: 'k', value: String(i) })) });
    let redisDown = true;
    const handled: number[] = [];
    const consumer = new BatchConsumer<number>(
      { groupId: uniqueName('g'), topics: [topic], fromBeginning: true, maxAttempts: 2, retryBackoffMs: 10, stallAfterMs: 500 },
      {
        kafka,
        log,
        step: 'infra',
        deadLetters: new DeadLetterWriter({ topic: `${topic}.dlq` }, { producer }),
        decode: (m) => Number(m.value!.toString()),
        handle: async (chunk) => {
          if (redisDown) throw new Error('Connection is closed.');
          handled.push(...chunk.map((m) => m.value));
          return chunk.map(() => ok);
        },
      },
    );
    await consumer.start();
    const stalled = await waitFor(() => (consumer.healthcheck().ok ? undefined : consumer.healthcheck()), {
      timeoutMs: 60000,
      description: '/healthz to report the stall',
    });
    expect(stalled.detail).toMatch(new RegExp(`no progress for \\d+ s with records waiting on ${topic.replace(/\./g, '\\.')}:0`));
    redisDown = false;
    await waitFor(() => handled.length === 3, { timeoutMs: 60000, description: 'the records handled once Redis is back' });
    await waitFor(() => consumer.healthcheck().ok, { description: 'healthy again' });
    await consumer.stop();
    expect(handled).toEqual([0, 1, 2]);
    // Nothing went to the DLQ: its only record is a marker written now.
    await producer.send({ topic: `${topic}.dlq`, messages: [{ key: 'marker', value: 'end' }] });
    expect((await readAll(`${topic}.dlq`, 1)).map((l) => l.key)).toEqual(['marker']);
  });

  it('with a write-behind handler, offsets are committed only once its work is durable; stop() flushes and commits first', async () => {
    const topic = await freshTopic(1);
    await producer.send({ topic, messages: Array.from({ length: 40 }, (_, i) => ({ key: 'k', value: String(i) })) });
    const groupId = uniqueName('g');
    const admin = kafka.admin();
    await admin.connect();
    const committed = async () => Number((await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions[0]!.offset);
    /** What the handler has seen but not made durable, and the waiters of the next flush. */
    let handled = 0;
    let durableUpTo = 0;
    let waiters: Array<() => void> = [];
    const flush = async () => {
      durableUpTo = handled;
      for (const w of waiters.splice(0)) w();
    };
    const consumer = new BatchConsumer<string>(
      { groupId, topics: [topic], fromBeginning: true, chunkSize: 10 },
      {
        kafka,
        log,
        step: 'test',
        deadLetters: new DeadLetterWriter({ topic: `${topic}.dlq` }, { producer }),
        decode: (m) => m.value!.toString(),
        handle: async (chunk: Array<ConsumedMessage<string>>) => {
          handled += chunk.length;
          return chunk.map(() => ok);
        },
        writeBehind: {
          durable: () => (durableUpTo === handled ? Promise.resolve() : new Promise<void>((r) => waiters.push(r))),
          flush,
        },
      },
    );
    try {
      await consumer.start();
      await waitFor(() => handled === 40, { description: 'all 40 handled' });
      // Handled, not durable: nothing committed (kafkajs' auto-commit would have by now: its interval is 1 s).
      await stillTrueFor(async () => (await committed()) < 0, {
        quietMs: 1500,
        intervalMs: 250,
        description: 'no offset committed before the flush',
      });
      await flush();
      await waitFor(async () => (await committed()) === 40, { description: 'offset 40 committed after the flush' });
      // More records, then stop(): it flushes and commits before leaving the group.
      await producer.send({ topic, messages: Array.from({ length: 5 }, (_, i) => ({ key: 'k', value: String(40 + i) })) });
      await waitFor(() => handled === 45, { description: '5 more handled' });
      expect(await committed()).toBe(40);
      await consumer.stop();
      expect(durableUpTo).toBe(45);
      expect(await committed()).toBe(45);
    } finally {
      waiters = [];
      await consumer.stop();
      await admin.disconnect();
    }
  });
  it('commits the handled offsets of every partition together at its interval, not per chunk, and on stop', async () => {
    const topic = await freshTopic(3);
    const messages = Array.from({ length: 90 }, (_, i) => ({ key: `k${i % 9}`, value: String(i) }));
    await producer.send({ topic, messages });
    const groupId = uniqueName('g');
    const admin = kafka.admin();
    await admin.connect();
    const committedTotal = async () =>
      (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
    let handled = 0;
    const start = (commitIntervalMs: number) =>
      new BatchConsumer<string>(
        { groupId, topics: [topic], fromBeginning: true, chunkSize: 5, commitIntervalMs },
        {
          kafka,
          log,
          step: 'test',
          deadLetters: new DeadLetterWriter({ topic: `${topic}.dlq` }, { producer }),
          decode: (m) => m.value!.toString(),
          handle: async (chunk: Array<ConsumedMessage<string>>) => {
            handled += chunk.length;
            return chunk.map(() => ok);
          },
        },
      );
    // An interval longer than the test: nothing is committed while the chunks are handled...
    const slow = start(600_000);
    try {
      await slow.start();
      await waitFor(() => handled === 90, { description: 'all 90 handled' });
      await stillTrueFor(async () => (await committedTotal()) === 0, {
        quietMs: 1500,
        intervalMs: 250,
        description: 'no offset committed before the interval',
      });
      // ...and stop() commits all of them.
      await slow.stop();
      expect(await committedTotal()).toBe(90);
    } finally {
      await slow.stop();
    }
    // A short interval: new records are committed without a stop.
    const fast = start(200);
    try {
      await fast.start();
      await producer.send({ topic, messages: messages.slice(0, 30) });
      await waitFor(() => handled === 120, { description: '30 more handled' });
      await waitFor(async () => (await committedTotal()) === 120, { description: 'the 30 committed at the interval' });
    } finally {
      await fast.stop();
      await admin.disconnect();
    }
  });
});
