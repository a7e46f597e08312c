// EventPublisher against real Kafka, registry and Redis: concurrent requests
// share sends; a messageId in flight elsewhere waits for that copy (a
// duplicate once it is confirmed, written here once it is released or its
// claim expired, reported only past the deadline); a failed send releases its
// dedupe claims so the client's retry goes through.
import { Kafka, logLevel } from 'kafkajs';
import { createKafka, createProducer, ensureTopics, topicRegistry } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec, type RawEvent } from '@engage/schemas';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DedupeRepository, type Claim, type DedupeKey } from './dedupe.repository';
import { EventPublisher, PublishError, type PublisherMetrics } from './events.publisher';
import type { AcceptedEvent } from './segment-spec';

const infra = () => testInfrastructure();
const log = silentLogger();
let redis: RedisClient;
let codec: SchemaCodec;

beforeAll(() => {
  redis = createRedis({ url: infra().redisUrl });
  codec = new SchemaCodec({ url: infra().schemaRegistryUrl });
});
afterAll(() => redis.disconnect());

function event(messageId: string, userId = 'u1'): AcceptedEvent {
  const record: RawEvent = {
    message_id: messageId,
    type: 'track',
    space_id: 'spa_1',
    source_id: 'src_1',
    user_id: userId,
    anonymous_id: null,
    group_id: null,
    previous_id: null,
    event: 'E',
    name: null,
    timestamp: 1_760_000_000_000,
    sent_at: null,
    received_at: 1_760_000_000_001,
    properties_json: '{}',
    traits_json: '{}',
    context_json: '{}',
    integrations_json: '{}',
    external_ids: [],
  };
  return { key: userId, record };
}

function metrics(): PublisherMetrics {
  const registers = [new Registry()];
  return {
    events: new Counter({ name: 'events_total', help: 'h', labelNames: ['outcome'] as const, registers }),
    flushSize: new Histogram({ name: 'flush_events', help: 'h', buckets: [1, 10, 100], registers }),
    flushSeconds: new Histogram({ name: 'flush_seconds', help: 'h', registers }),
    waiting: new Gauge({ name: 'waiting_events', help: 'h', registers }),
  };
}

/** A queue bound these tests never reach (events.publisher.bound.int.test.ts tests it). */
const UNBOUNDED = { maxQueuedEvents: 1_000_000, maxQueuedBytes: 1 << 30 };

const gaugeValue = async (g: Gauge) => (await g.get()).values[0]?.value ?? 0;

/** A DedupeRepository that records the keys of every claim() call (one script call per source each). */
class RecordingDedupe extends DedupeRepository {
  readonly claims: DedupeKey[][] = [];
  override claim(keys: DedupeKey[]): Promise<Claim> {
    this.claims.push(keys);
    return super.claim(keys);
  }
}

it('coalesces concurrent requests into few sends, dedupes, and reports messageIds still in flight elsewhere at the deadline', async () => {
  const prefix = `${uniqueName('pub')}.`;
  const topic = topicRegistry(prefix).eventsRaw;
  const kafka = createKafka({ brokers: infra().kafkaBrokers, clientId: 'publisher-test' }, { log });
  await ensureTopics(kafka, [topic]);
  const producer = createProducer(kafka);
  await producer.connect();
  const dedupe = new DedupeRepository({ keyPrefix: prefix, ttlSeconds: 60, pendingTtlMs: 30_000 }, { redis });
  const m = metrics();
  const publisher = new EventPublisher(
    {
      topic: topic.name,
      lingerMs: 0,
      maxFlushEvents: 1000,
      maxConcurrentFlushes: 1,
      inFlightWaitMs: 200,
      inFlightPollMs: 20,
      ...UNBOUNDED,
    },
    { producer, codec, dedupe, log, metrics: m },
  );
  await publisher.start();

  // 50 requests in one event-loop turn: one flush, one send.
  const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => publisher.publish([event(`m-${i}`, `u-${i % 7}`)])));
  expect(outcomes).toEqual(Array(50).fill({ accepted: 1, duplicates: 0, inFlight: 0 }));
  const flushes = (await m.flushSize.get()).values.find((v) => v.metricName === 'flush_events_count')!.value;
  expect(flushes).toBe(1);

  // Repeats are duplicates; a messageId claimed elsewhere (another request, another
  // replica) and not settled within the 200 ms wait is reported in flight.
  await dedupe.claim([{ sourceId: 'src_1', messageId: 'elsewhere' }]);
  expect(await publisher.publish([event('m-1'), event('new-1'), event('new-1'), event('elsewhere')])).toEqual({
    accepted: 1,
    duplicates: 2,
    inFlight: 1,
  });

  // Only the 51 new events reached the topic, each decodable, keyed by user.
  const consumer = kafka.consumer({ groupId: uniqueName('pub-reader') });
  const seen: Array<{ key: string; id: string }> = [];
  await consumer.connect();
  await consumer.subscribe({ topic: topic.name, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) =>
      void seen.push({ key: message.key!.toString(), id: (await codec.decode<RawEvent>(message.value)).message_id }),
  });
  await waitFor(() => seen.length >= 51, { timeoutMs: 20000, description: '51 records' });
  expect(seen.map((s) => s.id).sort()).toEqual([...Array.from({ length: 50 }, (_, i) => `m-${i}`), 'new-1'].sort());
  expect(seen.find((s) => s.id === 'm-8')!.key).toBe('u-1');

  await publisher.drain();
  await Promise.all([consumer.disconnect(), producer.disconnect()]);
});

it("fails the requests of a failed send with a retriable error and releases their claims; the retry is written as the same event (the failed write's receive time)", async () => {
  const prefix = `${uniqueName('pubfail')}.`;
  const topics = topicRegistry(prefix);
  // A topic that does not exist: the broker refuses the send (no auto-creation).
  const missing = topics.eventsRaw.name;
  const kafka = new Kafka({
    brokers: infra().kafkaBrokers,
    clientId: 'publisher-fail-test',
    logLevel: logLevel.NOTHING,
    retry: { retries: 1, initialRetryTime: 50, maxRetryTime: 100 },
  });
  const producer = createProducer(kafka);
  await producer.connect();
  const dedupe = new DedupeRepository({ keyPrefix: prefix, ttlSeconds: 60, pendingTtlMs: 30_000 }, { redis });
  const publisher = new EventPublisher(
    { topic: missing, lingerMs: 0, maxFlushEvents: 1000, maxConcurrentFlushes: 1, inFlightWaitMs: 200, inFlightPollMs: 20, ...UNBOUNDED },
    { producer, codec, dedupe, log },
  );
  await publisher.start();

  const first = event('lost-1');
  await expect(publisher.publish([first])).rejects.toBeInstanceOf(PublishError);
  // The client retries later (a later receive time). Released: the retry is new again, not "in
  // flight" for the next 30 s; and as a failed send may have landed (a timeout after the broker
  // wrote it), the retry carries the first attempt's receive time: the same event id downstream.
  await ensureTopics(kafka, [topics.eventsRaw]);
  const retry = event('lost-1');
  retry.record.received_at = first.record.received_at + 5_000;
  await waitFor(async () => (await publisher.publish([retry]).catch(() => null))?.accepted === 1, {
    timeoutMs: 10_000,
    description: 'the retry written',
  });
  const written: RawEvent[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName('pubfail-reader'), maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: missing, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void written.push(await codec.decode<RawEvent>(message.value)) });
  await waitFor(() => written.length >= 1, { timeoutMs: 20_000, description: 'the retry read back' });
  await consumer.disconnect();
  expect(written.map((r) => [r.message_id, r.received_at])).toEqual([['lost-1', first.record.received_at]]);
  await producer.disconnect();
});

/** A publisher on a fresh topic, with a reader of everything written to it. */
async function harness(name: string) {
  const prefix = `${uniqueName(name)}.`;
  const topic = topicRegistry(prefix).eventsRaw;
  const kafka = createKafka({ brokers: infra().kafkaBrokers, clientId: `${name}-test` }, { log });
  await ensureTopics(kafka, [topic]);
  const producer = createProducer(kafka);
  await producer.connect();
  const dedupe = new RecordingDedupe({ keyPrefix: prefix, ttlSeconds: 60, pendingTtlMs: 30_000 }, { redis });
  const m = metrics();
  const publisher = new EventPublisher(
    // A wait far longer than the tests need: they settle the claims themselves.
    {
      topic: topic.name,
      lingerMs: 0,
      maxFlushEvents: 1000,
      maxConcurrentFlushes: 2,
      inFlightWaitMs: 20_000,
      inFlightPollMs: 20,
      ...UNBOUNDED,
    },
    { producer, codec, dedupe, log, metrics: m },
  );
  await publisher.start();
  const seen: string[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName(`${name}-reader`), maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: topic.name, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void seen.push((await codec.decode<RawEvent>(message.value)).message_id) });
  return {
    prefix,
    publisher,
    dedupe,
    metrics: m,
    seen,
    /**
     * Every record written so far, once a sentinel written now has arrived.
     * NOTE: all events of these tests have one key, so one partition, whose order makes that complete.
     */
    async written(): Promise<string[]> {
      const sentinel = uniqueName('sentinel');
      expect(await publisher.publish([event(sentinel)])).toEqual({ accepted: 1, duplicates: 0, inFlight: 0 });
      await waitFor(() => seen.includes(sentinel), { timeoutMs: 20000, description: `sentinel ${sentinel}` });
      return seen.filter((id) => !id.startsWith('sentinel'));
    },
    async stop() {
      await publisher.drain();
      await Promise.all([consumer.disconnect(), producer.disconnect()]);
    },
  };
}

/** The promise's outcome so far, without waiting for it. */
function track<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

it('a duplicate of a messageId still being written elsewhere waits: dropped once that copy is confirmed, written once if it is released', async () => {
  const h = await harness('pubwait');
  // Another request or replica has claimed these messageIds and is writing them.
  const other = new DedupeRepository({ keyPrefix: h.prefix, ttlSeconds: 60, pendingTtlMs: 30_000 }, { redis });
  const ids = Array.from({ length: 20 }, (_, i) => `held-${i}`);
  const keys = ids.map((messageId) => ({ sourceId: 'src_1', messageId }));
  // Two flushes of the other copy: the first ten, then the other ten.
  const [writtenThere, failedThere] = [await other.claim(keys.slice(0, 10)), await other.claim(keys.slice(10))];
  expect([...writtenThere.results, ...failedThere.results]).toEqual(Array(20).fill('new'));

  // One request per messageId, and a batch that repeats one of them and carries a new event.
  const waiting = ids.map((id) => track(h.publisher.publish([event(id)])));
  const batch = track(h.publisher.publish([event('held-0'), event('held-0'), event('batch-new')]));
  await waitFor(async () => (await gaugeValue(h.metrics.waiting)) === 22, { timeoutMs: 10000, description: '22 events waiting' });
  // Waiting ones hold nobody up: a later request is written and answered meanwhile.
  expect(await h.publisher.publish([event('unrelated')])).toEqual({ accepted: 1, duplicates: 0, inFlight: 0 });
  // Polled: all waiting events in one claim call (one script call per source; repeats share a key), not one per event.
  const heldIn = (c: DedupeKey[]) => c.filter((k) => k.messageId.startsWith('held-')).length;
  await waitFor(() => h.dedupe.claims.filter((c) => heldIn(c) === 20).length >= 2, {
    timeoutMs: 10000,
    description: 'two poll rounds',
  });
  // (0: the unrelated request's own flush, unless it joined a poll round's.)
  expect(h.dedupe.claims.map(heldIn).filter((n) => n !== 0 && n !== 20)).toEqual([]);
  expect([...waiting, batch].filter((w) => w.settled)).toEqual([]);

  // The other copies of held-0..9 were written (confirmed); those of held-10..19 failed (released).
  await other.confirm(writtenThere);
  await other.release(failedThere);
  await waitFor(() => waiting.every((w) => w.settled) && batch.settled, { timeoutMs: 10000, description: 'all answered' });
  expect(waiting.map((w) => w.value)).toEqual([
    ...Array(10).fill({ accepted: 0, duplicates: 1, inFlight: 0 }),
    ...Array(10).fill({ accepted: 1, duplicates: 0, inFlight: 0 }),
  ]);
  expect(batch.value).toEqual({ accepted: 1, duplicates: 2, inFlight: 0 });

  // Written here: the released ones, each once, and the batch's new event; none of the confirmed ones.
  expect((await h.written()).sort()).toEqual(['batch-new', ...ids.slice(10), 'unrelated'].sort());
  expect(await gaugeValue(h.metrics.waiting)).toBe(0);
  await h.stop();
});

it('a duplicate whose other copy died with its process is written once that claim expires', async () => {
  const h = await harness('pubexpire');
  // A replica that claimed it and crashed: nobody confirms or releases; the claim lapses.
  const crashed = new DedupeRepository({ keyPrefix: h.prefix, ttlSeconds: 60, pendingTtlMs: 300 }, { redis });
  expect((await crashed.claim([{ sourceId: 'src_1', messageId: 'orphan' }])).results).toEqual(['new']);
  expect(await h.publisher.publish([event('orphan')])).toEqual({ accepted: 1, duplicates: 0, inFlight: 0 });
  expect(await h.written()).toEqual(['orphan']);
  // Now confirmed: a resend is a plain duplicate.
  expect(await h.publisher.publish([event('orphan')])).toEqual({ accepted: 0, duplicates: 1, inFlight: 0 });
  await h.stop();
});
