// EventPublisher against real Kafka, registry and Redis: concurrent requests
// share sends, messageIds in flight elsewhere are reported, and a failed send
// releases its dedupe claims so the client's retry goes through.
import { Kafka, logLevel } from 'kafkajs';
import { createKafka, createProducer, ensureTopics, topicRegistry } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec, type RawEvent } from '@engage/schemas';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { Counter, Histogram, Registry } from 'prom-client';
import { DedupeRepository } from './dedupe.repository';
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
  };
}

it('coalesces concurrent requests into few sends, dedupes, and reports messageIds in flight elsewhere', async () => {
  const prefix = `${uniqueName('pub')}.`;
  const topic = topicRegistry(prefix).eventsRaw;
  const kafka = createKafka({ brokers: infra().kafkaBrokers, clientId: 'publisher-test' }, { log });
  await ensureTopics(kafka, [topic]);
  const producer = createProducer(kafka);
  await producer.connect();
  const dedupe = new DedupeRepository({ keyPrefix: prefix, ttlSeconds: 60, pendingTtlMs: 30_000 }, { redis });
  const m = metrics();
  const publisher = new EventPublisher(
    { topic: topic.name, lingerMs: 0, maxFlushEvents: 1000, maxConcurrentFlushes: 1 },
    { producer, codec, dedupe, log, metrics: m },
  );
  await publisher.start();

  // 50 requests in one event-loop turn: one flush, one send.
  const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => publisher.publish([event(`m-${i}`, `u-${i % 7}`)])));
  expect(outcomes).toEqual(Array(50).fill({ accepted: 1, duplicates: 0, inFlight: 0 }));
  const flushes = (await m.flushSize.get()).values.find((v) => v.metricName === 'flush_events_count')!.value;
  expect(flushes).toBe(1);

  // Repeats are duplicates; a messageId claimed elsewhere (another request, another replica) is in flight.
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

it('fails the requests of a failed send with a retriable error and releases their claims', async () => {
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
    { topic: missing, lingerMs: 0, maxFlushEvents: 1000, maxConcurrentFlushes: 1 },
    { producer, codec, dedupe, log },
  );
  await publisher.start();

  await expect(publisher.publish([event('lost-1')])).rejects.toBeInstanceOf(PublishError);
  // Released: a retry is new again, not "in flight" for the next 30 s.
  await waitFor(async () => (await dedupe.claim([{ sourceId: 'src_1', messageId: 'lost-1' }]))[0] === 'new', {
    timeoutMs: 5000,
    description: 'claim released',
  });
  await producer.disconnect();
});
