#!/usr/bin/env node
// `npm run chaos`: the fault-injection suite (issue 17, DESIGN.md "Failure
// model"). Starts its own Kafka, schema registry and Redis (non-default
// ports, temp dir: test/chaos/infra.js), the whole fleet from dist/, and runs
// one round per fault with the load running; each round gets a fresh space
// and is compared with the oracle (the reference evaluator over the
// acknowledged calls). Prints a table and adds it to bench/RESULTS-chaos.md (newest first; bench/run.mjs --collect puts it in bench/RESULTS.md).
// Traffic goes to 127.0.0.1 only. Bounded: each round by its deadlines, the
// run by CHAOS_BUDGET_MINUTES (default 28; rounds that would start after it
// are reported as skipped).
//
// Env: CHAOS_ROUNDS (comma-separated round ids to run, default all),
// CHAOS_SEED, CHAOS_PERSONS, CHAOS_KAFKA_PORT / CHAOS_REGISTRY_PORT /
// CHAOS_REDIS_PORT, CHAOS_KEEP (keep the temp dir's logs).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startInfra } = require('./infra');
const { Fleet, CONSUMERS } = require('./fleet');
const { TopicWatcher } = require('./observe');
const { runRound } = require('./round');
const { killService, pause, redisRestart, destinationOutage } = require('./faults');
const { rng } = require('./load');

const ROOT = path.resolve(__dirname, '../..');
const log = (m) => process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

function rounds(random) {
  return [
    // The control (only with CHAOS_ROUNDS=baseline): the same load and checks, no fault.
    { id: 'baseline', name: 'no fault (control)', fault: () => new Promise((r) => setTimeout(r, 45_000)), optional: true },
    { id: 'broker', name: 'broker SIGSTOP 30 s', fault: pause('kafka', 30_000) },
    { id: 'redis', name: 'Redis SIGKILL + restart (AOF everysec)', fault: redisRestart() },
    { id: 'registry', name: 'registry SIGSTOP 30 s', fault: pause('registry', 30_000) },
    {
      id: 'destination',
      name: 'destination refused 60 s, then 429 (Retry-After 2) 20 s',
      fault: destinationOutage({ refuseMs: 60_000, throttleMs: 20_000 }),
    },
    ...CONSUMERS.map((s) => ({
      id: `kill-${s}`,
      name: `SIGKILL ${s} x3`,
      fault: killService(s, { times: 3, minGapMs: 3_000, maxGapMs: 10_000, random }),
    })),
  ];
}

const fmt = (v) => (v === null || v === undefined ? '-' : typeof v === 'number' ? String(Math.round(v * 10) / 10) : String(v));

function table(rows) {
  const head = [
    'round',
    'acked',
    'given up',
    'lost (not resolved)',
    'changes missing / extra / 2 ids',
    'delivered missing / extra / 2 ids',
    'catch-up s',
    'converged s',
    'notes',
  ];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const r of rows) {
    lines.push(
      `| ${[
        r.round,
        fmt(r.acked),
        fmt(r.givenUp),
        fmt(r.missingResolved),
        r.skipped ? '-' : `${r.changesMissing} / ${r.changesExtra} / ${r.changesDoubled}`,
        r.skipped ? '-' : `${r.deliveredMissing} / ${r.deliveredExtra} / ${r.doubled}`,
        fmt(r.recoverySeconds),
        fmt(r.convergedSeconds),
        (r.notes ?? []).join('; ').replace(/\|/g, '/') || '',
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

async function main() {
  const started = Date.now();
  const budgetMs = Number(process.env.CHAOS_BUDGET_MINUTES ?? 28) * 60_000;
  const seed = Number(process.env.CHAOS_SEED ?? 17);
  const random = rng(seed);
  const wanted = process.env.CHAOS_ROUNDS ? process.env.CHAOS_ROUNDS.split(',') : null;
  const plan = rounds(random).filter((r) => (wanted ? wanted.includes(r.id) : !r.optional));
  for (const s of ['control-plane', 'ingest', ...CONSUMERS]) {
    if (!fs.existsSync(path.join(ROOT, 'services', s, 'dist/main.js')))
      throw new Error(`services/${s}/dist/main.js missing: build first (npx tsc -b)`);
  }
  log('starting own Kafka, registry and Redis (temp dir, non-default ports)');
  const prefix = 'chaos.';
  let fleet = { stop: async () => {} };
  let logDir = '';
  const infra = await startInfra();
  // Ctrl-C: the infrastructure runs in its own process groups; stop it, and the fleet, before leaving.
  for (const sig of ['SIGINT', 'SIGTERM'])
    process.once(sig, () => {
      log(`${sig}: stopping the fleet and the infrastructure`);
      Promise.allSettled([fleet.stop(), infra.down()]).then(() => process.exit(130));
    });
  log(`infrastructure up in ${infra.dir}: ${JSON.stringify(infra.env)}`);
  logDir = path.join(infra.dir, 'logs');
  fs.mkdirSync(logDir);
  fleet = new Fleet({ infraEnv: infra.env, prefix, logDir });
  const rows = [];
  let watcher;
  try {
    await fleet.start();
    log(`fleet up: ingest ${fleet.ingestUrl}, control plane ${fleet.controlPlaneUrl}`);
    watcher = await new TopicWatcher({
      brokers: infra.env.KAFKA_BROKERS,
      registryUrl: infra.env.SCHEMA_REGISTRY_URL,
      prefix,
      groupId: 'chaos-watcher',
    }).start();
    for (const [k, r] of plan.entries()) {
      // A round takes 2-3 min when the fleet recovers, at most ~6 when it does not.
      if (Date.now() - started > budgetMs - 5 * 60_000) {
        rows.push({ round: r.name, skipped: true, notes: ['skipped: time budget'] });
        continue;
      }
      log(`round ${k + 1}/${plan.length}: ${r.name}`);
      const { row, load, receiver, final } = await runRound({
        name: r.name,
        fleet,
        infra,
        watcher,
        fault: r.fault,
        runId: `r${k}${Date.now().toString(36)}`,
        persons: Number(process.env.CHAOS_PERSONS ?? 60),
        accounts: 6,
        lateShare: 0.3,
        workers: 4,
        pauseMs: 100,
        warmupMs: 10_000,
        afterFaultMs: 15_000,
        convergeMs: 75_000,
        quietMs: 8_000,
        seed: seed + k,
        dumpFile: path.join(logDir, `round-${r.id}.json`),
        log,
      });
      const notes = [];
      if (row.error) notes.push(`error: ${row.error}`);
      if (row.convergedSeconds === null) notes.push('did not converge within 75 s of the fault end (30 s after the load)');
      notes.push(`${row.failedAttempts} failed ingest attempts retried`);
      if (receiver.rejected) notes.push(`${receiver.rejected} calls answered 429`);
      if (final.changes.unowned)
        notes.push(`${final.changes.unowned} change record(s) naming no identifier of the load (account without group_id?)`);
      if (final.deliveries.unknown) notes.push(`${final.deliveries.unknown} call(s) naming no identifier of the load`);
      if (final.deliveries.resyncs)
        notes.push(`${final.deliveries.resyncs} re-sends of the last value to a newly added userId (not counted)`);
      notes.push(`${Math.round(row.roundSeconds)} s`);
      // A service that died by itself (not killed by the round) is a finding; restart it for the next round.
      for (const p of Object.values(fleet.procs)) {
        if (p.child.exitCode !== null || p.child.signalCode !== null) {
          notes.push(`${p.name} exited by itself (${p.child.exitCode ?? p.child.signalCode}); restarted`);
          log(`${p.name} exited by itself; last log lines:\n${p.tail.slice(-10).join('\n')}`);
          await p.start();
        }
      }
      rows.push({ ...row, notes });
      log(`  ${JSON.stringify({ ...row, notes, events: load.stats })}`);
    }
  } finally {
    await watcher?.stop();
    await fleet.stop();
    await infra.down();
  }
  let commit = 'unknown';
  let dirty = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const changed = execFileSync('git', ['status', '--porcelain', '--', 'services', 'libs'], { cwd: ROOT, encoding: 'utf8' }).trim();
    if (changed)
      dirty = ` (dist built from a working tree with ${changed.split('\n').length} uncommitted change(s) under services/ and libs/)`;
  } catch {
    // not a git checkout
  }
  const section = [
    '',
    `## Fault injection (\`npm run chaos\`), ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${commit}${dirty}`,
    '',
    `${os.cpus().length}-core machine, Node ${process.version}; own Kafka/registry/Redis (Redis AOF everysec); ${Math.round((Date.now() - started) / 60_000)} min in all.`,
    `Per round: a fresh space, ${process.env.CHAOS_PERSONS ?? 60} persons (30% anonymous first, identified later), 4 workers of sequential /v1/batch and single calls, a failed call retried with the same messageIds;`,
    'the oracle is the reference evaluator over the acknowledged calls. "lost": acknowledged calls not on engage.events.resolved; "missing / extra": transitions (clock-free computations, in order)',
    'and final values (window and account audiences) against the oracle; "2 ids": a transition emitted / delivered under a second change_id / messageId; "catch-up": from the fault\'s end until',
    'every call acknowledged before it is resolved and its transitions emitted and delivered; "converged": from the fault\'s end until everything matches, the load having stopped 15 s after the fault.',
    '',
    table(rows),
    '',
  ].join('\n');
  process.stdout.write(`${section}\n`);
  // Newest run first; bench/RESULTS.md is rebuilt from the RESULTS-<area>.md files (bench/run.mjs).
  const file = path.join(ROOT, 'bench/RESULTS-chaos.md');
  const earlier = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  fs.writeFileSync(file, `${section.trim()}\n\n${earlier}`);
  if (!process.env.CHAOS_KEEP) fs.rmSync(infra.dir, { recursive: true, force: true });
  else log(`logs kept in ${logDir}`);
  const bad = rows.some(
    (r) =>
      !r.skipped &&
      (r.missingResolved ||
        r.changesMissing ||
        r.changesExtra ||
        r.changesDoubled ||
        r.deliveredMissing ||
        r.deliveredExtra ||
        r.doubled ||
        r.error),
  );
  process.exit(bad ? 1 : 0);
}

main().catch((err) => {
  log(`failed: ${err.stack ?? err}`);
  process.exit(2);
});
