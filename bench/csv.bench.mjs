#!/usr/bin/env node
// Audience CSV export of a large audience, end to end through the control
// plane's HTTP endpoint, against a raw Redis read of the same keys (SSCAN of
// the member set + one MGET per page of the profiles' stored identifiers, no
// formatting, no HTTP) measured in the same run.
//
//   npm run bench -- csv            (CSV_BENCH_MEMBERS=1000000 by default)
//
// Memory: the control plane's peak RSS during the export minus its RSS just
// before (VmHWM is reset through /proc/<pid>/clear_refs before each export).
import fs from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { createRequire } from 'node:module';
import { benchEnv, dropKeys, dropTopics, startService, writeResults } from './harness.mjs';

const require = createRequire(import.meta.url);
const { createKafka } = require('@engage/kafka');
const { silentLogger } = require('@engage/logging');

const MEMBERS = Number(process.env.CSV_BENCH_MEMBERS ?? 1_000_000);
const TOKEN = 'csv-bench-token';
const prefix = `bench-csv-${Date.now().toString(36)}.`;
const env = benchEnv(prefix, { CONTROL_PLANE_TOKEN: TOKEN });

// CSV_BENCH_NODE_FLAGS (e.g. --cpu-prof) go to the control plane.
const startControlPlane = () =>
  startService('control-plane', env, { nodeArgs: process.env.CSV_BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [] });

const memKb = (pid, field) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);

async function main() {
  const redis = new Redis(env.REDIS_URL);
  const { child, port } = await startControlPlane();
  const base = `http://127.0.0.1:${port}`;
  const api = async (method, p, body) =>
    (
      await fetch(`${base}${p}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: body && JSON.stringify(body),
      })
    ).json();
  try {
    const spaceId = (await api('POST', '/spaces', { name: 'CSV bench' })).data.space.id;
    const audience = (
      await api('POST', `/spaces/${spaceId}/audiences`, {
        name: 'Everyone',
        definition: { query: "event('Signed Up').count() >= 1", type: 'users' },
      })
    ).data.audience;
    const membersKey = `${prefix}rt:members:{${audience.id}}`;
    // The identifiers string the evaluator stores next to each profile's state (identifiersJson).
    const idsKey = (pid) => `${prefix}rt:{${spaceId}:${pid}}:ids`;

    // Populate: MEMBERS profiles, each with user_id, email and anonymous_id.
    let t = Date.now();
    for (let i = 0; i < MEMBERS; i += 10_000) {
      const p = redis.pipeline();
      const ids = [];
      for (let j = i; j < Math.min(MEMBERS, i + 10_000); j++) {
        const pid = `pro_${j.toString(36).padStart(8, '0')}`;
        ids.push(pid);
        p.set(idsKey(pid), JSON.stringify({ anonymous_id: [`anon-${j}`], email: [`user${j}@bench.test`], user_id: [`u${j}`] }));
      }
      p.sadd(membersKey, ...ids);
      await p.exec();
    }
    process.stderr.write(`[csv] populated ${MEMBERS} members in ${Date.now() - t} ms\n`);

    // Baseline: the raw Redis reads an export needs, in the same page size.
    // Measured before and after the exports, the ratio against the mean: a
    // freshly written Redis and a shared machine drift by 10-20% within a run.
    const rawRead = async () => {
      const started = performance.now();
      let ids = 0;
      let cursor = '0';
      do {
        const [next, members] = await redis.sscan(membersKey, cursor, 'COUNT', 5000);
        cursor = next;
        if (members.length > 0) for (const v of await redis.mget(...members.map(idsKey))) ids += v ? 1 : 0;
      } while (cursor !== '0');
      if (ids !== MEMBERS) throw new Error(`raw read found ${ids} of ${MEMBERS} profiles' ids`);
      return performance.now() - started;
    };
    const baselineBeforeMs = await rawRead();

    const results = [];
    for (const query of ['format=unformatted', 'format=formatted', 'format=single_column&idType=email']) {
      const before = memKb(child.pid, 'VmRSS');
      fs.writeFileSync(`/proc/${child.pid}/clear_refs`, '5'); // resets VmHWM (peak RSS)
      t = performance.now();
      // node:http, not fetch: its WHATWG stream cost the client a core-second
      // per export on a machine the export shares (curl or a browser would not).
      const res = await new Promise((resolve, reject) =>
        http
          .get(
            `${base}/spaces/${spaceId}/audiences/${audience.id}/csv?${query}`,
            { headers: { authorization: `Bearer ${TOKEN}` } },
            resolve,
          )
          .on('error', reject),
      );
      if (res.statusCode !== 200) throw new Error(`CSV export answered ${res.statusCode}`);
      let bytes = 0;
      let lines = 0;
      for await (const chunk of res) {
        bytes += chunk.length;
        for (let k = chunk.indexOf(10); k !== -1; k = chunk.indexOf(10, k + 1)) lines++;
      }
      const ms = performance.now() - t;
      const peakExtraMb = (memKb(child.pid, 'VmHWM') - before) / 1024;
      results.push({ query, ms, bytes, rows: lines - 1, peakExtraMb });
      process.stderr.write(
        `[csv] ${query}: ${lines - 1} rows, ${(bytes / 1e6).toFixed(1)} MB in ${(ms / 1000).toFixed(2)} s, peak +${peakExtraMb.toFixed(0)} MB\n`,
      );
    }
    const baselineAfterMs = await rawRead();
    const baselineMs = (baselineBeforeMs + baselineAfterMs) / 2;
    process.stderr.write(
      `[csv] baseline raw Redis read: ${(baselineBeforeMs / 1000).toFixed(2)} s before, ${(baselineAfterMs / 1000).toFixed(2)} s after the exports\n`,
    );

    const lines = [
      '## CSV export (issue 8)',
      '',
      `Command: \`npm run bench -- csv\` (${MEMBERS.toLocaleString('en')} members, 3 external ids each: user_id, email, anonymous_id). Measured ${new Date().toISOString().slice(0, 10)} on this 2-core machine with Kafka, Apicurio and Redis on it.`,
      'Baseline: SSCAN of the member set plus one MGET of the stored identifiers per 5,000 members (the same keys the export reads), no formatting, no HTTP.',
      '',
      '| format | rows | MB | seconds | ratio to raw Redis read | peak extra RSS (MB) |',
      '|---|---|---|---|---|---|',
      ...results.map(
        (r) =>
          `| ${r.query} | ${r.rows} | ${(r.bytes / 1e6).toFixed(1)} | ${(r.ms / 1000).toFixed(2)} | ${(r.ms / baselineMs).toFixed(2)}x | ${r.peakExtraMb.toFixed(0)} |`,
      ),
      `| raw Redis read (baseline: mean of ${(baselineBeforeMs / 1000).toFixed(2)} s before and ${(baselineAfterMs / 1000).toFixed(2)} s after) | ${MEMBERS} | - | ${(baselineMs / 1000).toFixed(2)} | 1.00x | - |`,
      '',
      'Targets: under 10 s and under 150 MB extra memory for 1M members, <= 1.5x the raw read.',
      '',
      'How the export keeps up with the raw read: every format reads Redis once (snapshot COPY, then SSCAN on its own connection and one MGET per page, up to 3 pages queued so Redis never waits for Node); rows are rendered from the stored identifier bytes into reused page buffers (no string per row). The formatted header names every indexed column before the first row, so that format spools its pre-rendered rows to a temporary file while it learns the columns, then copies and pads them. The export also pays for the snapshot COPY (about 0.4 s of Redis time per million members) and the HTTP transfer, which the raw read does not. The peak memory of the first export in a fresh process includes the heap growing to its working size.',
    ];
    writeResults('RESULTS-csv.md', lines);
    process.stdout.write(`${lines.join('\n')}\n`);

    await dropKeys(env.REDIS_URL, prefix);
  } finally {
    child.kill('SIGTERM');
    redis.disconnect();
    // The control plane created the run's topics (engage.config and the rest): leftovers slow every later run.
    await dropTopics(createKafka({ brokers: env.KAFKA_BROKERS.split(','), clientId: 'bench-csv' }, { log: silentLogger() }), prefix);
  }
}

await main();
