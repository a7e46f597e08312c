// The wiring every service shares: logger, metrics registry, Kafka client,
// producer (acks=all), schema codec, Redis, topics and the ops endpoints.
// main.ts builds one Runtime from its parsed config, adds its own components
// and calls `service.run()`. Nothing here reads process.env.
import type { Kafka, Producer } from 'kafkajs';
import { ConfigError } from '@engage/config';
import { createKafka, createProducer, ensureTopics, topicRegistry, TopicLayoutError, type TopicKey, type TopicSpec } from '@engage/kafka';
import { createLogger, type Logger } from '@engage/logging';
import { createMetricsRegistry, OpsServer, type Check, type OpsHandlers } from '@engage/observability';
import { createRedis, redisAnswers, type RedisClient } from '@engage/redis';
import { SchemaCodec } from '@engage/schemas';
import type { Registry } from 'prom-client';
import { Service, type Component } from './lifecycle';

export interface RuntimeConfig {
  KAFKA_BROKERS: string[];
  SCHEMA_REGISTRY_URL: string;
  REDIS_URL: string;
  TOPIC_PREFIX: string;
  TOPIC_PARTITIONS: number;
  TOPIC_REPLICATION_FACTOR: number;
  TOPIC_PARTITIONS_OVERRIDES: Record<string, number>;
  TOPIC_PARTITIONS_ALLOW_GROWTH: boolean;
  LOG_LEVEL: string;
  HTTP_HOST: string;
}

export interface Runtime {
  name: string;
  log: Logger;
  metrics: Registry;
  kafka: Kafka;
  producer: Producer;
  codec: SchemaCodec;
  redis: RedisClient;
  topics: Record<TopicKey, TopicSpec>;
  service: Service;
  /** Liveness and readiness for the ops endpoints (services with an HTTP API mount them there). */
  ops: OpsHandlers;
  /** Components in start order: Redis, topics + schemas, producer. Add consumers and HTTP after. */
  infrastructure: Component[];
}

export function createRuntime(name: string, config: RuntimeConfig): Runtime {
  const log = createLogger({ service: name, level: config.LOG_LEVEL });
  const metrics = createMetricsRegistry(name);
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: name }, { log });
  const producer = createProducer(kafka);
  const codec = new SchemaCodec({ url: config.SCHEMA_REGISTRY_URL });
  const redis = createRedis({ url: config.REDIS_URL, connectionName: name });
  const topics = configuredTopics(config);
  const service = new Service({ name }, { log });

  const admin = kafka.admin();
  let adminConnected = false;
  const readiness: Check[] = [
    async () => ({ name: 'redis', ok: await redisAnswers(redis) }),
    async () => {
      try {
        if (!adminConnected) {
          await admin.connect();
          adminConnected = true;
        }
        const cluster = await admin.describeCluster();
        return { name: 'kafka', ok: cluster.brokers.length > 0 };
      } catch (err) {
        return { name: 'kafka', ok: false, detail: (err as Error).message };
      }
    },
    async () => ({ name: 'schema_registry', ok: await codec.answers() }),
  ];
  const ops: OpsHandlers = { registry: metrics, liveness: [() => ({ name: 'components', ...service.healthcheck() })], readiness };

  const infrastructure: Component[] = [
    {
      name: 'redis',
      start: () => redis.ping(),
      stop: async () => {
        redis.disconnect();
      },
    },
    {
      name: 'topics',
      start: async () => {
        await ensureTopics(kafka, Object.values(topics), {
          allowPartitionGrowth: config.TOPIC_PARTITIONS_ALLOW_GROWTH,
          log: log.child({ component: 'topics' }),
        });
        await codec.registerTopics(Object.values(topics));
      },
      stop: async () => {
        if (adminConnected) await admin.disconnect();
        adminConnected = false;
      },
    },
    { name: 'producer', start: () => producer.connect(), stop: () => producer.disconnect() },
  ];
  return { name, log, metrics, kafka, producer, codec, redis, topics, service, ops, infrastructure };
}

/** The registry laid out as configured; a layout it cannot honour is a configuration error, raised before anything starts. */
export function configuredTopics(
  config: Pick<RuntimeConfig, 'TOPIC_PREFIX' | 'TOPIC_PARTITIONS' | 'TOPIC_REPLICATION_FACTOR' | 'TOPIC_PARTITIONS_OVERRIDES'>,
): Record<TopicKey, TopicSpec> {
  try {
    return topicRegistry(config.TOPIC_PREFIX, {
      partitions: config.TOPIC_PARTITIONS,
      replicationFactor: config.TOPIC_REPLICATION_FACTOR,
      partitionOverrides: config.TOPIC_PARTITIONS_OVERRIDES,
    });
  } catch (err) {
    if (err instanceof TopicLayoutError) throw new ConfigError(err.issues);
    throw err;
  }
}

/** The ops server as a component, for services without an HTTP API of their own. */
export function opsComponent(runtime: Runtime, config: { port: number; host: string }): Component {
  const server = new OpsServer(config, { ops: runtime.ops, log: runtime.log.child({ component: 'ops' }) });
  return {
    name: 'ops-http',
    start: async () => runtime.log.info({ port: await server.start() }, 'ops_listening'),
    stop: () => server.stop(),
  };
}
