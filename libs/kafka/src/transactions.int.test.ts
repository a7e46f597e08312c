import type { Kafka } from 'kafkajs';
import { silentLogger } from '@engage/logging';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { createKafka, createProducer, ensureTopics } from './index';

const log = silentLogger();
let kafka: Kafka;

beforeAll(() => {
  kafka = createKafka({ brokers: testInfrastructure().kafkaBrokers, clientId: 'tx-test' }, { log });
});

it('commits a transaction with sendOffsets atomically; an aborted one stays invisible to read_committed', async () => {
  const input = uniqueName('test.tx.in');
  const output = uniqueName('test.tx.out');
  const groupId = uniqueName('tx-group');
  await ensureTopics(kafka, [
    { name: input, partitions: 1, config: {} },
    { name: output, partitions: 1, config: {} },
  ]);

  const producer = createProducer(kafka, { transactionalId: uniqueName('tx') });
  await producer.connect();

  const aborted = await producer.transaction();
  await aborted.send({ topic: output, messages: [{ key: 'k', value: 'aborted' }] });
  await aborted.abort();

  const committed = await producer.transaction();
  await committed.send({
    topic: output,
    messages: [
      { key: 'k', value: 'committed-1' },
      { key: 'k', value: 'committed-2' },
    ],
  });
  await committed.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: 0, offset: '42' }] }] });
  await committed.commit();
  await producer.disconnect();

  const seen: string[] = [];
  const reader = kafka.consumer({ groupId: uniqueName('reader'), readUncommitted: false });
  await reader.connect();
  await reader.subscribe({ topic: output, fromBeginning: true });
  await reader.run({ eachMessage: async ({ message }) => void seen.push(message.value!.toString()) });
  await waitFor(() => seen.length >= 2, { description: 'committed records' });
  await reader.disconnect();
  expect(seen).toEqual(['committed-1', 'committed-2']);

  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchOffsets({ groupId, topics: [input] });
  await admin.disconnect();
  expect(offsets).toEqual([{ topic: input, partitions: [expect.objectContaining({ partition: 0, offset: '42' })] }]);
});
