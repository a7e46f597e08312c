// Ingest throughput and latency against a bare express baseline, same machine, same run.
//
//   npm run build && node bench/ingest.bench.mjs
//
// Starts the built ingest (services/ingest/dist/main.js) on the running
// infrastructure (KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL, defaults as in
// CONTRACT.md) with a fresh topic prefix and a source written to engage.config,
// and a bare express app whose handler only parses JSON and answers
// {"success":true}. One keep-alive load loop (node:http, CONCURRENCY requests
// in flight) drives them: single /v1/track calls, then /v1/batch of 100.
// TRICKY: the machine is shared and its load swings within seconds, so each
// comparison alternates slices (1 s for single calls, 3 s for batches) between
// the targets, BENCH_SECONDS in all for each, and sums them, rather than
// measuring one target after the other.
// Every event carries a fresh messageId, so each one the ingest accepts is a
// Redis claim and a Kafka record (acks=all); the run ends by checking that the
// topic holds exactly the accepted count. Env: BENCH_SECONDS (seconds per
// target, default 6), BENCH_CONCURRENCY (default 64), BENCH_INGEST_REPLICAS
// (default 2: batch is also measured against two ingest processes sharing the
// load), BENCH_ONLY (a name filter), BENCH_INGEST_NODE_ARGS (e.g. --cpu-prof).
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { performance } from 'node:perf_hooks';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(ROOT, 'package.json'));
const { createKafka, createProducer, ensureTopics, topicRegistry } = require('./libs/kafka/dist/index.js');
const { SchemaCodec, valueSubject } = require('./libs/schemas/dist/index.js');
const { ConfigStore, ConfigWriter } = require('./libs/config-store/dist/index.js');
const { silentLogger } = require('./libs/logging/dist/index.js');
const { rawEventEncoder } = require('./services/ingest/dist/raw-event.encoder.js');

const env = {
  KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
  SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
  REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
};
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
// Ingest processes for the scale-out line (DESIGN.md: more replicas per service); the ratios use one.
const REPLICAS = Number(process.env.BENCH_INGEST_REPLICAS ?? 2);
const BATCH = 100;
const WRITE_KEY = 'bench-write-key-0123456789abcdef';
const AUTH = `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`;

// --- processes -------------------------------------------------------------

function startProcess(name, args, extraEnv, portPattern) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const port = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const m = portPattern.exec(out);
      if (m) resolve(Number(m[1] ?? m[2]));
    });
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${err.slice(-800)} ${out.slice(-800)}`)));
  });
  return { child, port };
}

const BARE_EXPRESS = `
const express = require('express');
const app = express();
app.use(express.json({ limit: '600kb' }));
app.post('/v1/:call', (req, res) => res.json({ success: true }));
const server = app.listen(0, '127.0.0.1', () => console.log('listening ' + server.address().port));
server.keepAliveTimeout = 65000;
`;

// --- load ------------------------------------------------------------------

let seq = 0;
const runId = Date.now().toString(36);
const context = '{"library":{"name":"bench","version":"1.0.0"},"ip":"10.0.0.1","userAgent":"Mozilla/5.0 (X11; Linux x86_64) bench"}';
const event = (n) =>
  `{"type":"track","userId":"user-${n % 5000}","event":"Product Viewed","messageId":"${runId}-${n}","timestamp":"2026-01-01T00:00:00.000Z",` +
  `"properties":{"product_id":"p-${n % 977}","price":19.99,"currency":"USD","category":"shoes"},"context":${context}}`;
const singleBody = () => event(seq++);
const batchBody = () => {
  const items = [];
  for (let i = 0; i < BATCH; i++) items.push(event(seq++));
  return `{"batch":[${items.join(',')}],"sentAt":"2026-01-01T00:00:01.000Z"}`;
};

/** `ports`: one or more servers; the connections are spread over them evenly. */
async function load(ports, pathName, makeBody, eventsPerRequest, seconds) {
  ports = [ports].flat();
  const agents = ports.map(() => new http.Agent({ keepAlive: true, maxSockets: Math.ceil(CONCURRENCY / ports.length) }));
  const latencies = [];
  const statuses = new Map();
  let requests = 0;
  const deadline = performance.now() + seconds * 1000;
  const one = (k) =>
    new Promise((resolve, reject) => {
      const port = ports[k % ports.length];
      const agent = agents[k % ports.length];
      const body = makeBody();
      const started = performance.now();
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path: pathName,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: AUTH },
        },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => {
            latencies.push(performance.now() - started);
            statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
            requests++;
            resolve();
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, k) => {
      while (performance.now() < deadline) await one(k);
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  for (const agent of agents) agent.destroy();
  return { elapsed, requests, okEvents: (statuses.get(200) ?? 0) * eventsPerRequest, latencies, statuses };
}

/** Sums slices of one target into rates and latency percentiles. */
function summarise(slices) {
  const elapsed = slices.reduce((n, s) => n + s.elapsed, 0);
  const latencies = slices.flatMap((s) => s.latencies).sort((a, b) => a - b);
  const statuses = {};
  for (const s of slices) for (const [code, n] of s.statuses) statuses[code] = (statuses[code] ?? 0) + n;
  return {
    requestsPerSecond: slices.reduce((n, s) => n + s.requests, 0) / elapsed,
    eventsPerSecond: slices.reduce((n, s) => n + s.okEvents, 0) / elapsed,
    p50: latencies[Math.floor(latencies.length * 0.5)] ?? NaN,
    p99: latencies[Math.floor(latencies.length * 0.99)] ?? NaN,
    statuses,
  };
}

/**
 * The Kafka client's own ceiling on this machine: one kafkajs producer
 * (idempotent, acks=all, as the ingest's) sending pre-built RawEvents in sends
 * of 5000, nothing else. No HTTP, JSON, validation or Redis: the most any
 * single ingest process could reach here.
 */
async function producerCeiling(topic, seconds) {
  const encoder = await rawEventEncoder(topic, codec);
  const producer = createProducer(kafka);
  await producer.connect();
  const record = (i) => ({
    message_id: `${runId}-ceiling-${i}`,
    type: 'track',
    space_id: 'spa_bench',
    source_id: 'src_bench',
    user_id: `user-${i % 5000}`,
    anonymous_id: null,
    group_id: null,
    previous_id: null,
    event: 'Product Viewed',
    name: null,
    timestamp: Date.now(),
    sent_at: null,
    received_at: Date.now(),
    properties_json: '{"product_id":"p-1","price":19.99,"currency":"USD","category":"shoes"}',
    traits_json: '{}',
    context_json: context,
    integrations_json: '{}',
    external_ids: [],
  });
  let sent = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  while (performance.now() < started + seconds * 1000) {
    const messages = [];
    for (let j = 0; j < 5000; j++, sent++) {
      const r = record(sent);
      messages.push({ key: r.user_id, value: encoder.encode(r) });
    }
    await producer.send({ topic, acks: -1, messages });
  }
  const elapsed = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  await producer.disconnect();
  return { recordsPerSecond: sent / elapsed, cpu: (used.user + used.system) / 1e6 / elapsed };
}

// --- run -------------------------------------------------------------------

const prefix = `bench-ingest-${runId}.`;
const log = silentLogger();
const topics = topicRegistry(prefix);
const kafka = createKafka({ brokers: env.KAFKA_BROKERS.split(','), clientId: 'ingest-bench' }, { log });
await ensureTopics(kafka, [topics.config, topics.eventsRaw]);
const codec = new SchemaCodec({ url: env.SCHEMA_REGISTRY_URL });
await codec.register(valueSubject(topics.config.name), 'ConfigRecord');
const producer = createProducer(kafka);
await producer.connect();
const store = new ConfigStore({ topic: topics.config.name, groupPrefix: 'ingest-bench' }, { kafka, codec, log });
await store.start();
await new ConfigWriter({ topic: topics.config.name }, { producer, codec, store }).write('source', 'src_bench', 'spa_bench', {
  id: 'src_bench',
  spaceId: 'spa_bench',
  name: 'bench',
  writeKey: WRITE_KEY,
  enabled: true,
  // The bench measures throughput, not the limiter.
  rateLimit: { requestsPerSecond: 1e9, burst: 1e9 },
  createdAt: 'now',
  updatedAt: 'now',
});
await store.stop();
await producer.disconnect();

// BENCH_INGEST_NODE_ARGS: e.g. --cpu-prof to profile the ingest under load.
const ingestArgs = (process.env.BENCH_INGEST_NODE_ARGS ?? '').split(' ').filter(Boolean);
const ingests = Array.from({ length: REPLICAS }, () =>
  startProcess(
    'ingest',
    [...ingestArgs, path.join(ROOT, 'services/ingest/dist/main.js')],
    {
      ...env,
      TOPIC_PREFIX: prefix,
      REDIS_KEY_PREFIX: prefix,
      INGEST_PORT: '0',
      LOG_LEVEL: 'info',
      // Short dedupe memory: the bench's keys must not sit in a shared Redis for a day.
      INGEST_DEDUPE_TTL_SECONDS: '120',
    },
    /"port":(\d+)[^\n]*"msg":"http_listening"/,
  ),
);
const bare = startProcess('bare-express', ['-e', BARE_EXPRESS], { NODE_PATH: path.join(ROOT, 'node_modules') }, /listening (\d+)/);
const stopAll = () => {
  for (const ingest of ingests) ingest.child.kill('SIGTERM');
  bare.child.kill('SIGTERM');
};
process.on('exit', stopAll);

try {
  const [barePort, ...ingestPorts] = await Promise.all([bare.port, ...ingests.map((i) => i.port)]);
  const ingestPort = ingestPorts[0];
  let acceptedEvents = 0;
  const run = async (port, p, make, per, seconds) => {
    const slice = await load(port, p, make, per, seconds);
    if (port !== barePort) acceptedEvents += slice.okEvents;
    return slice;
  };
  // Warm up every process (JIT, connections, producer metadata).
  for (const port of ingestPorts) {
    await run(port, '/v1/track', singleBody, 1, 1);
    await run(port, '/v1/batch', batchBody, BATCH, 1);
  }
  await run(barePort, '/v1/track', singleBody, 1, 1);

  const best = {};
  // Slices of 1 s for single calls; 3 s for batches, whose requests take up to
  // a second under load (a slice drains its requests in flight before the next).
  const comparisons = [
    [
      ['bare single', barePort, '/v1/track', singleBody, 1],
      ['ingest single', ingestPort, '/v1/track', singleBody, 1],
    ],
    [
      ['bare batch100', barePort, '/v1/batch', batchBody, BATCH],
      ['ingest batch100', ingestPort, '/v1/batch', batchBody, BATCH],
      ...(REPLICAS > 1 ? [[`ingest batch100 x${REPLICAS} replicas`, ingestPorts, '/v1/batch', batchBody, BATCH]] : []),
    ],
  ];
  for (const group of comparisons) {
    const targets = group.filter(([name]) => !process.env.BENCH_ONLY || name.includes(process.env.BENCH_ONLY));
    const sliceSeconds = group[0][4] === 1 ? 1 : 3;
    const slices = new Map(targets.map(([name]) => [name, []]));
    for (let i = 0; i < Math.max(1, Math.round(SECONDS / sliceSeconds)); i++) {
      for (const [name, port, p, make, per] of targets) slices.get(name).push(await run(port, p, make, per, sliceSeconds));
    }
    for (const [name, list] of slices) {
      best[name] = summarise(list);
      console.error(
        `${name}: ${Math.round(best[name].eventsPerSecond)} events/s, p99 ${best[name].p99.toFixed(1)} ms, statuses ${JSON.stringify(best[name].statuses)}`,
      );
    }
  }

  if (process.env.BENCH_DUMP_METRICS) {
    const text = await (await fetch(`http://127.0.0.1:${ingestPort}/metrics`)).text();
    console.error(
      text
        .split('\n')
        .filter((l) => /^ingest_flush_(events|duration_seconds)_(sum|count)/.test(l))
        .join('\n'),
    );
  }
  let ceiling = null;
  if (!process.env.BENCH_ONLY || 'kafkajs producer'.includes(process.env.BENCH_ONLY)) {
    const ceilingTopic = { ...topics.eventsRaw, name: `${prefix}ceiling` };
    await ensureTopics(kafka, [ceilingTopic]);
    ceiling = await producerCeiling(ceilingTopic.name, SECONDS);
    console.error(`kafkajs producer alone: ${Math.round(ceiling.recordsPerSecond)} records/s at ${(ceiling.cpu * 100).toFixed(0)}% CPU`);
  }

  // Every accepted event (warm-up included) is a record in engage.events.raw.
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topics.eventsRaw.name);
  const inTopic = offsets.reduce((n, p) => n + Number(p.high), 0);

  const row = (name) => {
    const r = best[name];
    if (!r) return `| ${name} | - | - | - | - |`;
    return `| ${name} | ${Math.round(r.requestsPerSecond).toLocaleString('en-US')} | ${Math.round(r.eventsPerSecond).toLocaleString('en-US')} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} |`;
  };
  const eps = (name) => best[name]?.eventsPerSecond ?? NaN;
  const single = eps('ingest single') / eps('bare single');
  const batch = eps('ingest batch100') / eps('bare batch100');
  console.log(
    [
      `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), node ${process.version}; Kafka, registry, Redis, ingest, baseline and the load loop all on it.`,
      `Load: ${CONCURRENCY} keep-alive connections; each target measured for ${SECONDS} s in slices (1 s single, 3 s batch) alternating with the targets it is compared to.`,
      '',
      '| target | requests/s | events/s | p50 ms | p99 ms |',
      '|---|---|---|---|---|',
      row('bare single'),
      row('ingest single'),
      row('bare batch100'),
      row('ingest batch100'),
      ...(REPLICAS > 1 ? [row(`ingest batch100 x${REPLICAS} replicas`)] : []),
      '',
      `- single calls: ingest / bare express = **${single.toFixed(2)}x** (target >= 0.8x)`,
      `- /v1/batch of 100: **${Math.round(eps('ingest batch100')).toLocaleString('en-US')} events/s** with one ingest process (target >= 50,000), ${batch.toFixed(2)}x bare express` +
        (REPLICAS > 1
          ? `; **${Math.round(eps(`ingest batch100 x${REPLICAS} replicas`)).toLocaleString('en-US')} events/s** with ${REPLICAS} replicas`
          : ''),
      ...(ceiling
        ? [
            `- ceiling: one kafkajs producer alone (idempotent, acks=all, pre-built records, sends of 5000, no HTTP/JSON/Redis) reaches **${Math.round(ceiling.recordsPerSecond).toLocaleString('en-US')} records/s** at ${(ceiling.cpu * 100).toFixed(0)}% of a core`,
          ]
        : []),
      `- engage.events.raw holds ${inTopic.toLocaleString('en-US')} records; the ingest answered 200 for ${acceptedEvents.toLocaleString('en-US')} events (${inTopic === acceptedEvents ? 'equal' : 'NOT EQUAL'}).`,
    ].join('\n'),
  );

  // Leave nothing behind in the shared cluster.
  await admin
    .deleteTopics({
      topics: Object.values(topics)
        .map((t) => t.name)
        .concat(ceiling ? [`${prefix}ceiling`] : []),
    })
    .catch(() => {});
  await admin.disconnect();
} finally {
  const exited = ingests.map((i) => new Promise((resolve) => (i.child.exitCode !== null ? resolve() : i.child.once('exit', resolve))));
  stopAll();
  await Promise.race([Promise.all(exited), new Promise((resolve) => setTimeout(resolve, 20000))]);
}
process.exit(0);
