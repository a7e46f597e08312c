// Identity resolver throughput vs a bare consume-and-produce passthrough, same
// topics, same run, same consumer wrapper and producer settings.
//
//   npm run build && node bench/identity.bench.mjs            (EVENTS=100000 PARTITIONS=2 by default)
//
// Needs Kafka, the schema registry and Redis (KAFKA_BROKERS, SCHEMA_REGISTRY_URL,
// REDIS_URL; CONTRACT.md defaults). Everything goes under fresh topic names and
// a fresh Redis prefix, removed at the end.
//
// Id mix of the measured stream (the "realistic" mix):
//   70% calls of known profiles (userId + the anonymousId already on the profile)
//   20% new anonymous visitors (a fresh anonymousId)
//   10% identify calls that link an earlier new visitor (or a fresh device) to a known user + email: merges / new ids
// Known profiles are seeded into the graph before timing (not measured).
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const { createKafka, createProducer, ensureTopics, topicRegistry, BatchConsumer, DeadLetterWriter } = require('@engage/kafka');
const { silentLogger } = require('@engage/logging');
const { createRedis } = require('@engage/redis');
const { SchemaCodec, valueSubject } = require('@engage/schemas');
const { DEFAULT_COMPILED_RULES } = require('@engage/identity');
const { createResolverConsumer } = require('@engage/identity-resolver/dist/resolver.consumer');
const { IdentityRepository } = require('@engage/identity-resolver/dist/identity.repository');

const env = process.env;
const EVENTS = Number(env.EVENTS ?? 100000);
const PARTITIONS = Number(env.PARTITIONS ?? 2);
const KNOWN = Number(env.KNOWN_PROFILES ?? 20000);
const CHUNK = Number(env.CHUNK ?? 500);
// Alternating passthrough / resolver rounds; the median ratio of each pair is reported,
// so a load spike from other processes on the machine skews one pair, not the result.
const ROUNDS = Number(env.ROUNDS ?? 3);
const brokers = (env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const registryUrl = env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7';
const redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// CPU_PROFILE=<dir>: a V8 CPU profile of each timed phase (<dir>/<name>-<round>.cpuprofile), for `node --cpu-prof`-style analysis
// without the seeding and stream encoding mixed in.
const CPU_PROFILE = env.CPU_PROFILE;

const log = silentLogger();
const run = `bench-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
const topics = topicRegistry(`${run}.`, { partitions: PARTITIONS });
const dlqTopic = `${topics.eventsRaw.name}.dlq`;
let keyPrefix = `${run}:`;
const SPACE = 'spa_bench';

const kafka = createKafka({ brokers, clientId: 'identity-bench' }, { log });
const codec = new SchemaCodec({ url: registryUrl });
const redis = createRedis({ url: redisUrl });
// libs/kafka's producer, as the services run it; the passthrough uses the same one.
const producer = createProducer(kafka);

let seed = 42;
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const pick = (n) => Math.floor(random() * n);

const T0 = Date.parse('2026-01-01T00:00:00Z');
let msg = 0;
let round = 0;
let profiled = 0;
const raw = (over) => ({
  message_id: `${run}-${++msg}`,
  type: 'track',
  space_id: SPACE,
  source_id: 'src_bench',
  user_id: null,
  anonymous_id: null,
  group_id: null,
  previous_id: null,
  event: 'Product Viewed',
  name: null,
  timestamp: T0 + msg,
  sent_at: null,
  received_at: T0 + msg,
  properties_json: '{"sku":"A-1","price":19.99}',
  traits_json: '{}',
  context_json: '{"library":{"name":"analytics.js","version":"5.0.0"},"page":{"path":"/p/a-1"},"userAgent":"Mozilla/5.0"}',
  integrations_json: '{}',
  external_ids: [],
  ...over,
});

function stream() {
  const events = [];
  const newVisitors = [];
  for (let i = 0; i < EVENTS; i++) {
    const r = random();
    if (r < 0.7) {
      const p = pick(KNOWN);
      events.push(raw({ user_id: `u${p}`, anonymous_id: `a${p}` }));
    } else if (r < 0.9) {
      const anon = `n${i}`;
      newVisitors.push(anon);
      events.push(raw({ anonymous_id: anon, type: 'page', event: null, name: 'Home' }));
    } else {
      const p = pick(KNOWN);
      const anon = newVisitors.length > 0 && random() < 0.7 ? newVisitors.splice(pick(newVisitors.length), 1)[0] : `f${i}`;
      events.push(
        raw({
          type: 'identify',
          event: null,
          user_id: `u${p}`,
          anonymous_id: anon,
          traits_json: JSON.stringify({ email: `user${p}@example.com`, plan: 'pro' }),
        }),
      );
    }
  }
  return events;
}

async function seedKnown() {
  keyPrefix = `${run}:r${++round}:`;
  const repo = new IdentityRepository({ keyPrefix, resultTtlSeconds: 3600 }, { redis });
  for (let start = 0; start < KNOWN; start += 1000) {
    const requests = [];
    for (let p = start; p < Math.min(KNOWN, start + 1000); p++) {
      requests.push({
        spaceId: SPACE,
        eventKey: `seed-${p}`,
        ids: [
          { type: 'user_id', id: `u${p}` },
          { type: 'anonymous_id', id: `a${p}` },
        ],
        rules: DEFAULT_COMPILED_RULES,
        accountId: null,
        timestamp: T0,
      });
    }
    await repo.resolveAll(requests);
  }
}

/** Runs a consumer over all EVENTS messages; time from its first chunk to the last (group join excluded). */
async function measure(name, makeConsumer) {
  let done = 0;
  let first = 0;
  let last = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  const onChunk = ({ messages, seconds }) => {
    if (first === 0) first = performance.now() - seconds * 1000;
    done += messages;
    last = performance.now();
    if (done >= EVENTS) finish();
  };
  const consumer = makeConsumer(onChunk);
  const profiler = CPU_PROFILE ? new Session() : null;
  if (profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  const cpu0 = process.cpuUsage();
  const redis0 = await redisCpu();
  await consumer.start();
  const timeout = setTimeout(() => finish(), 300000);
  await finished;
  clearTimeout(timeout);
  const cpu = process.cpuUsage(cpu0);
  const redisSeconds = (await redisCpu()) - redis0;
  if (profiler) {
    const { profile } = await profiler.post('Profiler.stop');
    writeFileSync(`${CPU_PROFILE}/${name}-${++profiled}.cpuprofile`, JSON.stringify(profile));
    profiler.disconnect();
  }
  await consumer.stop();
  const seconds = (last - first) / 1000;
  // CPU per event of this process and of the Redis server (the latter includes other clients' work, if any).
  const us = (x) => Number(((x * 1e6) / done).toFixed(1));
  return {
    name,
    events: done,
    seconds: Number(seconds.toFixed(3)),
    perSecond: Math.round(done / seconds),
    nodeCpuUsPerEvent: us((cpu.user + cpu.system) / 1e6),
    redisCpuUsPerEvent: us(redisSeconds),
  };
}

async function main() {
  await ensureTopics(kafka, [
    topics.eventsRaw,
    topics.eventsResolved,
    topics.identityChanges,
    { name: dlqTopic, partitions: 1, config: {} },
  ]);
  await codec.registerTopics([topics.eventsRaw, topics.eventsResolved, topics.identityChanges]);
  await producer.connect();
  await seedKnown();

  const events = stream();
  const rawSubject = valueSubject(topics.eventsRaw.name);
  await codec.encode(rawSubject, events[0]); // caches the schema before the concurrent encodes below
  for (let i = 0; i < events.length; i += 5000) {
    const messages = await Promise.all(
      events.slice(i, i + 5000).map(async (e) => ({ key: e.user_id ?? e.anonymous_id, value: await codec.encode(rawSubject, e) })),
    );
    await producer.send({ topic: topics.eventsRaw.name, messages });
  }

  const rounds = [];
  for (let r = 1; r <= ROUNDS; r++) {
    // Baseline: the same wrapper and chunking, no decoding, bytes copied to the resolved topic.
    const passthrough = await measure(
      'passthrough',
      (onChunk) =>
        new BatchConsumer(
          {
            groupId: `${run}-passthrough-${r}`,
            topics: [topics.eventsRaw.name],
            fromBeginning: true,
            chunkSize: CHUNK,
            partitionsConsumedConcurrently: PARTITIONS,
          },
          {
            kafka,
            log,
            step: 'passthrough',
            onChunk,
            decode: (m) => m,
            handle: async (ms) => {
              await producer.sendBatch({
                topicMessages: [{ topic: topics.eventsResolved.name, messages: ms.map((m) => ({ key: m.key, value: m.raw.value })) }],
              });
              return ms.map(() => ({ kind: 'ok' }));
            },
            deadLetters: new DeadLetterWriter({ topic: dlqTopic }, { producer }),
          },
        ),
    );
    // A fresh graph per round (seeded with the known profiles, not timed).
    if (r > 1) await seedKnown();
    const prefix = keyPrefix;
    const resolver = await measure('identity-resolver', (onChunk) =>
      createResolverConsumer(
        {
          groupId: `${run}-resolver-${r}`,
          rawTopic: topics.eventsRaw.name,
          resolvedTopic: topics.eventsResolved.name,
          identityTopic: topics.identityChanges.name,
          dlqTopic,
          chunkSize: CHUNK,
          concurrency: PARTITIONS,
          // As the service runs it (RESOLVER_COALESCE_PARTITIONS, default true); a backlog's fetches fill whole chunks.
          coalescePartitions: env.RESOLVER_COALESCE_PARTITIONS !== 'false',
          keyPrefix: prefix,
          resultTtlSeconds: 3600,
        },
        { kafka, producer, codec, redis, log, rulesFor: () => DEFAULT_COMPILED_RULES, onChunk },
      ),
    );
    rounds.push({
      passthrough: passthrough.perSecond,
      resolver: resolver.perSecond,
      ratio: Number((resolver.perSecond / passthrough.perSecond).toFixed(2)),
      cpuUsPerEvent: {
        passthrough: { node: passthrough.nodeCpuUsPerEvent, redis: passthrough.redisCpuUsPerEvent },
        resolver: { node: resolver.nodeCpuUsPerEvent, redis: resolver.redisCpuUsPerEvent },
      },
      liveProfilesAfter: await countProfiles(),
    });
    console.error(`round ${r}: ${JSON.stringify(rounds[rounds.length - 1])}`);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const result = {
    events: EVENTS,
    partitions: PARTITIONS,
    chunk: CHUNK,
    knownProfiles: KNOWN,
    rounds,
    median: {
      passthrough: median(rounds.map((x) => x.passthrough)),
      resolver: median(rounds.map((x) => x.resolver)),
      ratio: median(rounds.map((x) => x.ratio)),
    },
  };
  console.log(JSON.stringify(result, null, 2));
  console.log(
    `| ${EVENTS} | ${PARTITIONS} | ${CHUNK} | ${result.median.passthrough} | ${result.median.resolver} | ${result.median.ratio} | ${rounds.map((x) => x.ratio).join(' / ')} |`,
  );
}

async function redisCpu() {
  const info = await redis.info('cpu');
  const get = (k) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? 0);
  return get('used_cpu_user') + get('used_cpu_sys');
}

async function countProfiles() {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}idn:{${SPACE}}:p:*:ids`, 'COUNT', 5000);
    n += keys.length;
    cursor = next;
  } while (cursor !== '0');
  return n;
}

async function cleanup() {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${run}:*`, 'COUNT', 5000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
  const admin = kafka.admin();
  await admin.connect();
  await admin
    .deleteTopics({ topics: [topics.eventsRaw.name, topics.eventsResolved.name, topics.identityChanges.name, dlqTopic] })
    .catch(() => {});
  await admin.disconnect();
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanup().catch((err) => console.error('cleanup failed', err));
    await producer.disconnect();
    redis.disconnect();
  });
