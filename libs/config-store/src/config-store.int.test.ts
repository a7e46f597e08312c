import { createKafka, createProducer, ensureTopics, topicRegistry } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { SchemaCodec, valueSubject } from '@engage/schemas';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { ConfigStore, ConfigWriter, MASK, type DestinationConfig, type SourceConfig } from './index';

/** A fresh config topic with its schema, a producer, and a writer with its own store (which keeps secrets, as the control plane's does). */
async function freshConfigTopic() {
  const infra = testInfrastructure();
  const log = silentLogger();
  const kafka = createKafka({ brokers: infra.kafkaBrokers, clientId: 'config-store-test' }, { log });
  const topic = topicRegistry(`${uniqueName('cfg')}.`).config;
  await ensureTopics(kafka, [topic]);
  const codec = new SchemaCodec({ url: infra.schemaRegistryUrl });
  await codec.register(valueSubject(topic.name), 'ConfigRecord');
  const producer = createProducer(kafka);
  await producer.connect();
  const writerStore = new ConfigStore({ topic: topic.name, groupPrefix: 'w', destinationSecrets: 'keep' }, { kafka, codec, log });
  await writerStore.start();
  const writer = new ConfigWriter({ topic: topic.name }, { producer, codec, store: writerStore });
  return { kafka, codec, log, topic, producer, writerStore, writer };
}

it('materialises engage.config in every reader, old records at start and new ones within a second', async () => {
  const { kafka, codec, log, topic, producer, writerStore, writer } = await freshConfigTopic();
  const source = (name: string, writeKey: string): SourceConfig => ({
    id: `src_${name}`,
    spaceId: 'spa_1',
    name,
    writeKey,
    enabled: true,
    createdAt: 'now',
    updatedAt: 'now',
  });
  await writer.write('source', 'src_a', 'spa_1', source('a', 'key-a'));
  await writer.write('source', 'src_b', 'spa_1', source('b', 'key-b'));
  await writer.write('source', 'src_b', 'spa_1', source('b', 'key-b2')); // write key rotated

  // A reader started later sees the history...
  const reader = new ConfigStore({ topic: topic.name, groupPrefix: 'r' }, { kafka, codec, log });
  await reader.start();
  expect(reader.sourceByWriteKey('key-a')?.id).toBe('src_a');
  expect(reader.sourceByWriteKey('key-b')).toBeUndefined();
  expect(reader.sourceByWriteKey('key-b2')?.id).toBe('src_b');

  // ...and follows new writes, deletions included.
  const started = Date.now();
  await writer.write('source', 'src_a', 'spa_1', source('a', 'key-a'), { deleted: true });
  await waitFor(() => reader.sourceByWriteKey('key-a') === undefined, { timeoutMs: 5000, description: 'deletion seen' });
  expect(Date.now() - started).toBeLessThan(1000);
  expect(reader.list('source', 'spa_1').map((s) => s.id)).toEqual(['src_b']);
  expect(reader.getStored('source', 'src_a')?.deleted).toBe(true);

  await Promise.all([reader.stop(), writerStore.stop(), producer.disconnect()]);
});

it("holds destination secrets only where asked ('keep': dispatchers, the control plane); every other reader sees them masked", async () => {
  const { kafka, codec, log, topic, producer, writerStore, writer } = await freshConfigTopic();
  const hook = {
    id: 'dst_1',
    spaceId: 'spa_1',
    name: 'Hook',
    type: 'webhook',
    enabled: true,
    settings: { url: 'https://hooks.example/x', headers: { Authorization: 'Bearer s3cret' }, apiKey: 'k-1' },
  } as unknown as DestinationConfig;
  await writer.write('destination', 'dst_1', 'spa_1', hook);

  const dispatcherView = new ConfigStore({ topic: topic.name, groupPrefix: 'd', destinationSecrets: 'keep' }, { kafka, codec, log });
  const evaluatorView = new ConfigStore({ topic: topic.name, groupPrefix: 'e' }, { kafka, codec, log });
  await Promise.all([dispatcherView.start(), evaluatorView.start()]);
  expect(dispatcherView.get('destination', 'dst_1')!.settings).toEqual(hook.settings);
  expect(evaluatorView.get('destination', 'dst_1')!.settings).toEqual({
    url: 'https://hooks.example/x',
    headers: { Authorization: MASK },
    apiKey: MASK,
  });
  await Promise.all([dispatcherView.stop(), evaluatorView.stop(), writerStore.stop(), producer.disconnect()]);
});
