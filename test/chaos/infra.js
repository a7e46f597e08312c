// The chaos run's own infrastructure: a Kafka broker (KRaft), an Apicurio
// registry and a Redis (AOF, fsync every second), each on a non-default port
// with its data in a temp dir, started with the same commands as
// scripts/infra.mjs (same jars from .cache/). Never the shared
// 127.0.0.1:9092 / :8081 / :6379: the faults stop and kill these processes.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '../..');
const KAFKA_LIBS = path.join(ROOT, '.cache/kafka-3.9.2/libs');
const APICURIO_JAR = path.join(ROOT, '.cache/apicurio-registry-3.0.9/apicurio-registry-app-3.0.9-runner.jar');
const SHARED_PORTS = new Set([9092, 9093, 8081, 9011, 6379]);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function until(check, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs} ms`);
    await sleep(300);
  }
}

/** One infrastructure process: started detached (own process group), stoppable, pausable, restartable. */
class Component {
  constructor(name, cmd, args, { cwd, ready, env }) {
    Object.assign(this, { name, cmd, args, cwd, ready, env, child: null });
    this.logFile = path.join(cwd, `${name}.log`);
  }
  async start(timeoutMs = 120_000) {
    const out = fs.openSync(this.logFile, 'a');
    this.child = spawn(this.cmd, this.args, {
      cwd: this.cwd,
      detached: true,
      stdio: ['ignore', out, out],
      env: { ...process.env, ...this.env },
    });
    fs.closeSync(out);
    const child = this.child;
    this.exited = new Promise((r) => child.once('exit', r));
    await until(this.ready, this.name, timeoutMs);
  }
  signal(sig) {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(-this.child.pid, sig);
    } catch {
      this.child.kill(sig);
    }
  }
  async kill() {
    if (!this.child) return;
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    if (this.exited) await this.exited;
  }
  async stop() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const t = setTimeout(() => this.signal('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(t);
  }
}

function redisPing(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      buf += d;
      if (buf.includes('+PONG')) done(true);
      else if (buf.startsWith('-')) done(false);
    });
    s.once('error', () => done(false));
  });
}

async function kafkaReady(brokers) {
  const { Kafka, logLevel } = require('kafkajs');
  const admin = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 1000 }).admin();
  try {
    await admin.connect();
    const c = await admin.describeCluster();
    return c.brokers.length > 0 && c.controller !== null;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Starts Kafka, the registry and Redis in a fresh temp dir on the given ports
 * (defaults far from the shared ones). Returns { env, kafka, registry, redis, dir, down() }.
 */
async function startInfra(ports = {}) {
  const kafkaPort = Number(ports.kafka ?? process.env.CHAOS_KAFKA_PORT ?? 19392);
  const registryPort = Number(ports.registry ?? process.env.CHAOS_REGISTRY_PORT ?? 18381);
  const registryMgmtPort = Number(ports.registryManagement ?? process.env.CHAOS_REGISTRY_MANAGEMENT_PORT ?? 19311);
  const redisPort = Number(ports.redis ?? process.env.CHAOS_REDIS_PORT ?? 16679);
  for (const p of [kafkaPort, kafkaPort + 1, registryPort, registryMgmtPort, redisPort]) {
    if (SHARED_PORTS.has(p)) throw new Error(`port ${p} is the shared infrastructure's: the chaos run must use its own`);
    if (await portOpen(p)) throw new Error(`port ${p} is taken: set CHAOS_KAFKA_PORT / CHAOS_REGISTRY_PORT / CHAOS_REDIS_PORT`);
  }
  if (!fs.existsSync(path.join(KAFKA_LIBS, 'kafka_2.13-3.9.2.jar')) || !fs.existsSync(APICURIO_JAR)) {
    throw new Error('Kafka / Apicurio jars missing in .cache/: run `npm run infra:up` once (it fetches them)');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engage-chaos-'));
  for (const d of ['kafka/data', 'registry', 'redis']) fs.mkdirSync(path.join(dir, d), { recursive: true });

  // Kafka: the properties of scripts/infra.mjs, on our ports and dir.
  const kdir = path.join(dir, 'kafka');
  const props = path.join(kdir, 'server.properties');
  fs.writeFileSync(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${kafkaPort + 1}`,
      `listeners=PLAINTEXT://127.0.0.1:${kafkaPort},CONTROLLER://127.0.0.1:${kafkaPort + 1}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${kafkaPort}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      `log.dirs=${path.join(kdir, 'data')}`,
      'num.partitions=3',
      'auto.create.topics.enable=false',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=10',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'transaction.state.log.num.partitions=10',
      'group.initial.rebalance.delay.ms=0',
      'num.network.threads=2',
      'num.io.threads=4',
      'delete.topic.enable=true',
    ].join('\n'),
  );
  fs.writeFileSync(
    path.join(kdir, 'log4j.properties'),
    'log4j.rootLogger=WARN, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\nlog4j.appender.stdout.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n',
  );
  const jvm = ['-Xms256m', '-Xmx768m', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', `-Dlog4j.configuration=file:${kdir}/log4j.properties`];
  const cp = `${KAFKA_LIBS}/*`;
  const fmt = spawnSync(
    'java',
    [...jvm, '-cp', cp, 'kafka.tools.StorageTool', 'format', '-t', 'engage-chaos-kafka-01', '-c', props, '--ignore-formatted'],
    { encoding: 'utf8' },
  );
  if (fmt.status !== 0) throw new Error(`Kafka storage format failed: ${fmt.stderr}`);
  const brokers = `127.0.0.1:${kafkaPort}`;
  const kafka = new Component('kafka', 'java', [...jvm, '-cp', cp, 'kafka.Kafka', props], { cwd: kdir, ready: () => kafkaReady(brokers) });

  const rdir = path.join(dir, 'registry');
  const registryUrl = `http://127.0.0.1:${registryPort}/apis/ccompat/v7`;
  const registry = new Component(
    'registry',
    'java',
    [
      '-Xms128m',
      '-Xmx384m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      `-Dquarkus.http.port=${registryPort}`,
      '-Dquarkus.http.host=127.0.0.1',
      `-Dquarkus.management.port=${registryMgmtPort}`,
      '-Dquarkus.management.host=127.0.0.1',
      '-Dapicurio.storage.kind=sql',
      '-Dapicurio.storage.sql.kind=h2',
      `-Dapicurio.datasource.url=jdbc:h2:file:${path.join(rdir, 'db')};DB_CLOSE_DELAY=-1`,
      '-Dapicurio.datasource.username=sa',
      '-Dapicurio.datasource.password=sa',
      '-Dquarkus.log.level=WARN',
      '-jar',
      APICURIO_JAR,
    ],
    {
      cwd: rdir,
      ready: async () => {
        try {
          return (await fetch(`${registryUrl}/subjects`, { signal: AbortSignal.timeout(2000) })).ok;
        } catch {
          return false;
        }
      },
    },
  );

  const sdir = path.join(dir, 'redis');
  // The brief's persistence: AOF, fsync every second, its own port and dir (what scripts/infra.mjs runs).
  const redis = new Component(
    'redis',
    'redis-server',
    ['--bind', '127.0.0.1', '--port', String(redisPort), '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', sdir],
    { cwd: sdir, ready: () => redisPing(redisPort) },
  );

  try {
    await Promise.all([redis.start(20_000), kafka.start(120_000), registry.start(180_000)]);
  } catch (err) {
    await Promise.all([registry.kill(), kafka.kill(), redis.kill()]);
    throw err;
  }
  const env = { KAFKA_BROKERS: brokers, SCHEMA_REGISTRY_URL: registryUrl, REDIS_URL: `redis://127.0.0.1:${redisPort}` };
  return {
    env,
    dir,
    kafka,
    registry,
    redis,
    down: async () => {
      await Promise.all([registry.stop(), kafka.stop(), redis.stop()]);
    },
  };
}

module.exports = { startInfra, Component, sleep, until };
