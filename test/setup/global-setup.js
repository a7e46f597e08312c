// Integration global setup. In order of preference:
//   1. KAFKA_BROKERS, SCHEMA_REGISTRY_URL and REDIS_URL given: use them;
//   2. a container runtime answers: start the stack with testcontainers;
//   3. otherwise: start the local processes with the same script as
//      `npm run infra:up` (Kafka and Apicurio from Maven Central, Redis).
// The chosen endpoints are put in process.env, which jest workers inherit.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const ROOT = path.resolve(__dirname, '../..');

async function containerRuntimeAnswers() {
  if (process.env.ENGAGE_NO_CONTAINERS === '1') return false;
  try {
    const { getContainerRuntimeClient } = require('testcontainers');
    await Promise.race([getContainerRuntimeClient(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 5000))]);
    return true;
  } catch {
    return false;
  }
}

async function startContainers() {
  const { GenericContainer, Network, Wait } = require('testcontainers');
  const network = await new Network().start();
  const redis = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
  // KRaft single node; the host listener is advertised on the mapped port.
  const kafkaPort = 9092;
  const kafka = await new GenericContainer('apache/kafka:3.9.2')
    .withNetwork(network)
    .withNetworkAliases('kafka')
    .withExposedPorts({ container: kafkaPort, host: 19092 })
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: 'PLAINTEXT://:9092,CONTROLLER://:9093',
      KAFKA_ADVERTISED_LISTENERS: 'PLAINTEXT://127.0.0.1:19092',
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .start();
  const registry = await new GenericContainer('apicurio/apicurio-registry:3.0.9')
    .withExposedPorts(8080)
    .withWaitStrategy(Wait.forHttp('/apis/ccompat/v7/subjects', 8080))
    .start();
  globalThis.__ENGAGE_CONTAINERS__ = [registry, kafka, redis];
  globalThis.__ENGAGE_NETWORK__ = network;
  return {
    KAFKA_BROKERS: '127.0.0.1:19092',
    SCHEMA_REGISTRY_URL: `http://${registry.getHost()}:${registry.getMappedPort(8080)}/apis/ccompat/v7`,
    REDIS_URL: `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`,
  };
}

module.exports = async function globalSetup() {
  // Every uniqueName() of the run is recorded here (workers inherit process.env),
  // so the teardown removes exactly this run's topics and Redis keys.
  const namesFile = path.join(os.tmpdir(), `engage-test-names-${process.pid}-${Date.now().toString(36)}.txt`);
  fs.writeFileSync(namesFile, '');
  process.env.ENGAGE_TEST_NAMES_FILE = namesFile;
  const { KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL } = process.env;
  if (KAFKA_BROKERS && SCHEMA_REGISTRY_URL && REDIS_URL) {
    process.stderr.write(`\n[setup] using given infrastructure: ${KAFKA_BROKERS}, ${SCHEMA_REGISTRY_URL}, ${REDIS_URL}\n`);
    return;
  }
  let env;
  if (await containerRuntimeAnswers()) {
    process.stderr.write('\n[setup] container runtime found: starting Kafka, Apicurio and Redis with testcontainers\n');
    env = await startContainers();
  } else {
    process.stderr.write('\n[setup] no container runtime: starting local Kafka, Apicurio and Redis (scripts/infra.mjs)\n');
    const infra = await import(pathToFileURL(path.join(ROOT, 'scripts/infra.mjs')).href);
    const result = await infra.up();
    env = result.env;
    globalThis.__ENGAGE_STARTED__ = result.started;
  }
  Object.assign(process.env, env);
};
