#!/usr/bin/env node
// Window expiry at scale (issue 18): EXPIRY_USERS users whose
// `within(1 hours)` window ends at the same instant; how late is each exit?
//
//   npm run bench -- expiry        (EXPIRY_USERS=10000 by default)
//
// The control plane, one realtime evaluator and one batch scheduler run as
// processes on real Kafka, schema registry and Redis. The bench writes one
// `Order Completed` per user on engage.events.resolved, stamped so that every
// window ends at the same instant T (a few seconds after the entries are in),
// and reads engage.computations.changes. Lateness of an exit: its arrival at
// this process minus T (it includes the scheduler's wake-up, the evaluation,
// Kafka and this consumer). Baseline in the same run: the realtime path's
// latency for the same users' entries (event produced -> entry arrived), i.e.
// what the same machine takes to turn an input into a change record.
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import {
  benchEnv,
  controlPlaneApi,
  cpuMeter,
  dropKeys,
  dropTopics,
  pct,
  ROOT,
  startService as startBuiltService,
  until,
  writeResults,
} from './harness.mjs';

const require = createRequire(import.meta.url);
const { createKafka, createProducer, ensureTopics, topicRegistry } = require(path.join(ROOT, 'libs/kafka/dist/index.js'));
const { SchemaCodec, valueSubject } = require(path.join(ROOT, 'libs/schemas/dist/index.js'));
const { silentLogger } = require(path.join(ROOT, 'libs/logging/dist/index.js'));

const USERS = Number(process.env.EXPIRY_USERS ?? 10_000);
/** From the first event produced to the common window end, ms: every entry must be in before it. */
const ENTRY_BUDGET_MS = Number(process.env.EXPIRY_ENTRY_BUDGET_MS ?? 60_000);
const TOKEN = 'expiry-bench-token';
const HOUR = 3_600_000;
const prefix = `bench-expiry-${Date.now().toString(36)}.`;
const env = benchEnv(prefix, {
  CONTROL_PLANE_TOKEN: TOKEN,
  ...(process.env.EXPIRY_SCHEDULER_ENV ? JSON.parse(process.env.EXPIRY_SCHEDULER_ENV) : {}),
});
const log = (msg) => process.stderr.write(`[expiry] ${msg}\n`);

async function main() {
  const loadBefore = os.loadavg()[0];
  const kafka = createKafka({ brokers: env.KAFKA_BROKERS.split(','), clientId: 'expiry-bench' }, { log: silentLogger() });
  const topics = topicRegistry(prefix);
  await ensureTopics(kafka, Object.values(topics));
  const codec = new SchemaCodec({ url: env.SCHEMA_REGISTRY_URL });
  await codec.registerTopics(Object.values(topics));
  const producer = createProducer(kafka);
  await producer.connect();
  const procs = [];
  const reader = kafka.consumer({ groupId: `${prefix}reader` });
  try {
    const cp = await startBuiltService('control-plane', env);
    procs.push(cp);
    const api = controlPlaneApi(cp.port, TOKEN);
    const spaceId = (await api('POST', '/spaces', { name: 'Expiry bench' })).data.space.id;
    const audience = (
      await api('POST', `/spaces/${spaceId}/audiences`, {
        name: 'Bought in the last hour',
        definition: { query: "event('Order Completed').within(1 hours).count() >= 1", type: 'users' },
      })
    ).data.audience;
    // EXPIRY_SCHEDULER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the scheduler.
    const schedulerArgs = process.env.EXPIRY_SCHEDULER_NODE_ARGS ? process.env.EXPIRY_SCHEDULER_NODE_ARGS.split(' ') : [];
    procs.push(
      await startBuiltService('realtime-evaluator', env),
      await startBuiltService('batch-scheduler', env, { nodeArgs: schedulerArgs }),
    );
    await until(
      async () => (await api('GET', `/spaces/${spaceId}/audiences/${audience.id}`)).data.audience.status === 'Live',
      'audience Live',
    );

    const entered = new Map();
    const exited = new Map();
    await reader.connect();
    await reader.subscribe({ topic: topics.computationsChanges.name, fromBeginning: true });
    await reader.run({
      // The reader's group is new every run and never resumed: no offsets to commit. (kafkajs's default,
      // a commit after every batch, was ~90 OffsetCommit requests a second here, counted as the broker's cost.)
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const at = Date.now();
        for (const m of batch.messages) {
          const c = await codec.decode(m.value);
          if (c.computation_id !== audience.id) continue;
          (c.value === true ? entered : exited).set(c.profile_id, { at, emittedAt: c.emitted_at });
        }
      },
    });

    // Every window ends at T = windowEnd: the events are stamped T - 1 h; the entries must all be
    // in before T (on a loaded machine they take a while), so T is ENTRY_BUDGET_MS after the start.
    const produceStart = Date.now();
    const windowEnd = produceStart + ENTRY_BUDGET_MS;
    const stamp = windowEnd - HOUR;
    const subject = valueSubject(topics.eventsResolved.name);
    for (let i = 0; i < USERS; i += 2000) {
      const messages = [];
      for (let j = i; j < Math.min(USERS, i + 2000); j++) {
        const e = {
          profile_id: `pro_${j}`,
          account_id: null,
          resolved_at: Date.now(),
          message_id: `m-${j}`,
          type: 'track',
          space_id: spaceId,
          source_id: 'src_bench',
          user_id: `u_${j}`,
          anonymous_id: null,
          group_id: null,
          previous_id: null,
          event: 'Order Completed',
          name: null,
          timestamp: stamp,
          sent_at: null,
          received_at: Date.now(),
          properties_json: '{}',
          traits_json: '{}',
          context_json: '{}',
          integrations_json: '{}',
          external_ids: [],
        };
        messages.push({ key: e.profile_id, value: await codec.encode(subject, e) });
      }
      await producer.send({ topic: topics.eventsResolved.name, messages });
    }
    await until(() => entered.size >= USERS, `${USERS} entries`, 600_000);
    const entryLatency = [...entered.values()].map((x) => x.at - produceStart).sort((a, b) => a - b);
    log(`entries in: p50 ${pct(entryLatency, 50)} ms, p99 ${pct(entryLatency, 99)} ms after the first event was produced`);
    if (Date.now() > windowEnd - 1000) throw new Error('the entries took longer than the budget; raise EXPIRY_ENTRY_BUDGET_MS');

    const meter = await cpuMeter(env.REDIS_URL, { 'batch-scheduler': procs[2].child.pid, 'realtime-evaluator': procs[1].child.pid });
    await until(() => exited.size >= USERS, `${USERS} exits`, 600_000);
    const cpu = await meter();
    const late = [...exited.values()].map((x) => x.at - windowEnd).sort((a, b) => a - b);
    const emitLate = [...exited.values()].map((x) => x.emittedAt - windowEnd).sort((a, b) => a - b);
    log(`exit lateness: p50 ${pct(late, 50)} ms, p99 ${pct(late, 99)} ms, max ${late.at(-1)} ms`);

    const lines = [
      '## Window expiry at scale (issue 18)',
      '',
      `Command: \`npm run bench -- expiry\` (EXPIRY_USERS=${USERS}). Measured ${new Date().toISOString().slice(0, 10)} on this 2-core machine with Kafka, Apicurio, Redis, the control plane, one realtime evaluator and one batch scheduler on it (load average ${loadBefore.toFixed(1)} before, ${os.loadavg()[0].toFixed(1)} after).`,
      `${USERS} users each with one \`Order Completed\` stamped so that \`event('Order Completed').within(1 hours).count() >= 1\` ends for all at the same instant T. Lateness: arrival of the exit's change record at the bench minus T.`,
      'Baseline in the same run: the realtime path for the same users (first event produced -> entry record arrived).',
      '',
      '| measure | value |',
      '|---|---|',
      `| exits received | ${exited.size} of ${USERS} |`,
      `| exit lateness p50 / p99 / max (arrival at the bench) | ${pct(late, 50)} / ${pct(late, 99)} / ${late.at(-1)} ms |`,
      `| exit lateness p50 / p99 by the scheduler's emitted_at | ${pct(emitLate, 50)} / ${pct(emitLate, 99)} ms |`,
      `| baseline: entries p50 / p99 after the first event was produced | ${pct(entryLatency, 50)} / ${pct(entryLatency, 99)} ms |`,
      `| CPU from the entries to the last exit: scheduler / evaluator / Redis | ${[cpu['batch-scheduler'], cpu['realtime-evaluator'], cpu.redis].map((x) => (x === null ? '?' : `${x.toFixed(2)} s`)).join(' / ')} |`,
      '',
      'Target (issue 18): p99 lateness under 1 s for 10,000 simultaneous expiries.',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    writeResults('RESULTS-expiry.md', lines);
  } finally {
    await reader.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    for (const p of procs) p.child.kill('SIGTERM');
    await dropTopics(kafka, prefix).catch(() => {});
    await dropKeys(env.REDIS_URL, prefix).catch(() => {});
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err.stack ?? err}\n`);
    process.exit(1);
  },
);
