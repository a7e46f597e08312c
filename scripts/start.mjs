#!/usr/bin/env node
// `npm start`: the local infrastructure plus every service, supervised in one
// command with prefixed logs. Ctrl-C (or SIGTERM) stops the services, then the
// infrastructure this command started, and leaves no process behind.
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { down, up } from './infra.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const INGEST_PORT = process.env.INGEST_PORT ?? '8080';
const CONTROL_PLANE_PORT = process.env.CONTROL_PLANE_PORT ?? '8088';
const CONTROL_PLANE_TOKEN = process.env.CONTROL_PLANE_TOKEN ?? 'dev-token';

const SERVICES = [
  // A local fleet sends to local receivers: loopback destinations are allowed
  // here only (CONTRACT.md section 7; docker-compose and deploy/ allow none).
  { name: 'control-plane', env: { CONTROL_PLANE_PORT, DESTINATION_ALLOWED_HOSTS: process.env.DESTINATION_ALLOWED_HOSTS ?? '127.0.0.0/8' } },
  { name: 'ingest', env: { INGEST_PORT } },
  { name: 'identity-resolver', env: { OPS_PORT: '9101' } },
  { name: 'realtime-evaluator', env: { OPS_PORT: '9102' } },
  // Historical backfills replay engage.events.resolved from its start: keep it all (-1) unless told otherwise.
  { name: 'batch-scheduler', env: { OPS_PORT: '9103', EVENTS_RESOLVED_RETENTION_MS: process.env.EVENTS_RESOLVED_RETENTION_MS ?? '-1' } },
  // Deployed: one dispatcher per destination. DESTINATION_ID=* serves every
  // destination in one process for local development, each still under its
  // own consumer groups (services/dispatcher/src/destination-pipeline.ts).
  { name: 'dispatcher', env: { OPS_PORT: '9104', DESTINATION_ID: process.env.DESTINATION_ID ?? '*' } },
];

const children = new Map();
let stopping = false;

function prefixLines(stream, name, out) {
  const rl = readline.createInterface({ input: stream });
  rl.on('line', (line) => out.write(`[${name.padEnd(18)}] ${line}\n`));
}

async function stopAll(startedInfra, code) {
  if (stopping) return;
  stopping = true;
  process.stderr.write('\n[start] stopping services...\n');
  const exits = [...children.values()].map(
    (child) =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  );
  await Promise.all(exits);
  if (startedInfra.length > 0) {
    process.stderr.write(`[start] stopping ${startedInfra.join(', ')}...\n`);
    await down(startedInfra);
  }
  process.exit(code);
}

async function bootstrapDemo() {
  // Creates (once) a demo space and source, so the printed write key works.
  const base = `http://127.0.0.1:${CONTROL_PLANE_PORT}`;
  const headers = { authorization: `Bearer ${CONTROL_PLANE_TOKEN}`, 'content-type': 'application/json' };
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    try {
      const ready = await fetch(`${base}/readyz`);
      if (ready.ok) break;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  try {
    const spaces = await (await fetch(`${base}/spaces`, { headers })).json();
    let space = spaces?.data?.spaces?.find((s) => s.name === 'Demo');
    if (!space)
      space = (await (await fetch(`${base}/spaces`, { method: 'POST', headers, body: JSON.stringify({ name: 'Demo' }) })).json())?.data
        ?.space;
    if (!space) return null;
    const sources = await (await fetch(`${base}/spaces/${space.id}/sources`, { headers })).json();
    let source = sources?.data?.sources?.find((s) => s.name === 'Demo source');
    if (!source)
      source = (
        await (
          await fetch(`${base}/spaces/${space.id}/sources`, { method: 'POST', headers, body: JSON.stringify({ name: 'Demo source' }) })
        ).json()
      )?.data?.source;
    return { spaceId: space.id, writeKey: source?.writeKey };
  } catch {
    return null;
  }
}

async function main() {
  let infra;
  try {
    infra = await up();
  } catch (err) {
    process.stderr.write(`[start] infrastructure failed: ${err.message}\n`);
    process.exit(1);
  }
  process.once('SIGINT', () => void stopAll(infra.started, 0));
  process.once('SIGTERM', () => void stopAll(infra.started, 0));

  for (const svc of SERVICES) {
    const child = spawn(process.execPath, [path.join(ROOT, 'services', svc.name, 'dist/main.js')], {
      env: { ...process.env, ...infra.env, CONTROL_PLANE_TOKEN, ...svc.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.set(svc.name, child);
    prefixLines(child.stdout, svc.name, process.stdout);
    prefixLines(child.stderr, svc.name, process.stderr);
    child.once('exit', (code, signal) => {
      if (!stopping) {
        process.stderr.write(`[start] ${svc.name} exited (${code ?? signal}); stopping everything\n`);
        void stopAll(infra.started, 1);
      }
    });
  }

  const demo = await bootstrapDemo();
  process.stdout.write(
    [
      '',
      '==================== engage is running ====================',
      `  ingest (Segment tracking API)  http://127.0.0.1:${INGEST_PORT}/v1/track`,
      `  control plane + Profile API    http://127.0.0.1:${CONTROL_PLANE_PORT}`,
      `  control plane token            ${CONTROL_PLANE_TOKEN}`,
      `  console                        http://127.0.0.1:${CONTROL_PLANE_PORT}/console/`,
      `  API reference                  http://127.0.0.1:${CONTROL_PLANE_PORT}/openapi.json (docs/api.md)`,
      demo?.writeKey
        ? `  demo space / write key         ${demo.spaceId} / ${demo.writeKey}`
        : '  demo write key                 (control plane has no sources API yet)',
      ...Object.entries(infra.env).map(([k, v]) => `  ${k.padEnd(30)} ${v}`),
      '  Ctrl-C stops everything this command started.',
      '===========================================================',
      '',
    ].join('\n'),
  );
}

await main();
