// The producer against the real broker, with the replies of the broker held
// back for a while (as when the broker is stopped after it wrote a request):
// the request times out on our side, kafkajs retries, and every send that
// resolved must be in the log. kafkajs's idempotent producer fails this.
import net from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { silentLogger } from '@engage/logging';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { createKafka, createProducer, ensureTopics } from './index';

/** A Kafka client whose sockets can stop delivering the broker's replies for a while (kafkajs's socketFactory option). */
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
  const stall = (ms: number) => {
    stalled = true;
    for (const s of sockets) s.pause();
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        stalled = false;
        for (const s of sockets) s.resume();
        resolve();
      }, ms),
    );
  };
  return { kafka, stall };
}

it('every send that resolved is in the log, also after requests timed out while the broker had written them', async () => {
  const brokers = testInfrastructure().kafkaBrokers;
  const admin = createKafka({ brokers, clientId: 'producer-test-admin' }, { log: silentLogger() });
  const topic = uniqueName('test.producer');
  await ensureTopics(admin, [{ name: topic, partitions: 1, config: {} }]);
  const { kafka, stall } = stallableKafka(brokers);
  const producer = createProducer(kafka);
  await producer.connect();
  const acked: string[] = [];
  let failed = 0;
  let stalling: Promise<void> | undefined;
  for (let i = 0; i < 40; i++) {
    if (i === 10) stalling = stall(3000);
    try {
      await producer.send({ topic, messages: [{ key: 'k', value: `m${i}` }] });
      acked.push(`m${i}`);
    } catch {
      failed++;
    }
  }
  await stalling;
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
