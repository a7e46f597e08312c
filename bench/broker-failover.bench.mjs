// A Kafka broker dies under load: the ingest keeps acknowledging and every
// acknowledged event reaches engage.events.resolved (issue 21, item 3).
//
//   npm run build && node bench/broker-failover.bench.mjs
//
// Starts its own 3-node KRaft cluster with `scripts/infra.mjs up --brokers 3`
// (ENGAGE_INFRA_DIR a temp dir, ENGAGE_KAFKA_PORT default 29192: never the
// shared 9092), and uses the shared schema registry and Redis with a fresh
// prefix (SCHEMA_REGISTRY_URL, REDIS_URL; the fault is Kafka's only). Topics
// take TOPIC_REPLICATION_FACTOR=3 (so min.insync.replicas 2). The built ingest
// and identity resolver run against it; CONCURRENCY clients post /v1/batch of
// BATCH events, each with a fresh messageId, for FAILOVER_SECONDS; at
// FAILOVER_FAULT_AT seconds the broker leading the most engage.events.raw
// partitions gets FAILOVER_SIGNAL (SIGKILL by default; SIGSTOP freezes it, and
// it is resumed after the load). Then a fresh consumer reads
// engage.events.resolved from the start until every acknowledged messageId is
// there or FAILOVER_DRAIN_SECONDS pass. Writes bench/RESULTS-failover.md; exits
// 1 when an acknowledged event is missing or no request was acknowledged after
// the fault.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { ROOT, benchEnv, startService, until, pct, dropKeys, writeResults } from './harness.mjs';

const require = createRequire(path.join(ROOT, 'package.json'));
const { createKafka, createProducer, deadLetterTopicFor, ensureTopics, topicRegistry } = require('./libs/kafka/dist/index.js');
const { SchemaCodec } = require('./libs/schemas/dist/index.js');
const { ConfigStore, ConfigWriter } = require('./libs/config-store/dist/index.js');
const { silentLogger } = require('./libs/logging/dist/index.js');

const KAFKA_PORT = Number(process.env.FAILOVER_KAFKA_PORT ?? 29192);
const SECONDS = Number(process.env.FAILOVER_SECONDS ?? 30);
const FAULT_AT = Number(process.env.FAILOVER_FAULT_AT ?? 10);
const SIGNAL = process.env.FAILOVER_SIGNAL ?? 'SIGKILL';
const CONCURRENCY = Number(process.env.FAILOVER_CONCURRENCY ?? 16);
const BATCH = Number(process.env.FAILOVER_BATCH ?? 20);
const DRAIN_SECONDS = Number(process.env.FAILOVER_DRAIN_SECONDS ?? 180);
const REGISTRY = process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7';
const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const WRITE_KEY = 'failover-write-key-0123456789abcdef';
const AUTH = `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`;
if (SIGNAL !== 'SIGKILL' && SIGNAL !== 'SIGSTOP') throw new Error(`FAILOVER_SIGNAL must be SIGKILL or SIGSTOP, got ${SIGNAL}`);
if ([9092, 9093].includes(KAFKA_PORT)) throw new Error('FAILOVER_KAFKA_PORT must not be the shared Kafka port');

const runId = Date.now().toString(36);
const prefix = `bench-failover-${runId}.`;
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'engage-failover-'));
const log = (msg) => process.stderr.write(`[failover] ${msg}\n`);

// --- the bench's own cluster, through scripts/infra.mjs ----------------------

const infraEnv = {
  ...process.env,
  ENGAGE_INFRA_DIR: stateDir,
  ENGAGE_KAFKA_PORT: String(KAFKA_PORT),
  SCHEMA_REGISTRY_URL: REGISTRY,
  REDIS_URL: REDIS,
};
delete infraEnv.KAFKA_BROKERS;
const infra = (...args) => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/infra.mjs'), ...args], { env: infraEnv, encoding: 'utf8' });
  if (r.status !== 0 && args[0] !== 'status') throw new Error(`infra ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
};
const nodePid = (id) => Number(fs.readFileSync(path.join(stateDir, `kafka-${id}.pid`), 'utf8'));

const children = [];
let downDone = false;
const cleanup = () => {
  for (const c of children) c.kill('SIGTERM');
  if (!downDone) {
    downDone = true;
    for (const id of [1, 2, 3]) {
      try {
        process.kill(-nodePid(id), 'SIGCONT');
      } catch {
        /* gone or never started */
      }
    }
    infra('down');
  }
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

log(`starting a 3-broker KRaft cluster on ${KAFKA_PORT}/${KAFKA_PORT + 2}/${KAFKA_PORT + 4} in ${stateDir}`);
infra('up', '--brokers', '3');
const BROKERS = `127.0.0.1:${KAFKA_PORT},127.0.0.1:${KAFKA_PORT + 2},127.0.0.1:${KAFKA_PORT + 4}`;

// --- topics, schemas, a source --------------------------------------------

const quiet = silentLogger();
const topics = topicRegistry(prefix, { replicationFactor: 3 });
const kafka = createKafka({ brokers: BROKERS.split(','), clientId: 'failover-bench' }, { log: quiet });
await ensureTopics(kafka, Object.values(topics));
const codec = new SchemaCodec({ url: REGISTRY });
await codec.registerTopics(Object.values(topics));
{
  const producer = createProducer(kafka);
  await producer.connect();
  const store = new ConfigStore({ topic: topics.config.name, groupPrefix: 'failover-bench' }, { kafka, codec, log: quiet });
  await store.start();
  await new ConfigWriter({ topic: topics.config.name }, { producer, codec, store }).write('source', 'src_failover', 'spa_failover', {
    id: 'src_failover',
    spaceId: 'spa_failover',
    name: 'failover',
    writeKey: WRITE_KEY,
    enabled: true,
    rateLimit: { requestsPerSecond: 1e9, burst: 1e9 },
    createdAt: 'now',
    updatedAt: 'now',
  });
  await store.stop();
  await producer.disconnect();
}
const admin = kafka.admin();
await admin.connect();
const describeTopic = async (name) => (await admin.fetchTopicMetadata({ topics: [name] })).topics[0].partitions;
const rawPartitions = await describeTopic(topics.eventsRaw.name);
const minIsr = topics.eventsRaw.config['min.insync.replicas'];

// --- services ---------------------------------------------------------------

const env = benchEnv(prefix, {
  KAFKA_BROKERS: BROKERS,
  SCHEMA_REGISTRY_URL: REGISTRY,
  REDIS_URL: REDIS,
  TOPIC_REPLICATION_FACTOR: '3',
  INGEST_DEDUPE_TTL_SECONDS: '900',
});
const outDir = path.join(ROOT, 'bench/out');
fs.mkdirSync(outDir, { recursive: true });
const ingest = await startService('ingest', env, { logFile: path.join(outDir, `failover-ingest-${runId}.log`) });
const resolver = await startService('identity-resolver', env, { logFile: path.join(outDir, `failover-resolver-${runId}.log`) });
children.push(ingest.child, resolver.child);
log(`ingest on ${ingest.port}, identity resolver up; load for ${SECONDS} s, ${SIGNAL} at ${FAULT_AT} s`);

// --- load -------------------------------------------------------------------

let seq = 0;
const acked = new Set();
const requests = []; // { start, end, status, n }
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const event = (id) =>
  `{"type":"track","userId":"user-${seq % 2000}","event":"Order Completed","messageId":"${id}","timestamp":"2026-01-01T00:00:00.000Z","properties":{"total":10}}`;
function post() {
  const ids = Array.from({ length: BATCH }, () => `${runId}-${seq++}`);
  const body = `{"batch":[${ids.map(event).join(',')}]}`;
  const start = performance.now();
  return new Promise((resolve) => {
    const done = (status) => {
      requests.push({ start, end: performance.now(), status, n: ids.length });
      if (status === 200) for (const id of ids) acked.add(id);
      resolve();
    };
    const req = http.request(
      {
        host: '127.0.0.1',
        port: ingest.port,
        path: '/v1/batch',
        method: 'POST',
        agent,
        timeout: 120_000,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: AUTH },
      },
      (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => done('error'));
    req.end(body);
  });
}

const t0 = performance.now();
const deadline = t0 + SECONDS * 1000;
let fault = null;
const faultTimer = setTimeout(async () => {
  // The broker leading the most engage.events.raw partitions: the ingest's writes go there.
  const leaders = new Map();
  for (const p of await describeTopic(topics.eventsRaw.name)) leaders.set(p.leader, (leaders.get(p.leader) ?? 0) + 1);
  const [victim, leads] = [...leaders].sort((a, b) => b[1] - a[1])[0];
  const cluster = await admin.describeCluster();
  fault = { at: performance.now(), victim, leads, controller: cluster.controller === victim, pid: nodePid(victim) };
  process.kill(-fault.pid, SIGNAL);
  log(
    `${SIGNAL} broker ${victim} (pid ${fault.pid}, leader of ${leads}/${rawPartitions.length} events.raw partitions${fault.controller ? ', the active controller' : ''})`,
  );
}, FAULT_AT * 1000);
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < deadline) await post();
  }),
);
clearTimeout(faultTimer);
agent.destroy();
if (!fault) throw new Error('the load ended before the fault: raise FAILOVER_SECONDS');
const loadEnd = performance.now();
const rawAfter = await describeTopic(topics.eventsRaw.name);

// --- every acknowledged event in engage.events.resolved? ---------------------

// engage.events.raw and the resolver's DLQ too: a missing event is then the
// ingest's loss (not in raw) or the resolver's (in raw, not resolved).
const seen = new Map();
const inRaw = new Set();
const inDlq = new Set();
const dlqTopic = deadLetterTopicFor(topics.eventsRaw).name;
await ensureTopics(kafka, [deadLetterTopicFor(topics.eventsRaw)]);
let lastArrival = performance.now();
// How far engage.events.raw was read: the missing-from-raw count only counts once all of it was.
const rawEnd = new Map((await admin.fetchTopicOffsets(topics.eventsRaw.name)).map((p) => [p.partition, Number(p.high)]));
const rawRead = new Map();
const rawDone = () => [...rawEnd].every(([p, high]) => high === 0 || (rawRead.get(p) ?? -1) + 1 >= high);
const consumer = kafka.consumer({ groupId: `${prefix}failover-check` });
await consumer.connect();
await consumer.subscribe({ topics: [topics.eventsResolved.name, topics.eventsRaw.name, dlqTopic], fromBeginning: true });
await consumer.run({
  eachBatch: async ({ batch }) => {
    for (const m of batch.messages) {
      const { message_id: id } = await codec.decode(m.value);
      if (batch.topic === topics.eventsRaw.name) {
        inRaw.add(id);
        rawRead.set(batch.partition, Math.max(rawRead.get(batch.partition) ?? -1, Number(m.offset)));
      } else if (batch.topic === dlqTopic) inDlq.add(id);
      else {
        seen.set(id, (seen.get(id) ?? 0) + 1);
        lastArrival = performance.now();
      }
    }
  },
});
const drainStart = performance.now();
// Until every acknowledged event is resolved, or nothing new arrived for 30 s (then some are missing).
await until(
  () => [...acked].every((id) => seen.has(id)) || (rawDone() && performance.now() - lastArrival > 30_000),
  'every acknowledged event in engage.events.resolved',
  DRAIN_SECONDS * 1000,
).catch((err) => log(err.message));
const drainSeconds = (performance.now() - drainStart) / 1000;
await consumer.disconnect();
if (SIGNAL === 'SIGSTOP') process.kill(-fault.pid, 'SIGCONT');

// --- numbers ----------------------------------------------------------------

const lost = [...acked].filter((id) => !seen.has(id));
if (!rawDone()) log('engage.events.raw not read to its end: the split below is incomplete');
const lostByIngest = lost.filter((id) => !inRaw.has(id));
if (lost.length > 0) log(`missing: ${lost.join(' ')}`);
const lostInDlq = lost.filter((id) => inDlq.has(id));
const duplicates = [...seen.values()].filter((n) => n > 1).length;
const unacked = requests.filter((r) => r.status !== 200);
const statuses = {};
for (const r of requests) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
const before = requests.filter((r) => r.end < fault.at);
const after = requests.filter((r) => r.start >= fault.at);
const spanning = requests.filter((r) => r.start < fault.at && r.end >= fault.at);
const okEnds = requests
  .filter((r) => r.status === 200)
  .map((r) => r.end)
  .sort((a, b) => a - b);
// The pause the clients saw: the longest time without any acknowledgement, from the fault on.
let gap = 0;
let gapFrom = fault.at;
for (const end of okEnds.filter((e) => e >= fault.at)) {
  gap = Math.max(gap, end - gapFrom);
  gapFrom = end;
}
const firstOkAfter = okEnds.find((e) => e >= fault.at);
const lat = (rs) => rs.map((r) => r.end - r.start).sort((a, b) => a - b);
const ms = (v) => (v === undefined ? '-' : `${Math.round(v).toLocaleString('en-US')} ms`);
const rate = (rs, seconds) => Math.round(rs.filter((r) => r.status === 200).reduce((n, r) => n + r.n, 0) / seconds).toLocaleString('en-US');
const isr = (ps) => ps.map((p) => `${p.partitionId}:${p.leader}/[${p.isr.join(',')}]`).join(' ');
const ackedAfter = after.filter((r) => r.status === 200).length;

const lines = [
  '# Broker failover under load',
  '',
  `Run ${new Date().toISOString()} on ${os.cpus().length} CPUs (${os.cpus()[0].model}), \`node bench/broker-failover.bench.mjs\`` +
    ` (the bench's own 3-node KRaft cluster via \`scripts/infra.mjs up --brokers 3\`, Kafka 3.9.2; the built ingest and identity resolver;` +
    ` TOPIC_REPLICATION_FACTOR=3, min.insync.replicas ${minIsr}; the producers send with acks=all).`,
  '',
  `Load: ${CONCURRENCY} clients posting /v1/batch of ${BATCH} events (fresh messageIds) for ${SECONDS} s;` +
    ` at ${((fault.at - t0) / 1000).toFixed(1)} s **${SIGNAL}** of broker ${fault.victim}, leader of ${fault.leads} of ${rawPartitions.length}` +
    ` engage.events.raw partitions${fault.controller ? ' and the active controller' : ''}. It stays down for the rest of the run.`,
  '',
  '| | value |',
  '|---|---|',
  `| requests | ${requests.length.toLocaleString('en-US')} (statuses ${JSON.stringify(statuses)}) |`,
  `| events acknowledged (200) | ${acked.size.toLocaleString('en-US')} |`,
  `| acknowledged events missing from engage.events.resolved | **${lost.length}** (checked by messageId, drained in ${drainSeconds.toFixed(1)} s) |`,
  `| of those, missing from engage.events.raw (the ingest's) / in raw but not resolved (the resolver's) / in the resolver's DLQ | ${lostByIngest.length} / ${lost.length - lostByIngest.length} / ${lostInDlq.length} |`,
  `| messageIds seen more than once in engage.events.resolved | ${duplicates} (at-least-once: a producer retry after a lost ack) |`,
  `| requests not acknowledged | ${unacked.length} (events in them: ${unacked.reduce((n, r) => n + r.n, 0)}; a client would retry these) |`,
  `| requests started after the fault and acknowledged | ${ackedAfter} of ${after.length} |`,
  `| pause seen by clients: longest time without an acknowledgement from the fault on | **${ms(gap)}** |`,
  `| first acknowledgement after the fault | ${ms(firstOkAfter === undefined ? undefined : firstOkAfter - fault.at)} later |`,
  `| requests in flight across the fault: count, slowest | ${spanning.length}, ${ms(lat(spanning).at(-1))} |`,
  `| latency before the fault: p50 / p99 / max | ${ms(pct(lat(before), 50))} / ${ms(pct(lat(before), 99))} / ${ms(lat(before).at(-1))} |`,
  `| latency of requests started after the fault: p50 / p99 / max | ${ms(pct(lat(after), 50))} / ${ms(pct(lat(after), 99))} / ${ms(lat(after).at(-1))} |`,
  `| acknowledged events/s before / after the fault | ${rate(before, (fault.at - t0) / 1000)} / ${rate(after, (loadEnd - fault.at) / 1000)} |`,
  '',
  `engage.events.raw partition:leader/[ISR] before the fault: \`${isr(rawPartitions)}\`; at the end of the load: \`${isr(rawAfter)}\`.`,
  '',
  lost.length === 0 && ackedAfter > 0
    ? 'Verdict: the ingest kept acknowledging with one broker of three gone, and nothing it acknowledged was lost.'
    : `Verdict: FAILED (${lost.length} acknowledged events missing, ${ackedAfter} requests acknowledged after the fault). First missing: ${lost.slice(0, 5).join(', ')}`,
];
writeResults('RESULTS-failover.md', lines);
console.log(lines.join('\n'));

await admin.disconnect();
for (const c of children) c.kill('SIGTERM');
await dropKeys(REDIS, prefix).catch(() => {});
cleanup();
fs.rmSync(stateDir, { recursive: true, force: true });
process.exit(lost.length === 0 && ackedAfter > 0 ? 0 : 1);
