// A config record that fails to apply is tried again: the reader's schema
// registry (the real one, behind a proxy the test can switch off) answers 503
// while the reader starts, so decoding its records fails; once the registry
// answers again the record is applied without a restart. It used to be
// skipped for good: a valid write key answered 401 until the process restarted.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKafka, createProducer, ensureTopics, topicRegistry } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { SchemaCodec, valueSubject } from '@engage/schemas';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { ConfigStore, ConfigWriter, type SourceConfig } from './index';

/** Forwards to `target` (the real registry) unless switched off, then answers 503; counts what it refused. */
async function switchableProxy(target: URL) {
  const state = { up: true, refused: 0 };
  const server = http.createServer((req, res) => {
    if (!state.up) {
      state.refused++;
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error_code":50301,"message":"unavailable"}');
      return;
    }
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target.toString());
  url.port = String((server.address() as AddressInfo).port);
  return { state, url: url.toString().replace(/\/$/, ''), close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

it('applies a record that failed to decode once the registry answers again, without a restart', async () => {
  const infra = testInfrastructure();
  const log = silentLogger();
  const kafka = createKafka({ brokers: infra.kafkaBrokers, clientId: 'config-store-retry-test' }, { log });
  const topic = topicRegistry(`${uniqueName('cfgretry')}.`).config;
  await ensureTopics(kafka, [topic]);
  const codec = new SchemaCodec({ url: infra.schemaRegistryUrl });
  await codec.register(valueSubject(topic.name), 'ConfigRecord');
  const producer = createProducer(kafka);
  await producer.connect();
  const writerStore = new ConfigStore({ topic: topic.name, groupPrefix: 'w' }, { kafka, codec, log });
  await writerStore.start();
  const writer = new ConfigWriter({ topic: topic.name }, { producer, codec, store: writerStore });
  const source: SourceConfig = {
    id: 'src_a',
    spaceId: 'spa_1',
    name: 'a',
    writeKey: 'key-a',
    enabled: true,
    createdAt: 'now',
    updatedAt: 'now',
  };
  await writer.write('source', 'src_a', 'spa_1', source);

  const proxy = await switchableProxy(new URL(infra.schemaRegistryUrl));
  proxy.state.up = false;
  // A codec of its own: it has not registered the schema, so decoding needs the registry.
  const reader = new ConfigStore({ topic: topic.name, groupPrefix: 'r' }, { kafka, codec: new SchemaCodec({ url: proxy.url }), log });
  try {
    await reader.start();
    expect(proxy.state.refused).toBeGreaterThan(0);
    expect(reader.sourceByWriteKey('key-a')).toBeUndefined();

    proxy.state.up = true;
    await waitFor(() => reader.sourceByWriteKey('key-a'), { timeoutMs: 30_000, description: 'the failed record applied' });
    expect(reader.get('source', 'src_a')).toEqual(source);
  } finally {
    await Promise.all([reader.stop(), writerStore.stop(), producer.disconnect()]);
    await proxy.close();
  }
});
