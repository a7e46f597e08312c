// The publisher's memory bound while Kafka does not answer: real registry and
// Redis (dedupe claims), and a producer whose send() hangs until the test lets
// it go, which is what a kafkajs send does while the broker is down (it
// retries for minutes). Requests past the bound are refused at once with a
// QueueFullError; once sends complete the held requests are answered and
// the room is there again.
import type { Producer } from 'kafkajs';
import { topicRegistry } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec, type RawEvent } from '@engage/schemas';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { DedupeRepository } from './dedupe.repository';
import { EventPublisher, QueueFullError, type PublishOutcome } from './events.publisher';
import type { AcceptedEvent } from './segment-spec';

let redis: RedisClient;
beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
afterAll(() => redis.disconnect());

function event(messageId: string): AcceptedEvent {
  const record: RawEvent = {
    message_id: messageId,
    type: 'track',
    space_id: 'spa_1',
    source_id: 'src_1',
    user_id: 'u1',
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
  return { key: 'u1', record };
}

/** A producer whose sends stay pending until release(): a broker that does not answer. */
function stalledProducer() {
  const pending: Array<() => void> = [];
  let stalled = true;
  const producer = {
    send: () => (stalled ? new Promise<[]>((resolve) => pending.push(() => resolve([]))) : Promise.resolve([])),
  } as unknown as Producer;
  return {
    producer,
    sends: () => pending.length,
    release: () => {
      stalled = false;
      for (const go of pending.splice(0)) go();
    },
  };
}

it('refuses requests past the queued-events bound while sends stall, and takes them again once sends complete', async () => {
  const infra = testInfrastructure();
  const prefix = `${uniqueName('pubbound')}.`;
  const kafka = stalledProducer();
  const publisher = new EventPublisher(
    {
      topic: topicRegistry(prefix).eventsRaw.name,
      lingerMs: 0,
      maxFlushEvents: 1000,
      maxConcurrentFlushes: 1,
      inFlightWaitMs: 1000,
      inFlightPollMs: 20,
      maxQueuedEvents: 10,
      maxQueuedBytes: 1 << 30,
    },
    {
      producer: kafka.producer,
      codec: new SchemaCodec({ url: infra.schemaRegistryUrl }),
      dedupe: new DedupeRepository({ keyPrefix: prefix, ttlSeconds: 60, pendingTtlMs: 30_000 }, { redis }),
      log: silentLogger(),
    },
  );
  await publisher.start();

  const batch = (name: string) => Array.from({ length: 4 }, (_, i) => event(`${name}-${i}`));
  const outcomes: Array<Promise<PublishOutcome>> = [publisher.publish(batch('a'))];
  // The first send is stuck: what follows queues behind it.
  await waitFor(() => kafka.sends() === 1, { timeoutMs: 10_000, description: 'first send started' });
  outcomes.push(publisher.publish(batch('b')));
  // 8 events held; 4 more would make 12, over the bound of 10.
  await expect(publisher.publish(batch('c'))).rejects.toThrow(QueueFullError);
  await expect(publisher.publish(batch('c'))).rejects.toThrow(/ingest queue full \(8 events, .* limits 10 events/);

  kafka.release();
  expect(await Promise.all(outcomes)).toEqual([
    { accepted: 4, duplicates: 0, inFlight: 0 },
    { accepted: 4, duplicates: 0, inFlight: 0 },
  ]);
  // Answered requests no longer count: the refused one goes through now.
  await expect(publisher.publish(batch('c'))).resolves.toEqual({ accepted: 4, duplicates: 0, inFlight: 0 });
  await publisher.drain();
});

it('refuses requests past the queued-bytes bound', async () => {
  const infra = testInfrastructure();
  const prefix = `${uniqueName('pubbound')}.`;
  const kafka = stalledProducer();
  const publisher = new EventPublisher(
    {
      topic: topicRegistry(prefix).eventsRaw.name,
      lingerMs: 0,
      maxFlushEvents: 1000,
      maxConcurrentFlushes: 1,
      inFlightWaitMs: 1000,
      inFlightPollMs: 20,
      maxQueuedEvents: 1000,
      maxQueuedBytes: 5000,
    },
    {
      producer: kafka.producer,
      codec: new SchemaCodec({ url: infra.schemaRegistryUrl }),
      dedupe: new DedupeRepository({ keyPrefix: prefix, ttlSeconds: 60, pendingTtlMs: 30_000 }, { redis }),
      log: silentLogger(),
    },
  );
  await publisher.start();
  const first = publisher.publish([event('a')], 3000);
  await waitFor(() => kafka.sends() === 1, { timeoutMs: 10_000, description: 'first send started' });
  await expect(publisher.publish([event('b')], 3000)).rejects.toThrow(/3000 bytes .* 5000 bytes/);
  kafka.release();
  await expect(first).resolves.toEqual({ accepted: 1, duplicates: 0, inFlight: 0 });
  await publisher.drain();
});
