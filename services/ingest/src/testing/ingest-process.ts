// The ingest as a process (built dist/main.js) against real Kafka, registry
// and Redis, for the integration tests of both ways in (HTTP and
// engage.events.inbound): fresh topics, sources written to engage.config, the
// process started, and every record of engage.events.raw read back, decoded.
import type { Consumer, Kafka } from 'kafkajs';
import { ConfigStore, ConfigWriter, type SourceConfig } from '@engage/config-store';
import { createKafka, createProducer, ensureTopics, topicRegistry, type Producer, type TopicKey, type TopicSpec } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec, valueSubject, type RawEvent } from '@engage/schemas';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';

export const SPACE_ID = 'spa_ingest';

export const sourceConfig = (id: string, writeKey: string, over: Partial<SourceConfig> = {}): SourceConfig => ({
  id,
  spaceId: SPACE_ID,
  name: id,
  writeKey,
  enabled: true,
  createdAt: 'now',
  updatedAt: 'now',
  ...over,
});

export interface RawRecord {
  key: string;
  value: RawEvent;
}

export interface IngestProcess {
  prefix: string;
  topics: Record<TopicKey, TopicSpec>;
  kafka: Kafka;
  codec: SchemaCodec;
  redis: RedisClient;
  /** Writes sources (and anything else) to engage.config. */
  writer: ConfigWriter;
  /** The environment the process was started with (to start another replica). */
  env: Record<string, string>;
  proc: ServiceProcess;
  /** http://127.0.0.1:<port> of the process. */
  base: string;
  /** Every record of engage.events.raw so far, in arrival order. */
  received: RawRecord[];
  byMessageId(id: string): RawRecord[];
  waitForMessage(id: string): Promise<RawRecord>;
  close(): Promise<void>;
}

/** Topics and config first, then the process (with `env` added), then a reader of engage.events.raw. */
export async function startIngestProcess(name: string, sources: SourceConfig[], env: Record<string, string> = {}): Promise<IngestProcess> {
  const infra = testInfrastructure();
  const log = silentLogger();
  const prefix = `${uniqueName(name)}.`;
  const redis = createRedis({ url: infra.redisUrl });
  const topics = topicRegistry(prefix);
  const kafka = createKafka({ brokers: infra.kafkaBrokers, clientId: `${name}-test` }, { log });
  await ensureTopics(kafka, [topics.config, topics.eventsInbound, topics.eventsRaw]);
  const codec = new SchemaCodec({ url: infra.schemaRegistryUrl });
  await codec.register(valueSubject(topics.config.name), 'ConfigRecord');
  const producer: Producer = createProducer(kafka);
  await producer.connect();
  const store = new ConfigStore({ topic: topics.config.name, groupPrefix: `${name}-test` }, { kafka, codec, log });
  await store.start();
  const writer = new ConfigWriter({ topic: topics.config.name }, { producer, codec, store });
  for (const s of sources) await writer.write('source', s.id, s.spaceId, s);

  const serviceEnv = {
    KAFKA_BROKERS: infra.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl,
    REDIS_URL: infra.redisUrl,
    TOPIC_PREFIX: prefix,
    REDIS_KEY_PREFIX: prefix,
    INGEST_PORT: '0',
    INGEST_DEDUPE_TTL_SECONDS: '600',
    ...env,
  };
  const proc = startService('ingest', serviceEnv);
  const base = `http://127.0.0.1:${await proc.port()}`;

  const received: RawRecord[] = [];
  const consumer: Consumer = kafka.consumer({ groupId: uniqueName(`${name}-raw-reader`), maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: topics.eventsRaw.name, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      received.push({ key: message.key!.toString(), value: await codec.decode<RawEvent>(message.value) });
    },
  });
  const byMessageId = (id: string) => received.filter((r) => r.value.message_id === id);
  return {
    prefix,
    topics,
    kafka,
    codec,
    redis,
    writer,
    env: serviceEnv,
    proc,
    base,
    received,
    byMessageId,
    waitForMessage: (id) => waitFor(() => byMessageId(id)[0], { timeoutMs: 20000, description: `message ${id} in engage.events.raw` }),
    close: async () => {
      await proc.stop('SIGKILL');
      await consumer.disconnect();
      await store.stop();
      await producer.disconnect();
      redis.disconnect();
    },
  };
}

export interface PostOptions {
  /** null: no Authorization header. */
  writeKey: string | null;
  headers?: Record<string, string>;
  raw?: Buffer | string;
}

/** POSTs to the tracking API; the answer's status, Retry-After and JSON body. */
export async function post(url: string, body: unknown, opts: PostOptions) {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
  if (opts.writeKey !== null) headers.authorization = `Basic ${Buffer.from(`${opts.writeKey}:`).toString('base64')}`;
  const res = await fetch(url, { method: 'POST', headers, body: opts.raw ?? JSON.stringify(body) });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as unknown };
}
