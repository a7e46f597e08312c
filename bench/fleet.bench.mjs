#!/usr/bin/env node
// The whole fleet end to end, as issue 6 measures it: Segment batches over
// HTTP -> ingest -> engage.events.raw -> identity resolver ->
// engage.events.resolved -> realtime evaluator -> committed changes on
// engage.computations.changes, for the 20-audience / 10-trait space of
// bench/space.mjs, with every service and the infrastructure on this machine.
//
//   npm run bench -- fleet     (FLEET_EVENTS=30000 FLEET_USERS=3000 FLEET_SECONDS=60 by default)
//
// 1. Throughput: FLEET_EVENTS events posted to /v1/batch (100 per request, 8
//    requests in flight) as fast as the ingest answers; the rate runs from the
//    first 200 to the evaluator's commit of the last resolved event.
// 2. Baseline, same run: a passthrough consumer over the same engage.events.raw
//    backlog (decode each record, re-encode it, one sendBatch per Kafka batch).
// 3. Sustained: FLEET_SECONDS at half the measured rate. Four times a second the lag
//    (events answered 200 minus events the evaluator has committed) is
//    sampled; one probe event per 100 ms gives the latency from the ingest's
//    200 to the arrival of its change record here; each process's CPU per
//    event at that rate is reported next to the backlog's (a live stream
//    comes in small batches: the per-request costs weigh more).
//    FLEET_PACED_RATE fixes the rate instead (to compare settings or builds
//    at one load).
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  benchEnv,
  controlPlaneApi,
  cpuMeter,
  kafkaPid,
  dropKeys,
  dropTopics,
  passthroughRate,
  pct,
  ROOT,
  sleep,
  startService as startBuiltService,
  until,
  writeResults,
} from './harness.mjs';
import { AUDIENCES, CATEGORIES, NAMES, TRAITS } from './space.mjs';

const require = createRequire(import.meta.url);
const { createKafka, createProducer, ensureTopics, topicRegistry } = require(path.join(ROOT, 'libs/kafka/dist/index.js'));
const { SchemaCodec, valueSubject } = require(path.join(ROOT, 'libs/schemas/dist/index.js'));
const { silentLogger } = require(path.join(ROOT, 'libs/logging/dist/index.js'));

const EVENTS = Number(process.env.FLEET_EVENTS ?? 30_000);
const USERS = Number(process.env.FLEET_USERS ?? 3_000);
const SECONDS = Number(process.env.FLEET_SECONDS ?? 60);
const PACED_RATE = process.env.FLEET_PACED_RATE ? Number(process.env.FLEET_PACED_RATE) : null;
// Realtime evaluator replicas (DESIGN.md: scale out by consumer-group members; events.resolved has 6 partitions).
const EVALUATORS = Number(process.env.FLEET_EVALUATOR_REPLICAS ?? 1);
const IN_FLIGHT = 8;
const BATCH = 100;
const TOKEN = 'fleet-bench-token';
const PROBE_USER = 'latency-probe-user';
const prefix = `bench-fleet-${Date.now().toString(36)}.`;
const env = benchEnv(prefix, { CONTROL_PLANE_TOKEN: TOKEN });
const log = (msg) => process.stderr.write(`[fleet] ${msg}\n`);
// FLEET_NODE_ARGS_<SERVICE> (e.g. FLEET_NODE_ARGS_REALTIME_EVALUATOR="--cpu-prof --cpu-prof-dir=/tmp/prof") profiles one service.
const startService = (name) =>
  startBuiltService(name, env, {
    nodeArgs: (process.env[`FLEET_NODE_ARGS_${name.toUpperCase().replaceAll('-', '_')}`] ?? '').split(' ').filter(Boolean),
  });

async function main() {
  const loadBefore = os.loadavg()[0];
  const kafka = createKafka({ brokers: env.KAFKA_BROKERS.split(','), clientId: 'fleet-bench' }, { log: silentLogger() });
  const topics = topicRegistry(prefix);
  const passthroughTopic = { name: `${prefix}bench.passthrough`, partitions: topics.eventsRaw.partitions, config: {} };
  await ensureTopics(kafka, [...Object.values(topics), passthroughTopic]);
  const codec = new SchemaCodec({ url: env.SCHEMA_REGISTRY_URL });
  await codec.registerTopics(Object.values(topics));
  const producer = createProducer(kafka);
  await producer.connect();
  const admin = kafka.admin();
  await admin.connect();
  const procs = [];
  try {
    const cp = await startService('control-plane');
    procs.push(cp);
    const api = controlPlaneApi(cp.port, TOKEN);
    const spaceId = (await api('POST', '/spaces', { name: 'Fleet bench' })).data.space.id;
    const writeKey = (await api('POST', `/spaces/${spaceId}/sources`, { name: 'Bench' })).data.source.writeKey;
    for (const [name, query] of TRAITS) await api('POST', `/spaces/${spaceId}/computed-traits`, { name, definition: { query } });
    for (const [i, query] of AUDIENCES.entries())
      await api('POST', `/spaces/${spaceId}/audiences`, { name: `Audience ${i + 1}`, definition: { query } });
    const ingest = await startService('ingest');
    const resolver = await startService('identity-resolver');
    const evaluators = [];
    for (let i = 0; i < EVALUATORS; i++) evaluators.push(await startService('realtime-evaluator'));
    procs.push(ingest, resolver, ...evaluators);
    const auth = `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`;
    const post = async (batch) => {
      const res = await fetch(`http://127.0.0.1:${ingest.port}/v1/batch`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ batch }),
      });
      if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
    };
    let seq = 0;
    const event = (j, timestamp) => {
      const name = NAMES[(j * 3) % NAMES.length];
      const base = { userId: `u-${j % USERS}`, messageId: `fleet-${prefix}${++seq}`, timestamp: new Date(timestamp).toISOString() };
      const properties = { revenue: (seq * 37) % 300, category: CATEGORIES[seq % CATEGORIES.length], price: (seq * 13) % 120 };
      return name === 'Page Viewed'
        ? { ...base, type: 'page', name: 'Home', properties }
        : { ...base, type: 'track', event: name, properties };
    };
    const committed = async () => {
      const [o] = await admin.fetchOffsets({ groupId: `${prefix}realtime-evaluator`, topics: [topics.eventsResolved.name] });
      return o.partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
    };

    // 1. Throughput through the whole fleet.
    const t0 = Date.now() - 20 * 86_400_000;
    const batches = [];
    for (let i = 0; i < EVENTS; i += BATCH)
      batches.push(Array.from({ length: Math.min(BATCH, EVENTS - i) }, (_, k) => event(i + k, t0 + (i + k) * 1000)));
    // The processes whose CPU is measured (the bench's own HTTP client included: it shares the machine).
    const measured = {
      bench: process.pid,
      ingest: ingest.child.pid,
      resolver: resolver.child.pid,
      ...Object.fromEntries(evaluators.map((e, i) => [i === 0 ? 'evaluator' : `evaluator ${i + 1}`, e.child.pid])),
      kafka: kafkaPid(),
    };
    /** `name N µs, ...`: each process's CPU seconds per event. */
    const perEvent = (cpu, events) =>
      Object.entries(cpu)
        .map(([k, v]) => `${k} ${v === null ? 'n/a' : `${((v * 1e6) / events).toFixed(0)} µs`}`)
        .join(', ');
    const stopCpu = await cpuMeter(env.REDIS_URL, measured);
    const start = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < batches.length) await post(batches[next++]);
      }),
    );
    const accepted = performance.now();
    log(`ingest accepted ${EVENTS} events at ${(EVENTS / ((accepted - start) / 1000)).toFixed(0)}/s`);
    await until(async () => (await committed()) >= EVENTS, 'the evaluator to commit the backlog', 900_000);
    const fleetRate = EVENTS / ((performance.now() - start) / 1000);
    log(`fleet: ${fleetRate.toFixed(0)} events/s from the first 200 to the last committed evaluation`);
    // Where the 2 cores went, per event (the bench's own HTTP client included: it shares the machine).
    const cpu = await stopCpu();
    const cpuPerEvent = perEvent(cpu, EVENTS);
    log(`cpu per event: ${cpuPerEvent}`);

    // 2. Passthrough over the same raw backlog.
    const ptRate = await passthroughRate(
      { kafka, codec, producer, valueSubject },
      topics.eventsRaw.name,
      passthroughTopic.name,
      EVENTS,
      `${prefix}passthrough`,
    );
    log(`passthrough: ${ptRate.toFixed(0)} events/s`);

    // 3. Sustained at half the fleet rate (FLEET_PACED_RATE: a fixed rate, to compare builds or settings at
    // the same load), with probes, lag samples and the CPU each process spends per event at that rate.
    const rate = PACED_RATE ?? Math.max(100, Math.floor(fleetRate / 2));
    const probes = new Map(); // probe timestamp -> { okAt: the ingest's 200, arrivedAt: its change record here }
    const reader = kafka.consumer({ groupId: `${prefix}changes-reader` });
    await reader.connect();
    await reader.subscribe({ topic: topics.computationsChanges.name, fromBeginning: false });
    await reader.run({
      // The reader's group is new every run and never resumed: no offsets to commit. (kafkajs's default,
      // a commit after every batch, was ~90 OffsetCommit requests a second here, counted as the broker's cost.)
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const arrived = Date.now();
        for (const m of batch.messages) {
          const c = await codec.decode(m.value);
          if (c.computation_key !== 'latency_probe' || c.user_id !== PROBE_USER) continue;
          const probe = probes.get(c.occurred_at);
          if (probe && probe.arrivedAt === undefined) {
            probe.arrivedAt = arrived;
            probe.emittedAt = c.emitted_at; // the evaluator's clock: the same machine's
          }
        }
      },
    });
    await sleep(3000); // the reader joins its group before the first probe
    let sent = 0;
    let acceptedCount = EVENTS;
    const lag = [];
    const stopPacedCpu = await cpuMeter(env.REDIS_URL, measured);
    const paceStart = Date.now();
    let tick = paceStart;
    let lastSample = paceStart;
    while (Date.now() - paceStart < SECONDS * 1000) {
      const perTick = Math.max(1, Math.round(rate / 10));
      const ts = Date.now();
      const batch = [
        {
          type: 'track',
          userId: PROBE_USER,
          event: 'Latency Probe',
          messageId: `probe-${prefix}${ts}`,
          timestamp: new Date(ts).toISOString(),
        },
      ];
      for (let k = 1; k < perTick; k++) batch.push(event(EVENTS + sent + k, ts - k));
      const parts = [];
      for (let i = 0; i < batch.length; i += BATCH) parts.push(batch.slice(i, i + BATCH));
      const probe = {};
      probes.set(ts, probe);
      await Promise.all(parts.map(post));
      probe.okAt = Date.now();
      sent += batch.length;
      acceptedCount += batch.length;
      // Four samples a second: committed offsets move once per KAFKA_COMMIT_INTERVAL_MS (1 s), and samples taken
      // at about the same period would beat with it (a drifting sawtooth that reads as a trend).
      if (Date.now() - lastSample >= 250) {
        lastSample = Date.now();
        lag.push(acceptedCount - (await committed()));
      }
      tick += 100;
      if (tick > Date.now()) await sleep(tick - Date.now());
    }
    const achieved = sent / ((Date.now() - paceStart) / 1000);
    // NOTE: the events still in flight at the end (the lag, a fraction of a second's worth) are left out.
    const pacedCpu = await stopPacedCpu();
    const pacedCpuPerEvent = perEvent(pacedCpu, sent);
    const fleetOwn = (cpu) =>
      Object.entries(cpu)
        .filter(([k, v]) => k !== 'bench' && v !== null)
        .reduce((sum, [, v]) => sum + v, 0);
    await until(async () => (await committed()) >= acceptedCount, 'the evaluator to drain the paced load', 300_000);
    await until(() => [...probes.values()].every((p) => p.arrivedAt !== undefined), 'every probe change', 60_000).catch(() => undefined);
    await reader.disconnect();
    // NOTE: a change can even arrive before the HTTP answer reaches us: that counts as 0 ms.
    const latencies = [...probes.values()]
      .filter((p) => p.arrivedAt !== undefined)
      .map((p) => Math.max(0, p.arrivedAt - p.okAt))
      .sort((a, b) => a - b);
    // Where the time goes: up to the evaluator's emit (ingest, resolver, evaluator) and from there to this reader.
    const answered = [...probes.values()].filter((p) => p.arrivedAt !== undefined);
    const toEmit = answered.map((p) => Math.max(0, p.emittedAt - p.okAt)).sort((a, b) => a - b);
    const emitToRead = answered.map((p) => Math.max(0, p.arrivedAt - p.emittedAt)).sort((a, b) => a - b);
    const third = Math.max(1, Math.floor(lag.length / 3));
    const mean = (xs) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
    log(
      `paced cpu per event: ${pacedCpuPerEvent}; the fleet's own (all but the bench) ${((fleetOwn(pacedCpu) * 1e6) / sent).toFixed(0)} µs, over the backlog ${((fleetOwn(cpu) * 1e6) / EVENTS).toFixed(0)} µs`,
    );
    log(
      `paced ${achieved.toFixed(0)}/s for ${SECONDS} s: p50 ${pct(latencies, 50)} ms, p99 ${pct(latencies, 99)} ms, lag first third ${mean(lag.slice(0, third)).toFixed(0)}, last third ${mean(lag.slice(-third)).toFixed(0)}`,
    );

    const lines = [
      '## Whole fleet, ingest to committed changes (issue 6)',
      '',
      `Command: \`npm run bench -- fleet\` (FLEET_EVENTS=${EVENTS}, FLEET_USERS=${USERS}, FLEET_SECONDS=${SECONDS}). Measured ${new Date().toISOString().slice(0, 10)} on this 2-core machine with Kafka, Apicurio, Redis, the control plane, one ingest, one identity resolver and ${EVALUATORS === 1 ? 'one realtime evaluator' : `${EVALUATORS} realtime evaluator replicas`} on it.`,
      'Space: bench/space.mjs (20 audiences, 10 computed traits). Events: Segment track/page calls posted to /v1/batch (100 per request, 8 requests in flight), users known by userId.',
      'Baseline: a passthrough consumer over the same engage.events.raw backlog, same run (decode each Avro record, re-encode it, one sendBatch per Kafka batch).',
      '',
      '| measure | value |',
      '|---|---|',
      `| passthrough of engage.events.raw (baseline) | ${ptRate.toFixed(0)} events/s |`,
      `| fleet, backlog of ${EVENTS}: first 200 from the ingest to the evaluator's last commit | ${fleetRate.toFixed(0)} events/s |`,
      `| CPU per event over the backlog, by process | ${cpuPerEvent} |`,
      `| ratio fleet / passthrough | ${(fleetRate / ptRate).toFixed(2)} |`,
      `| sustained load (${PACED_RATE ? 'FLEET_PACED_RATE' : 'half the fleet rate'}) | ${achieved.toFixed(0)} events/s for ${SECONDS} s |`,
      `| CPU per event under the sustained load, by process | ${pacedCpuPerEvent} |`,
      `| the fleet's own CPU per event (ingest, resolver, evaluator, Kafka, Redis): backlog / sustained load | ${((fleetOwn(cpu) * 1e6) / EVENTS).toFixed(0)} µs / ${((fleetOwn(pacedCpu) * 1e6) / sent).toFixed(0)} µs |`,
      `| lag (accepted - committed; committed offsets trail by up to KAFKA_COMMIT_INTERVAL_MS), mean of the first / last third of the ${lag.length} samples | ${mean(lag.slice(0, third)).toFixed(0)} / ${mean(lag.slice(-third)).toFixed(0)} events |`,
      `| latency from the ingest's 200 to the change record, p50 / p99 (${latencies.length} probes) | ${pct(latencies, 50)} ms / ${pct(latencies, 99)} ms |`,
      `| of which: 200 to the evaluator's emitted_at / emitted_at to this reader, p50 / p99 | ${pct(toEmit, 50)} / ${pct(toEmit, 99)} ms, ${pct(emitToRead, 50)} / ${pct(emitToRead, 99)} ms |`,
      '',
      `Machine load (1-minute average, 2 cores): ${loadBefore.toFixed(1)} before, ${os.loadavg()[0].toFixed(1)} after.`,
      'Target (issue 6): >= 10,000 events/s sustained end to end, p99 < 250 ms at half that load.',
    ];
    writeResults('RESULTS-fleet.md', lines);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const p of procs) p.child.kill('SIGTERM');
    await admin.disconnect();
    await producer.disconnect();
    await dropKeys(env.REDIS_URL, prefix);
    await dropTopics(kafka, prefix);
  }
}

await main();
