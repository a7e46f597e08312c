#!/usr/bin/env node
// Local infrastructure without Docker: Apache Kafka (KRaft, jars from Maven
// Central), Apicurio Registry (runnable archive from Maven Central) and Redis.
//
//   node scripts/infra.mjs up [--brokers N] [--redis-cluster] | down | status
//
// `--brokers 3`: a 3-node KRaft cluster (combined broker+controller nodes, a
// 3-voter quorum) on 9092/9094/9096 (controllers one port above each), data in
// .infra/kafka-<id>/; the default stays the single node in .infra/kafka/.
// `--redis-cluster`: a 3-master Redis Cluster (Debian's redis-server, cluster
// mode, no replicas) on 7000-7002 (ENGAGE_REDIS_CLUSTER_PORT moves the first),
// data in .infra/redis-cluster-<port>/, instead of the single Redis; `down`
// stops it and removes its data.
// ENGAGE_INFRA_DIR moves the state dir (the failover bench runs its own cluster).
//
// Idempotent: `up` twice is harmless (a component that already answers is left
// alone), `down` stops only the processes this script started (pid files in
// .infra/). Downloads are cached in .cache/ (git-ignored).
// Also imported by the jest global setup (test/setup/global-setup.js).
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = path.join(ROOT, '.cache');
const STATE = process.env.ENGAGE_INFRA_DIR ? path.resolve(process.env.ENGAGE_INFRA_DIR) : path.join(ROOT, '.infra');
const { kafkaNodeLayout, kafkaNodeProperties, kafkaNodeName, parseBrokersFlag } = createRequire(import.meta.url)('./kafka-nodes.cjs');
const { redisClusterLayout, redisClusterNodeArgs, redisClusterCreateArgs, redisClusterUrl, parseRedisClusterFlag } = createRequire(
  import.meta.url,
)('./redis-cluster-nodes.cjs');
// Which layout `up` started last (read by status and down): { brokers, port }.
const CLUSTER_FILE = path.join(STATE, 'kafka-cluster.json');

export const KAFKA_VERSION = '3.9.2';
export const APICURIO_VERSION = '3.0.9';
const KAFKA_PORT = Number(process.env.ENGAGE_KAFKA_PORT ?? 9092);
const REGISTRY_PORT = Number(process.env.ENGAGE_REGISTRY_PORT ?? 8081);
// NOTE: Apicurio's Quarkus management interface defaults to 9000, which is
// often taken (and is near Kafka's); move it out of the way.
const REGISTRY_MANAGEMENT_PORT = Number(process.env.ENGAGE_REGISTRY_MANAGEMENT_PORT ?? 9011);
const REDIS_DEFAULT_URL = 'redis://127.0.0.1:6379';
const REDIS_CLUSTER_PORT = Number(process.env.ENGAGE_REDIS_CLUSTER_PORT ?? 7000);
// The Redis Cluster `up --redis-cluster` started (read by status and down): { port }.
const REDIS_CLUSTER_FILE = path.join(STATE, 'redis-cluster.json');

const log = (msg) => process.stderr.write(`[infra] ${msg}\n`);

class InfraError extends Error {}

// ---------------------------------------------------------------- helpers

function pidFile(name) {
  return path.join(STATE, `${name}.pid`);
}

function readPid(name) {
  try {
    const pid = Number(fs.readFileSync(pidFile(name), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function ownPid(name) {
  const pid = readPid(name);
  return pid && isAlive(pid) ? pid : null;
}

function portOpen(port, host = '127.0.0.1', timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Which process listens on a TCP port (best effort, for the error message). */
function pidOnPort(port) {
  try {
    const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
    const m = /pid=(\d+)/.exec(out);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function waitUntil(what, check, { timeoutMs, intervalMs = 500, logFile }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      const tail = logFile && fs.existsSync(logFile) ? `\n--- last lines of ${logFile} ---\n${tailOf(logFile, 30)}` : '';
      throw new InfraError(`${what} did not become ready within ${timeoutMs / 1000}s${tail}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function tailOf(file, lines) {
  return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

function requireCommand(cmd, hint) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new InfraError(`${cmd} not found: ${hint}`);
}

function startDetached(name, cmd, args, { cwd, logFile, env }) {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const out = fs.openSync(logFile, 'a');
  // detached: own process group, so Ctrl-C of the caller does not reach it and
  // `down` can stop the whole group.
  const child = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', out, out], env: { ...process.env, ...env } });
  child.unref();
  fs.writeFileSync(pidFile(name), String(child.pid));
  return child.pid;
}

async function stopPid(name) {
  const pid = ownPid(name);
  if (!pid) {
    fs.rmSync(pidFile(name), { force: true });
    return false;
  }
  const signal = (sig) => {
    try {
      process.kill(-pid, sig); // the process group started by startDetached
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + 30000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  if (isAlive(pid)) signal('SIGKILL');
  fs.rmSync(pidFile(name), { force: true });
  return true;
}

async function assertPortFree(port, component) {
  if (await portOpen(port)) {
    const pid = pidOnPort(port);
    throw new InfraError(`port ${port} taken by ${pid ? `pid ${pid}` : 'another process'}; ${component} cannot start there`);
  }
}

// ---------------------------------------------------------------- Kafka

const kafkaLibs = path.join(CACHE, `kafka-${KAFKA_VERSION}`, 'libs');

function fetchKafka() {
  if (fs.existsSync(path.join(kafkaLibs, `kafka_2.13-${KAFKA_VERSION}.jar`))) return;
  requireCommand('mvn', 'install Maven (apt-get install maven) to fetch Kafka from Maven Central');
  log(`fetching Apache Kafka ${KAFKA_VERSION} jars from Maven Central`);
  const r = spawnSync(
    'mvn',
    [
      '-q',
      '-B',
      '-f',
      path.join(ROOT, 'deploy/local/kafka-deps.pom.xml'),
      'dependency:copy-dependencies',
      `-Dkafka.version=${KAFKA_VERSION}`,
      `-DoutputDirectory=${kafkaLibs}`,
      '-DincludeScope=runtime',
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (r.status !== 0) throw new InfraError('mvn could not fetch the Kafka jars (see output above)');
}

function writeLog4j(dir) {
  fs.writeFileSync(
    path.join(dir, 'log4j.properties'),
    [
      'log4j.rootLogger=WARN, stdout',
      'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
      'log4j.logger.kafka.server.KafkaServer=INFO',
      'log4j.logger.kafka.server.BrokerServer=INFO',
    ].join('\n'),
  );
}

/** The layout `up` last started here (status and down follow it), else the default single node. */
function recordedLayout() {
  try {
    const { brokers, port } = JSON.parse(fs.readFileSync(CLUSTER_FILE, 'utf8'));
    return kafkaNodeLayout({ brokers, port });
  } catch {
    return kafkaNodeLayout({ brokers: 1, port: KAFKA_PORT });
  }
}

async function kafkaUp(brokerCount = 1) {
  const brokers = process.env.KAFKA_BROKERS;
  if (brokers) {
    log(`KAFKA_BROKERS=${brokers} given; not starting Kafka`);
    return { started: false, names: [], env: { KAFKA_BROKERS: brokers } };
  }
  const layout = kafkaNodeLayout({ brokers: brokerCount, port: KAFKA_PORT });
  if (layout.length === 1) return kafkaSingleUp(layout);
  return kafkaClusterUp(layout);
}

function startKafkaNode(layout, nodeId, clusterId) {
  const name = kafkaNodeName(layout, nodeId);
  const dir = path.join(STATE, name);
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const props = path.join(dir, 'server.properties');
  fs.writeFileSync(props, kafkaNodeProperties(layout, nodeId, dataDir));
  writeLog4j(dir);
  const classpath = `${kafkaLibs}/*`;
  const jvm = ['-Xms256m', '-Xmx768m', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', `-Dlog4j.configuration=file:${dir}/log4j.properties`];
  if (!fs.existsSync(path.join(dataDir, 'meta.properties'))) {
    log(`formatting Kafka storage (KRaft) of ${name}`);
    const r = spawnSync(
      'java',
      [...jvm, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props, '--ignore-formatted'],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new InfraError(`Kafka storage format failed:\n${r.stdout}\n${r.stderr}`);
  }
  const logFile = path.join(dir, 'server.log');
  const pid = startDetached(name, 'java', [...jvm, '-cp', classpath, 'kafka.Kafka', props], { cwd: dir, logFile });
  log(`Kafka ${name} starting (pid ${pid}, log ${path.relative(ROOT, logFile)})`);
  return logFile;
}

async function kafkaSingleUp(layout) {
  const [{ port }] = layout;
  const env = { KAFKA_BROKERS: `127.0.0.1:${port}` };
  if (ownPid('kafka') && (await portOpen(port))) {
    log(`Kafka already running (pid ${ownPid('kafka')})`);
    return { started: false, names: [], env };
  }
  if (!ownPid('kafka') && (await portOpen(port))) {
    // Something else listens there: use it if it is a Kafka broker (another
    // checkout's `infra:up`, a system Kafka), otherwise say who holds the port.
    if (await kafkaAnswers(env.KAFKA_BROKERS)) {
      log(`using the Kafka already answering on ${env.KAFKA_BROKERS} (not started here)`);
      return { started: false, names: [], env };
    }
    await assertPortFree(port, 'Kafka');
  }
  requireCommand('java', 'install a JDK 17+ (apt-get install openjdk-17-jre-headless)');
  fetchKafka();
  const logFile = startKafkaNode(layout, 1, 'engage-local-kafka-01');
  fs.writeFileSync(CLUSTER_FILE, JSON.stringify({ brokers: 1, port }));
  return { started: true, names: ['kafka'], env, wait: () => waitForKafka(env.KAFKA_BROKERS, logFile, 1) };
}

async function kafkaClusterUp(layout) {
  const names = layout.map((n) => kafkaNodeName(layout, n.nodeId));
  const env = { KAFKA_BROKERS: layout.map((n) => `127.0.0.1:${n.port}`).join(',') };
  if (ownPid('kafka'))
    throw new InfraError(
      `a single-broker Kafka from this checkout runs (pid ${ownPid('kafka')}): \`npm run infra:down\` first (its data stays in .infra/kafka)`,
    );
  const running = names.filter((name) => ownPid(name));
  if (running.length === names.length && (await kafkaAnswers(env.KAFKA_BROKERS, layout.length))) {
    log(`Kafka cluster of ${layout.length} already running (pids ${names.map(ownPid).join(', ')})`);
    return { started: false, names: [], env };
  }
  for (const node of layout) {
    if (ownPid(kafkaNodeName(layout, node.nodeId))) continue;
    await assertPortFree(node.port, `Kafka node ${node.nodeId}`);
    await assertPortFree(node.controllerPort, `the controller of Kafka node ${node.nodeId}`);
  }
  requireCommand('java', 'install a JDK 17+ (apt-get install openjdk-17-jre-headless)');
  fetchKafka();
  // NOTE: every node of one cluster is formatted with the same cluster id; a
  // node formatted for another id refuses to join (the data dirs are per node).
  const logFiles = layout.map((n) =>
    ownPid(kafkaNodeName(layout, n.nodeId)) ? null : startKafkaNode(layout, n.nodeId, 'engage-local-kafka-03'),
  );
  fs.writeFileSync(CLUSTER_FILE, JSON.stringify({ brokers: layout.length, port: layout[0].port }));
  return {
    started: true,
    names: names.filter((_, i) => logFiles[i]),
    env,
    wait: () => waitForKafka(env.KAFKA_BROKERS, logFiles.find(Boolean), layout.length),
  };
}

async function kafkaAnswers(brokers, count = 1) {
  const { Kafka, logLevel } = await import('kafkajs');
  const admin = new Kafka({
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: 1000,
  }).admin();
  try {
    await admin.connect();
    return (await admin.describeCluster()).brokers.length >= count;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** Waits until `count` brokers are registered and a controller is elected. */
async function waitForKafka(brokers, logFile, count) {
  const { Kafka, logLevel } = await import('kafkajs');
  const admin = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
  await waitUntil(
    'Kafka',
    async () => {
      try {
        await admin.connect();
        const cluster = await admin.describeCluster();
        return cluster.brokers.length >= count && cluster.controller !== null;
      } catch {
        return false;
      }
    },
    { timeoutMs: 90000, logFile },
  );
  await admin.disconnect();
}

// ---------------------------------------------------------------- Apicurio

const apicurioDir = path.join(CACHE, `apicurio-registry-${APICURIO_VERSION}`);
const apicurioJar = path.join(apicurioDir, `apicurio-registry-app-${APICURIO_VERSION}-runner.jar`);

function fetchApicurio() {
  if (fs.existsSync(apicurioJar)) return;
  requireCommand('mvn', 'install Maven (apt-get install maven) to fetch Apicurio Registry from Maven Central');
  log(`fetching Apicurio Registry ${APICURIO_VERSION} from Maven Central`);
  const dl = path.join(CACHE, 'downloads');
  const r = spawnSync(
    'mvn',
    [
      '-q',
      '-B',
      'dependency:copy',
      `-Dartifact=io.apicurio:apicurio-registry-app:${APICURIO_VERSION}:tar.gz:all`,
      `-DoutputDirectory=${dl}`,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'], cwd: CACHE },
  );
  if (r.status !== 0) throw new InfraError('mvn could not fetch Apicurio Registry (see output above)');
  fs.mkdirSync(apicurioDir, { recursive: true });
  const t = spawnSync('tar', ['xzf', path.join(dl, `apicurio-registry-app-${APICURIO_VERSION}-all.tar.gz`), '-C', apicurioDir], {
    stdio: 'inherit',
  });
  if (t.status !== 0 || !fs.existsSync(apicurioJar)) throw new InfraError('could not unpack the Apicurio archive');
}

export function registryUrl() {
  return `http://127.0.0.1:${REGISTRY_PORT}/apis/ccompat/v7`;
}

async function registryAnswers(url) {
  try {
    const res = await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

async function registryUp() {
  const given = process.env.SCHEMA_REGISTRY_URL;
  if (given) {
    log(`SCHEMA_REGISTRY_URL=${given} given; not starting the registry`);
    return { started: false, env: { SCHEMA_REGISTRY_URL: given } };
  }
  const env = { SCHEMA_REGISTRY_URL: registryUrl() };
  if (ownPid('registry') && (await registryAnswers(env.SCHEMA_REGISTRY_URL))) {
    log(`schema registry already running (pid ${ownPid('registry')})`);
    return { started: false, env };
  }
  if (!ownPid('registry') && (await registryAnswers(env.SCHEMA_REGISTRY_URL))) {
    log(`using the schema registry already answering at ${env.SCHEMA_REGISTRY_URL} (not started here)`);
    return { started: false, env };
  }
  if (!ownPid('registry')) {
    await assertPortFree(REGISTRY_PORT, 'the schema registry');
    await assertPortFree(REGISTRY_MANAGEMENT_PORT, "the schema registry's management interface");
  }
  requireCommand('java', 'install a JDK 17+ (apt-get install openjdk-17-jre-headless)');
  fetchApicurio();
  const dir = path.join(STATE, 'registry');
  fs.mkdirSync(dir, { recursive: true });
  const logFile = path.join(dir, 'registry.log');
  // NOTE: H2 in a file, not in memory: Kafka's data survives a restart, and its
  // records carry schema ids, so the ids must survive too.
  const dbUrl = `jdbc:h2:file:${path.join(dir, 'db')};DB_CLOSE_DELAY=-1`;
  const args = [
    '-Xms128m',
    '-Xmx384m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    `-Dquarkus.http.port=${REGISTRY_PORT}`,
    '-Dquarkus.http.host=127.0.0.1',
    `-Dquarkus.management.port=${REGISTRY_MANAGEMENT_PORT}`,
    '-Dquarkus.management.host=127.0.0.1',
    '-Dapicurio.storage.kind=sql',
    '-Dapicurio.storage.sql.kind=h2',
    `-Dapicurio.datasource.url=${dbUrl}`,
    '-Dapicurio.datasource.username=sa',
    '-Dapicurio.datasource.password=sa',
    '-Dapicurio.rest.deletion.artifact.enabled=true',
    '-Dapicurio.rest.deletion.artifact-version.enabled=true',
    '-Dquarkus.log.level=WARN',
    '-Dquarkus.log.category."io.apicurio".level=INFO',
    '-jar',
    apicurioJar,
  ];
  const pid = startDetached('registry', 'java', args, { cwd: dir, logFile });
  log(`schema registry starting (pid ${pid}, log ${path.relative(ROOT, logFile)})`);
  return {
    started: true,
    env,
    wait: () => waitUntil('schema registry', () => registryAnswers(env.SCHEMA_REGISTRY_URL), { timeoutMs: 120000, logFile }),
  };
}

// ---------------------------------------------------------------- Redis

function redisPing(url) {
  return new Promise((resolve) => {
    // A cluster URL (`redis-cluster://h1:p1,h2:p2`): its first node answers for it.
    const u = new URL(url.startsWith('redis-cluster://') ? `redis://${url.slice('redis-cluster://'.length).split(',')[0]}` : url);
    const socket = net.connect({ port: Number(u.port || 6379), host: u.hostname });
    let buf = '';
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => socket.write(u.password ? `AUTH ${decodeURIComponent(u.password)}\r\nPING\r\n` : 'PING\r\n'));
    socket.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('+PONG')) done(true);
      else if (buf.startsWith('-')) done(false);
    });
    socket.once('error', () => done(false));
  });
}

/** redis-server and redis-cli (both in Debian's redis-server package), installed from apt when missing. */
function ensureRedisServer() {
  if (spawnSync('sh', ['-c', 'command -v redis-server && command -v redis-cli']).status === 0) return;
  log('redis-server not found; installing it from apt');
  const r = spawnSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server'], {
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new InfraError('redis-server not found and apt-get could not install it');
}

async function redisUp() {
  if (process.env.REDIS_URL) {
    if (await redisPing(process.env.REDIS_URL)) return { started: false, env: { REDIS_URL: process.env.REDIS_URL } };
    log(`REDIS_URL=${process.env.REDIS_URL} does not answer; trying ${REDIS_DEFAULT_URL}`);
  }
  const env = { REDIS_URL: REDIS_DEFAULT_URL };
  if (await redisPing(REDIS_DEFAULT_URL)) {
    log(ownPid('redis') ? `Redis already running (pid ${ownPid('redis')})` : 'using the Redis already answering on 127.0.0.1:6379');
    return { started: false, env };
  }
  await assertPortFree(6379, 'Redis');
  ensureRedisServer();
  const dir = path.join(STATE, 'redis');
  fs.mkdirSync(dir, { recursive: true });
  const logFile = path.join(dir, 'redis.log');
  const pid = startDetached(
    'redis',
    'redis-server',
    // NOTE: AOF, fsynced every second: the identity graph, profile states and
    // dedupe keys live only here, and a restart must not lose them (at most ~1 s
    // of writes). The files go to .infra/redis/appendonlydir. https://redis.io/docs/latest/operate/oss_and_stack/management/persistence/
    ['--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', dir],
    { cwd: dir, logFile },
  );
  log(`Redis starting (pid ${pid})`);
  return { started: true, env, wait: () => waitUntil('Redis', () => redisPing(REDIS_DEFAULT_URL), { timeoutMs: 20000, logFile }) };
}

// ---------------------------------------------------------------- Redis Cluster

function redisCli(port, args) {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 30000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** `cluster info` of one node as fields (empty when the node does not answer). */
function clusterInfo(port) {
  const { ok, out } = redisCli(port, ['cluster', 'info']);
  if (!ok) return {};
  return Object.fromEntries(
    out
      .split(/\r?\n/)
      .filter((l) => l.includes(':'))
      .map((l) => l.split(':').map((x) => x.trim())),
  );
}

function recordedRedisCluster() {
  try {
    const { port } = JSON.parse(fs.readFileSync(REDIS_CLUSTER_FILE, 'utf8'));
    return redisClusterLayout({ port });
  } catch {
    return null;
  }
}

const clusterOk = (layout) => layout.every((n) => clusterInfo(n.port).cluster_state === 'ok');

async function redisClusterUp() {
  const layout = redisClusterLayout({ port: REDIS_CLUSTER_PORT });
  const env = { REDIS_URL: redisClusterUrl(layout) };
  if (layout.every((n) => ownPid(n.name)) && clusterOk(layout)) {
    log(`Redis Cluster already running (pids ${layout.map((n) => ownPid(n.name)).join(', ')})`);
    return { started: false, names: [], env };
  }
  ensureRedisServer();
  for (const node of layout) {
    if (ownPid(node.name)) continue;
    await assertPortFree(node.port, `Redis Cluster node ${node.port}`);
    await assertPortFree(node.busPort, `the cluster bus of Redis Cluster node ${node.port}`);
  }
  const started = [];
  for (const node of layout) {
    if (ownPid(node.name)) continue;
    const dir = path.join(STATE, node.name);
    fs.mkdirSync(dir, { recursive: true });
    const logFile = path.join(dir, 'redis.log');
    const pid = startDetached(node.name, 'redis-server', redisClusterNodeArgs(node, dir), { cwd: dir, logFile });
    log(`Redis Cluster node ${node.port} starting (pid ${pid}, log ${path.relative(ROOT, logFile)})`);
    started.push(node.name);
  }
  fs.writeFileSync(REDIS_CLUSTER_FILE, JSON.stringify({ port: layout[0].port }));
  const wait = async () => {
    for (const node of layout)
      await waitUntil(`Redis Cluster node ${node.port}`, () => redisPing(`redis://127.0.0.1:${node.port}`), {
        timeoutMs: 20000,
        logFile: path.join(STATE, node.name, 'redis.log'),
      });
    // NOTE: a node restarted with its nodes.conf already owns its slots and
    // rejoins by itself; only fresh nodes (no slot anywhere) are joined here.
    if (layout.every((n) => Number(clusterInfo(n.port).cluster_slots_assigned ?? 0) === 0)) {
      log(`joining ${layout.length} masters into one cluster`);
      const r = spawnSync('redis-cli', redisClusterCreateArgs(layout), { encoding: 'utf8', timeout: 60000 });
      if (r.status !== 0) throw new InfraError(`redis-cli --cluster create failed:\n${r.stdout}\n${r.stderr}`);
    }
    await waitUntil('Redis Cluster (cluster_state:ok on every node)', () => clusterOk(layout), {
      timeoutMs: 30000,
      logFile: path.join(STATE, layout[0].name, 'redis.log'),
    });
  };
  return { started: started.length > 0, names: started, env, wait };
}

async function redisClusterDown() {
  const layout = recordedRedisCluster() ?? redisClusterLayout({ port: REDIS_CLUSTER_PORT });
  for (const node of layout) {
    if (await stopPid(node.name)) log(`stopped ${node.name}`);
    // Only directories this script made (pid file or data): a cluster's
    // nodes.conf must go with its data, or the next `up` finds stale slots.
    const dir = path.join(STATE, node.name);
    if (fs.existsSync(dir)) {
      fs.rmSync(dir, { recursive: true, force: true });
      log(`removed ${path.relative(ROOT, dir)}`);
    }
  }
  fs.rmSync(REDIS_CLUSTER_FILE, { force: true });
}

// ---------------------------------------------------------------- commands

/**
 * Brings everything up (in parallel) and returns the env to use plus what was
 * started. `brokers`: Kafka nodes (1, the default, or a KRaft cluster of N).
 * `redisCluster`: a local 3-master Redis Cluster instead of the single Redis
 * (a REDIS_URL in the environment is then ignored: the flag asks for a cluster).
 */
export async function up({ brokers = 1, redisCluster = false } = {}) {
  fs.mkdirSync(STATE, { recursive: true });
  fs.mkdirSync(CACHE, { recursive: true });
  const redis = redisCluster ? await redisClusterUp() : await redisUp();
  const parts = [redis, await kafkaUp(brokers), await registryUp()];
  await Promise.all(parts.map((p) => p.wait?.()));
  const env = Object.assign({}, ...parts.map((p) => p.env));
  const redisStarted = redisCluster ? (redis.started ? ['redis-cluster'] : []) : redis.started ? ['redis'] : [];
  const started = [redisStarted, parts[1].names, parts[2].started ? ['registry'] : []].flat();
  fs.writeFileSync(path.join(STATE, 'env.json'), JSON.stringify(env, null, 2));
  return { env, started };
}

/**
 * Stops what this script started; `kafka` stands for every Kafka node (the
 * single one or the cluster's), `redis-cluster` for every Redis Cluster node
 * (stopped and their data removed).
 */
export async function down(names = ['registry', 'kafka', 'redis', 'redis-cluster']) {
  const nodes = recordedLayout();
  const kafkaNames = ['kafka', ...(nodes.length > 1 ? nodes.map((n) => kafkaNodeName(nodes, n.nodeId)) : [])];
  for (const name of names.flatMap((n) => (n === 'kafka' ? kafkaNames : [n]))) {
    if (name === 'redis-cluster') await redisClusterDown();
    else if (await stopPid(name)) log(`stopped ${name}`);
  }
}

export async function status() {
  const rows = [];
  const nodes = recordedLayout();
  for (const node of nodes) {
    const name = kafkaNodeName(nodes, node.nodeId);
    const kafka = await portOpen(node.port);
    rows.push([name, kafka ? 'up' : 'down', `127.0.0.1:${node.port}`, ownPid(name) ?? (kafka ? 'external' : '-')]);
  }
  const reg = await registryAnswers(registryUrl());
  rows.push(['schema-registry', reg ? 'up' : 'down', registryUrl(), ownPid('registry') ?? (reg ? 'external' : '-')]);
  const cluster = recordedRedisCluster();
  if (cluster) {
    for (const node of cluster) {
      const state = clusterInfo(node.port).cluster_state;
      rows.push([
        node.name,
        state === 'ok' ? 'up' : 'down',
        `127.0.0.1:${node.port} cluster_state:${state ?? '-'}`,
        ownPid(node.name) ?? '-',
      ]);
    }
  }
  // The single Redis: shown unless the cluster replaces it (REDIS_URL naming the cluster, or no REDIS_URL and a cluster started).
  const redisUrl = process.env.REDIS_URL ?? REDIS_DEFAULT_URL;
  if (!(cluster && (redisUrl.startsWith('redis-cluster://') || (!process.env.REDIS_URL && !ownPid('redis'))))) {
    const redis = await redisPing(redisUrl);
    rows.push(['redis', redis ? 'up' : 'down', redisUrl, ownPid('redis') ?? (redis ? 'external' : '-')]);
  }
  return rows;
}

async function main() {
  const cmd = process.argv[2];
  try {
    if (cmd === 'up') {
      const argv = process.argv.slice(3);
      const { env } = await up({ brokers: parseBrokersFlag(argv), redisCluster: parseRedisClusterFlag(argv) });
      log('infrastructure ready; export this environment:');
      for (const [k, v] of Object.entries(env)) process.stdout.write(`export ${k}=${v}\n`);
    } else if (cmd === 'down') {
      await down();
    } else if (cmd === 'status') {
      const rows = await status();
      for (const r of rows) process.stdout.write(`${r[0].padEnd(20)} ${String(r[1]).padEnd(5)} ${String(r[2]).padEnd(44)} pid=${r[3]}\n`);
      process.exitCode = rows.every((r) => r[1] === 'up') ? 0 : 1;
    } else {
      process.stderr.write('usage: node scripts/infra.mjs up [--brokers N] [--redis-cluster] | down | status\n');
      process.exitCode = 2;
    }
  } catch (err) {
    const known = err instanceof InfraError || /^--brokers /.test(err.message);
    process.stderr.write(`[infra] error: ${known ? err.message : err.stack}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) await main();
