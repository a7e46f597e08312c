// The producer against the real broker, with the replies of the broker held
// back (as when the broker is stopped after it wrote a request) until a send
// has failed on our side (request timeout, kafkajs's retry too), then let
// through: every send that resolved must be in the log. kafkajs's idempotent
// producer fails this.
import net from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { silentLogger } from '@engage/logging';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { createKafka, createProducer, ensureTopics } from './index';

/** A Kafka client whose sockets can stop delivering the broker's replies until resumed (kafkajs's socketFactory option). */
function stallableKafka(brokers: string[]) {
  const sockets = new Set<net.Socket>();
  let stalled = false;
  const kafka = new Kafka({
    clientId: 'producer-test',
    brokers,
    logLevel: logLevel.NOTHING,
    requestTimeout: 1000,
    retry: { retries: 1, initialRetryTime: 50, maxRetryTime: 100 },
    socketFactory: ({ host, port, onConnect }) => {
      const socket = net.connect({ host, port }, onConnect);
      sockets.add(socket);
      if (stalled) socket.pause();
      return socket;
    },
  });
  const setStalled = (on: boolean) => {
    stalled = on;
    for (const s of sockets) {
      if (on) s.pause();
      else s.resume();
    }
  };
  return { kafka, stall: () => setStalled(true), resume: () => setStalled(false) };
}

it('every send that resolved is in the log, also after requests timed out while the broker had written them', async () => {
  const brokers = testInfrastructure().kafkaBrokers;
  const admin = createKafka({ brokers, clientId: 'producer-test-admin' }, { log: silentLogger() });
  const topic = uniqueName('test.producer');
  await ensureTopics(admin, [{ name: topic, partitions: 1, config: {} }]);
  const { kafka, stall, resume } = stallableKafka(brokers);
  const producer = createProducer(kafka);
  await producer.connect();
  const acked: string[] = [];
  let failed = 0;
  for (let i = 0; i < 40; i++) {
    if (i === 10) stall();
    try {
      await producer.send({ topic, messages: [{ key: 'k', value: `m${i}` }] });
      acked.push(`m${i}`);
    } catch {
      // Given up on while the broker had the request: replies flow again.
      failed++;
      resume();
    }
  }
  await producer.disconnect();

  const seen = new Set<string>();
  const consumer = admin.consumer({ groupId: uniqueName('reader') });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void seen.add(message.value!.toString()) });
  await waitFor(() => acked.every((m) => seen.has(m)) || null, {
    timeoutMs: 20_000,
    description: 'every acknowledged send in the log',
  }).catch(() => undefined);
  await consumer.disconnect();
  // The stall made at least one send fail (else the test proves nothing); none acknowledged is missing.
  expect({ failedSome: failed > 0, ackedButMissing: acked.filter((m) => !seen.has(m)) }).toEqual({ failedSome: true, ackedButMissing: [] });
});
