#!/usr/bin/env node
// `node bench/scaling.bench.mjs` (or `npm run bench -- scaling`): issue 21
// item 6, "Scaling proven". Runs the fleet from dist/ on its own Kafka,
// registry and Redis (the chaos suite's test/chaos/infra.js, on ports of its
// own) with 2 dispatcher replicas (DESTINATION_ID=*, one webhook destination
// on a local receiver) and 1, then 2, then 3 realtime-evaluator replicas,
// under the chaos suite's steady paced load through the ingest HTTP API.
//
// Per phase (N evaluators): a fresh load (new persons) starts; N is reached
// (a replica added under load, except in phase 1); after a settle time the
// steady window measures the evaluators' CPU per event (the harness's cpu
// meter: on a 2-core machine shared with other work, wall-clock saturation
// rates move with the neighbours, CPU per event does not); then, under load,
// a replica is added, one removed with SIGTERM, one added, one removed with
// SIGKILL (back to N), each followed by a gap in which the rebalance pause is
// measured: the longest time without a committed change record (any
// partition, and the worst single partition) and without a delivered call.
// At the end the load has stopped; after convergence and a quiet period every
// phase's acknowledged calls are compared with the chaos oracle (the
// reference evaluator): lost / extra / doubled transitions and deliveries.
// Writes bench/RESULTS-scaling.md; exits 1 when anything is lost or doubled.
//
// Env: SCALE_STEADY_S (steady window, default 30), SCALE_GAP_S (time after
// each add / remove, default 12; 15 after a SIGKILL), SCALE_PERSONS (per
// phase, default 60), SCALE_PORT_BASE (default 20400: Kafka base, base+1,
// registry base+2, its management base+3, Redis base+4), SCALE_KEEP (keep logs).
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, cpuMeter, sleep, writeResults } from './harness.mjs';

const require = createRequire(import.meta.url);
const { startInfra } = require('../test/chaos/infra.js');
const { Fleet, ServiceProc } = require('../test/chaos/fleet.js');
const { TopicWatcher, compareRound } = require('../test/chaos/observe.js');
const { setupSpace } = require('../test/chaos/round.js');
const { Load } = require('../test/chaos/load.js');
const { ChaosReceiver } = require('../test/chaos/receiver.js');
const { lastWindowEnd } = require('../test/chaos/oracle.js');

const STEADY_MS = Number(process.env.SCALE_STEADY_S ?? 30) * 1000;
const GAP_MS = Number(process.env.SCALE_GAP_S ?? 12) * 1000;
const KILL_GAP_MS = GAP_MS + 3_000;
const SETTLE_MS = 12_000;
const IDLE_MS = 10_000;
const PERSONS = Number(process.env.SCALE_PERSONS ?? 60);
const PORT_BASE = Number(process.env.SCALE_PORT_BASE ?? 20400);
const EVALUATOR = 'realtime-evaluator';

const started = Date.now();
const log = (m) => process.stderr.write(`[scaling ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

/** Arrival times of committed change records (per partition) and of delivered calls. */
class Arrivals {
  constructor(receiver) {
    this.receiver = receiver;
    this.changes = new Map(); // partition -> [at]
  }
  onRecord = ({ topic, partition, at }) => {
    if (!topic.endsWith('computations.changes')) return;
    if (!this.changes.has(partition)) this.changes.set(partition, []);
    this.changes.get(partition).push(at);
  };
  allChanges() {
    return [...this.changes.values()].flat().sort((a, b) => a - b);
  }
  deliveries() {
    return this.receiver.ok.map((r) => r.at);
  }
}

/**
 * The longest time in [from, to] without an arrival: counted from the last
 * arrival before `from` (a stall that began just before the change belongs to
 * it) to the next one, or to `to` when none came.
 */
function longestGap(times, from, to) {
  let prev = from;
  for (const t of times) if (t <= from) prev = t;
  let max = 0;
  for (const t of times) {
    if (t <= from) continue;
    if (t > to) break;
    max = Math.max(max, t - prev);
    prev = t;
  }
  return Math.max(max, to - prev) / 1000;
}

function gaps(arrivals, from, to) {
  const perPartition = [...arrivals.changes.values()].map((ts) => longestGap(ts, from, to));
  return {
    changes: longestGap(arrivals.allChanges(), from, to),
    partition: perPartition.length ? Math.max(...perPartition) : (to - from) / 1000,
    deliveries: longestGap(arrivals.deliveries(), from, to),
  };
}

async function main() {
  for (const s of ['control-plane', 'ingest', 'identity-resolver', EVALUATOR, 'batch-scheduler', 'dispatcher'])
    if (!fs.existsSync(path.join(ROOT, 'services', s, 'dist/main.js')))
      throw new Error(`services/${s}/dist/main.js missing: npm run build`);
  log(`starting own Kafka, registry and Redis (ports from ${PORT_BASE})`);
  const infra = await startInfra({
    kafka: PORT_BASE,
    registry: PORT_BASE + 2,
    registryManagement: PORT_BASE + 3,
    redis: PORT_BASE + 4,
  });
  const logDir = path.join(infra.dir, 'logs');
  fs.mkdirSync(logDir);
  const prefix = 'scale.';
  const fleet = new Fleet({ infraEnv: infra.env, prefix, logDir });
  let replicaNo = 1;
  const newProc = (name) => new ServiceProc(name, fleet.env, path.join(logDir, `${name}-${++replicaNo}.log`));
  const extraDispatcher = newProc('dispatcher');
  /** The evaluator replicas running now, oldest first. */
  const evaluators = [fleet.procs[EVALUATOR]];
  const stopAll = () => Promise.allSettled([fleet.stop(), extraDispatcher.stop(), ...evaluators.map((p) => p.stop())]);
  for (const sig of ['SIGINT', 'SIGTERM'])
    process.once(sig, () => {
      log(`${sig}: stopping the fleet and the infrastructure`);
      stopAll()
        .then(() => infra.down())
        .then(() => process.exit(130));
    });
  const receiver = await new ChaosReceiver().start();
  const arrivals = new Arrivals(receiver);
  let watcher;
  const phases = [];
  try {
    await fleet.start();
    await extraDispatcher.start();
    log(`fleet up (2 dispatchers, 1 evaluator): ingest ${fleet.ingestUrl}`);
    watcher = await new TopicWatcher({
      brokers: infra.env.KAFKA_BROKERS,
      registryUrl: infra.env.SCHEMA_REGISTRY_URL,
      prefix,
      groupId: 'scaling-watcher',
      onRecord: arrivals.onRecord,
    }).start();
    const space = await setupSpace(fleet, receiver, `scaling ${Date.now().toString(36)}`);
    log(`space ${space.spaceId} ready`);

    const add = async () => {
      const p = newProc(EVALUATOR);
      evaluators.push(p);
      await p.start();
      return p;
    };

    for (const n of [1, 2, 3]) {
      const load = new Load({
        ingestUrl: fleet.ingestUrl,
        writeKey: space.writeKey,
        runId: `s${n}${Date.now().toString(36)}`,
        persons: PERSONS,
        accounts: 6,
        lateShare: 0.3,
        workers: 4,
        pauseMs: 100,
        seed: 21 + n,
        log,
      }).start();
      const phase = { n, load, changes: [], notes: [] };
      phases.push(phase);
      if (evaluators.length < n) {
        const t = Date.now();
        await add();
        phase.notes.push(`reached ${n} replicas by adding one under load (${((Date.now() - t) / 1000).toFixed(1)} s to listen)`);
      }
      log(`phase ${n}: ${evaluators.length} evaluator(s); settling ${SETTLE_MS / 1000} s`);
      await sleep(SETTLE_MS);
      const pids = Object.fromEntries(evaluators.map((p, i) => [`evaluator${i + 1}`, p.child.pid]));
      pids.dispatcher1 = fleet.procs.dispatcher.child.pid;
      pids.dispatcher2 = extraDispatcher.child.pid;
      const meter = await cpuMeter(infra.env.REDIS_URL, pids);
      const a0 = load.ackedCount();
      const t0 = Date.now();
      await sleep(STEADY_MS);
      const cpu = await meter();
      const t1 = Date.now();
      const events = load.ackedCount() - a0;
      const evaluatorCpu = Object.entries(cpu)
        .filter(([k]) => k.startsWith('evaluator'))
        .map(([, v]) => v);
      phase.steady = {
        events,
        rate: events / ((t1 - t0) / 1000),
        evaluatorCpuMsPerEvent: (1000 * evaluatorCpu.reduce((a, b) => a + b, 0)) / events,
        perReplicaCpuS: evaluatorCpu,
        dispatcherCpuMsPerEvent: (1000 * (cpu.dispatcher1 + cpu.dispatcher2)) / events,
        gaps: gaps(arrivals, t0, t1),
      };
      log(`  steady: ${JSON.stringify(phase.steady)}`);

      // The changes under load: each measured until the next one.
      const plan = [
        { name: 'add', gapMs: GAP_MS, act: async () => void (await add()) },
        { name: 'SIGTERM', gapMs: GAP_MS, act: async () => void evaluators.shift().stop() },
        { name: 'add', gapMs: GAP_MS, act: async () => void (await add()) },
        { name: 'SIGKILL', gapMs: KILL_GAP_MS, act: async () => void evaluators.shift().kill('SIGKILL') },
      ];
      for (const step of plan) {
        const before = evaluators.length;
        const t = Date.now();
        await step.act();
        const after = before + (step.name === 'add' ? 1 : -1);
        // NOTE: an added replica joins the group once started (tens of seconds on a busy machine): the gap is counted from then.
        await sleep(step.gapMs);
        const g = gaps(arrivals, t, Date.now());
        phase.changes.push({ label: `${step.name} (${before}→${after})`, ...g });
        log(`  ${step.name} ${before}→${after}: ${JSON.stringify(g)}`);
      }
      await load.stop();
      phase.acked = load.ackedCount();
      // The replicas' fixed cost (polling, heartbeats, timers of the scheduler's window expiry) without calls, to separate it from the cost per call.
      await sleep(5_000);
      const idleMeter = await cpuMeter(
        infra.env.REDIS_URL,
        Object.fromEntries(evaluators.map((p, i) => [`evaluator${i + 1}`, p.child.pid])),
      );
      await sleep(IDLE_MS);
      const idle = await idleMeter();
      const idleCpuPerS =
        Object.entries(idle)
          .filter(([k]) => k.startsWith('evaluator'))
          .reduce((a, [, v]) => a + v, 0) /
        (IDLE_MS / 1000);
      phase.steady.idleCpuPerS = idleCpuPerS;
      phase.steady.netCpuMsPerEvent = phase.steady.evaluatorCpuMsPerEvent - (1000 * idleCpuPerS * (STEADY_MS / 1000)) / phase.steady.events;
      log(`phase ${n} done: ${phase.acked} calls acknowledged (${JSON.stringify(load.stats.statuses)})`);
    }

    // Convergence of every phase's load, then a quiet period: nothing more may arrive.
    log('load stopped; waiting for convergence');
    const base = (ph) => ({ load: ph.load, sourceId: space.sourceId, spaceId: space.spaceId, watcher, receiver });
    const windowsEnd = Math.max(...phases.map((ph) => lastWindowEnd(ph.load.persons)));
    const deadline = Date.now() + 120_000;
    let converged = false;
    while (Date.now() < deadline) {
      converged = phases.every((ph) => {
        const c = compareRound(base(ph));
        return (
          c.missingResolved === 0 && c.changes.missing + c.changes.wrongFinal === 0 && c.deliveries.missing + c.deliveries.wrongFinal === 0
        );
      });
      if (converged && Date.now() > windowsEnd + 2_000) break;
      await sleep(1_000);
    }
    const quietMs = 8_000;
    const quietDeadline = Date.now() + 60_000;
    while (Date.now() < quietDeadline) {
      const last = Math.max(receiver.lastArrival, ...arrivals.allChanges().slice(-1));
      if (Date.now() - last >= quietMs) break;
      await sleep(250);
    }
    for (const ph of phases) {
      const f = compareRound(base(ph));
      ph.final = f;
      ph.lost = {
        resolved: f.missingResolved,
        changes: f.changes.missing + f.changes.wrongFinal,
        deliveries: f.deliveries.missing + f.deliveries.wrongFinal,
      };
      ph.dup = {
        changesExtra: f.changes.extra,
        changes2: f.changes.doubled + f.changes.conflicting,
        deliveriesExtra: f.deliveries.extra,
        deliveries2: f.deliveries.doubled + f.deliveries.conflicting,
      };
      if (f.deliveries.resyncs) ph.notes.push(`${f.deliveries.resyncs} re-sends of the last value to a newly added userId (not counted)`);
      if (f.taintedPersons) ph.notes.push(`${f.taintedPersons} persons with a call given up`);
      log(`phase ${ph.n}: lost ${JSON.stringify(ph.lost)}, doubled ${JSON.stringify(ph.dup)}`);
    }
    if (!converged) phases.forEach((ph) => ph.notes.push('did not converge within 120 s of the load stopping'));
  } finally {
    await watcher?.stop();
    await receiver.stop();
    await stopAll();
    await infra.down();
  }
  report(phases);
  if (!process.env.SCALE_KEEP) fs.rmSync(infra.dir, { recursive: true, force: true });
  else log(`logs kept in ${logDir}`);
  const bad = phases.some((ph) => !ph.final || Object.values(ph.lost).some(Boolean) || Object.values(ph.dup).some(Boolean));
  process.exit(bad ? 1 : 0);
}

const s1 = (v) => (v === undefined || v === null ? '-' : (Math.round(v * 10) / 10).toFixed(1));
const s2 = (v) => (v === undefined || v === null ? '-' : v.toFixed(2));

function report(phases) {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  const one = phases.find((ph) => ph.n === 1)?.steady;
  const main = [
    '| evaluators (+2 dispatchers) | calls acked | load, calls/s | lost: not resolved / changes / deliveries | extra / 2nd id: changes; deliveries | longest pause after a change: any change / worst partition / deliveries, s | steady longest gap (same 3), s | evaluator CPU ms per call, all replicas: gross / net of idle | ratio to 1 replica: gross / net | CPU s per replica in the window | idle CPU, % of a core, all replicas | dispatcher CPU ms per call |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const ph of phases) {
    const st = ph.steady ?? {};
    const worst = (k) => (ph.changes.length ? Math.max(...ph.changes.map((c) => c[k])) : null);
    main.push(
      `| ${[
        ph.n,
        ph.acked ?? '-',
        s1(st.rate),
        ph.lost ? `${ph.lost.resolved} / ${ph.lost.changes} / ${ph.lost.deliveries}` : '-',
        ph.dup ? `${ph.dup.changesExtra} / ${ph.dup.changes2}; ${ph.dup.deliveriesExtra} / ${ph.dup.deliveries2}` : '-',
        `${s1(worst('changes'))} / ${s1(worst('partition'))} / ${s1(worst('deliveries'))}`,
        st.gaps ? `${s1(st.gaps.changes)} / ${s1(st.gaps.partition)} / ${s1(st.gaps.deliveries)}` : '-',
        `${s2(st.evaluatorCpuMsPerEvent)} / ${s2(st.netCpuMsPerEvent)}`,
        one?.evaluatorCpuMsPerEvent && st.evaluatorCpuMsPerEvent
          ? `${s2(st.evaluatorCpuMsPerEvent / one.evaluatorCpuMsPerEvent)} / ${one.netCpuMsPerEvent ? s2(st.netCpuMsPerEvent / one.netCpuMsPerEvent) : '-'}`
          : '-',
        (st.perReplicaCpuS ?? []).map(s1).join(' + '),
        st.idleCpuPerS === undefined ? '-' : s1(100 * st.idleCpuPerS),
        s2(st.dispatcherCpuMsPerEvent),
      ].join(' | ')} |`,
    );
  }
  const pauses = [
    '| phase | change under load | no change record, s | worst partition, s | no delivery, s |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const ph of phases)
    for (const c of ph.changes) pauses.push(`| ${ph.n} | ${c.label} | ${s1(c.changes)} | ${s1(c.partition)} | ${s1(c.deliveries)} |`);
  const notes = phases.filter((ph) => ph.notes.length).map((ph) => `- phase ${ph.n}: ${ph.notes.join('; ')}`);
  const lines = [
    '# Scaling: evaluator replicas added and removed under load (issue 21 item 6)',
    '',
    `Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${commit}, ${os.cpus().length}-core machine (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, ${Math.round((Date.now() - started) / 60_000)} min in all; load average ${os.loadavg()[0].toFixed(1)} at the end (other work on the machine).`,
    '',
    'Command: `node bench/scaling.bench.mjs` (or `npm run bench -- scaling`). Own Kafka (1 broker, 6 partitions per data topic), registry and Redis (test/chaos/infra.js);',
    'the fleet from dist/ (test/chaos/fleet.js: 6 s session timeout, 5 s profile lock TTL); 2 dispatcher replicas (DESTINATION_ID=*, one webhook destination on a local receiver);',
    `1 identity resolver, 1 scheduler. Per phase a fresh load of ${PERSONS} persons (test/chaos/load.js: 4 workers of paced /v1/batch and single calls) on the same space.`,
    `Phase N: the load starts, a replica is added under load to reach N (phases 2, 3), ${SETTLE_MS / 1000} s settle, a ${STEADY_MS / 1000} s steady window (CPU, gaps),`,
    `then under load: add one, SIGTERM the oldest, add one, SIGKILL the oldest (${GAP_MS / 1000} s after each, ${KILL_GAP_MS / 1000} s after the SIGKILL).`,
    "After all phases the load stops; once converged and quiet (8 s), each phase's acknowledged calls are compared with the chaos oracle (the reference evaluator):",
    '"lost": acknowledged calls not on engage.events.resolved, transitions (clock-free computations, in order) and final values missing from the change records / the receiver;',
    '"extra / 2nd id": transitions emitted or delivered beyond the oracle\'s, and those under a second change_id / messageId.',
    '',
    "Throughput per replica is measured as **CPU per call** (the harness's cpu meter over the steady window, /proc of every evaluator replica), not as a saturation rate:",
    'on 2 shared cores the whole fleet, Kafka and the registry compete for the same CPU, so a saturation rate measures the machine, not the replicas.',
    'The load is the same in every phase (same workers, pauses and persons): a ratio of 1.0 means N replicas cost no more CPU per call than one, i.e. the capacity adds up per replica;',
    'above 1.0 is the per-replica fixed cost (polling, heartbeats, caches per replica) spread over the same calls. Capacity per replica ≈ 1000 / (CPU ms per call) calls per CPU-second.',
    `The load is closed-loop (each worker waits for its answer), so its rate moves with the machine: "net of idle" subtracts the replicas' CPU measured for ${IDLE_MS / 1000} s without calls`,
    "after the phase (5 s after the load stopped; it still includes the scheduler's window-expiry timers), leaving the cost per call, which should not grow with replicas.",
    '"Pause": the longest time without a committed change record (read_committed watcher; any partition, and the worst single partition) or delivered call, from the last one before',
    "the change until the next change; the steady window's longest gap is the same figure without a change, the floor the pauses compare with.",
    '',
    ...main,
    '',
    ...pauses,
    '',
    ...(notes.length ? ['Notes:', '', ...notes, ''] : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  writeResults('RESULTS-scaling.md', lines);
}

main().catch((err) => {
  log(`failed: ${err.stack ?? err}`);
  process.exit(2);
});
