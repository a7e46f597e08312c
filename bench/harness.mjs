// What the benches that run built services as processes share: their
// environment, starting one and waiting for the port it logs, polling with a
// deadline, percentiles, the control plane's API, and dropping the run's
// Redis keys afterwards.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import Redis from 'ioredis';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The services' environment for one bench run: the infrastructure (CONTRACT.md defaults), a fresh prefix, port 0 everywhere. */
export function benchEnv(prefix, extra = {}) {
  return {
    ...process.env,
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    TOPIC_PREFIX: prefix,
    REDIS_KEY_PREFIX: prefix,
    CONTROL_PLANE_PORT: '0',
    INGEST_PORT: '0',
    OPS_PORT: '0',
    LOG_LEVEL: 'warn',
    // The benches' receivers are local HTTP servers; the control plane refuses loopback hosts unless allowed (as npm start does).
    DESTINATION_ALLOWED_HOSTS: '127.0.0.0/8',
    ...extra,
  };
}

/**
 * Starts services/<name>/dist/main.js; resolves with { child, port } once it
 * logs the port it listens on. `nodeArgs` (e.g. --cpu-prof), `logFile` (its stdout appended there).
 */
export function startService(name, env, { nodeArgs = [], logFile } = {}) {
  const child = spawn(process.execPath, [...nodeArgs, path.join(ROOT, `services/${name}/dist/main.js`)], {
    env: { ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      if (logFile) fs.appendFileSync(logFile, d);
      buf = (buf + d).slice(-10_000);
      const m = /"port":(\d+)[^\n]*"msg":"(http|ops)_listening"/.exec(buf);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
  });
}

/** The control plane's JSON API with the bench's bearer token. */
export const controlPlaneApi = (port, token) => async (method, p, body) =>
  (
    await fetch(`http://127.0.0.1:${port}${p}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body && JSON.stringify(body),
    })
  ).json();

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns something truthy; throws after `timeoutMs`. */
export async function until(check, what, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The p-th percentile of an ascending array. */
export const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Drops every Redis key of the run (UNLINK: freed in the background). */
/**
 * Redis memory per profile (MEMORY USAGE, bytes, with Redis's own overhead),
 * over up to `sample` profiles of the keyspace under `prefix`: the hot state
 * document alone, and every key of the profile (state, history, seen ids,
 * version token, identifiers). Returns { profiles, state: {p50, p95}, all: {p50, p95} }.
 */
export async function profileMemory(redisUrl, prefix, sample = 1000) {
  const redis = new Redis(redisUrl);
  const states = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}rt:{*}:state`, 'COUNT', 10_000);
    cursor = next;
    states.push(...keys);
  } while (cursor !== '0' && states.length < sample);
  const suffixes = ['state', 'hist', 'seen', 'ver', 'ids'];
  const picked = states.slice(0, sample);
  const pipeline = redis.pipeline();
  for (const key of picked) for (const s of suffixes) pipeline.call('MEMORY', 'USAGE', key.replace(/:state$/, `:${s}`), 'SAMPLES', '0');
  const replies = await pipeline.exec();
  redis.disconnect();
  const state = [];
  const all = [];
  picked.forEach((_, i) => {
    const sizes = suffixes.map((_, j) => Number(replies[i * suffixes.length + j][1] ?? 0));
    state.push(sizes[0]);
    all.push(sizes.reduce((a, b) => a + b, 0));
  });
  const sorted = (xs) => [...xs].sort((a, b) => a - b);
  return {
    profiles: picked.length,
    state: { p50: pct(sorted(state), 50), p95: pct(sorted(state), 95) },
    all: { p50: pct(sorted(all), 50), p95: pct(sorted(all), 95) },
  };
}

export async function dropKeys(redisUrl, prefix) {
  const redis = new Redis(redisUrl);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 10_000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
  redis.disconnect();
}

/**
 * The Kafka baseline of the evaluation benches: a consumer that reads
 * `count` records of `from` from the start, decodes and re-encodes each one
 * (Avro, the subject of `from`) and writes them to `to` with one send per
 * Kafka batch. Resolves with its rate (records/s, first batch to last record).
 */
export async function passthroughRate({ kafka, codec, producer, valueSubject }, from, to, count, groupId) {
  const consumer = kafka.consumer({ groupId });
  await consumer.connect();
  await consumer.subscribe({ topic: from, fromBeginning: true });
  const subject = valueSubject(from);
  let seen = 0;
  let start = 0;
  let end = 0;
  await consumer.run({
    eachBatch: async ({ batch }) => {
      if (!start) start = performance.now();
      const out = await Promise.all(
        batch.messages.map(async (m) => ({ key: m.key, value: await codec.encode(subject, await codec.decode(m.value)) })),
      );
      await producer.send({ topic: to, messages: out });
      seen += batch.messages.length;
      if (seen >= count && !end) end = performance.now();
    },
  });
  await until(() => end, `the passthrough of ${from} to finish`);
  await consumer.disconnect();
  return count / ((end - start) / 1000);
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); null when unreadable. */
export function processCpuSeconds(pid) {
  try {
    // Fields after the command name, which is in parentheses and may hold spaces.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return null;
  }
}

/** The broker's pid when this project's infra script started it (.infra/kafka.pid), else null. */
export function kafkaPid() {
  try {
    return Number(fs.readFileSync(path.join(ROOT, '.infra/kafka.pid'), 'utf8').trim()) || null;
  } catch {
    return null;
  }
}

/**
 * CPU used by the named processes and the Redis server between start() and
 * the returned stop(): { name: seconds }. Redis's figure comes from INFO cpu,
 * so it includes other clients' work. CPU per event is the comparable figure
 * on a shared 2-core machine, where wall-clock rates move with the load.
 */
export async function cpuMeter(redisUrl, pids) {
  const redis = new Redis(redisUrl);
  const redisCpu = async () => {
    const info = await redis.info('cpu');
    const get = (k) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
    return get('used_cpu_user') + get('used_cpu_sys');
  };
  const read = async () => ({
    ...Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, pid ? processCpuSeconds(pid) : null])),
    redis: await redisCpu(),
  });
  const before = await read();
  return async function stop() {
    const after = await read();
    redis.disconnect();
    return Object.fromEntries(Object.keys(after).map((k) => [k, after[k] === null || before[k] === null ? null : after[k] - before[k]]));
  };
}

/** Deletes the run's topics (every topic whose name starts with `prefix`): leftovers slow a long-lived broker. */
export async function dropTopics(kafka, prefix) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
  } finally {
    await admin.disconnect();
  }
}

/**
 * Writes a bench's generated section to bench/<file>, keeping the file's
 * earlier sections (from its first `### ` heading on: dated runs and
 * comparisons added by hand), which a plain overwrite used to lose.
 */
export function writeResults(file, lines) {
  const target = path.join(ROOT, 'bench', file);
  let history = '';
  try {
    const old = fs.readFileSync(target, 'utf8');
    const at = old.indexOf('\n### ');
    if (at >= 0) history = old.slice(at + 1);
  } catch {
    // first run: no file yet
  }
  fs.writeFileSync(target, `${lines.join('\n')}\n${history ? `\n${history}` : ''}`);
}
