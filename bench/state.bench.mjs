#!/usr/bin/env node
// The CPU side of a profile's save and load, without IO: the state document
// every chunk writes per profile it touched (encodeState + MessagePack) and
// reads for a profile it does not hold (unpack + decodeState), on profiles
// built by the engine from the e2e bench's space (bench/space.mjs, 20
// audiences and 10 computed traits) and event mix, 10 events each.
// Baseline in the same run: the readable JSON form of the same profiles
// (JSON.stringify / JSON.parse of the profile without its history), what the
// store wrote before the compact document. With STATE_BASE_DIR=<a second git
// worktree, built> the same profiles also go through that build's codec
// (e.g. the state format before a change), alternating.
//
//   npm run bench -- state          (STATE_PROFILES=2000 STATE_RUNS=5 by default)
//
// Why a bench of its own: the e2e bench's run-to-run noise (~10-15% on this
// machine) hides changes of a few percent of the evaluator's CPU; this one
// repeats the same work on the same objects and reports medians.
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ROOT, writeResults } from './harness.mjs';
import { AUDIENCES, CATEGORIES, NAMES, TRAITS } from './space.mjs';

const require = createRequire(import.meta.url);
const PROFILES = Number(process.env.STATE_PROFILES ?? 2_000);
const RUNS = Number(process.env.STATE_RUNS ?? 5);
const BASE_DIR = process.env.STATE_BASE_DIR;

const engine = require(path.join(ROOT, 'libs/engine/dist/index.js'));
const codecs = [{ name: 'this build', codec: require(path.join(ROOT, 'libs/profile-store/dist/state-codec.js')) }];
if (BASE_DIR) codecs.push({ name: `base (${BASE_DIR})`, codec: require(path.join(BASE_DIR, 'libs/profile-store/dist/state-codec.js')) });

// The space, compiled as the registry compiles it (keys as the control plane derives them from names).
const keyOf = (name) => name.toLowerCase().replace(/[^a-z0-9]+/g, '_');
const defs = [
  ...TRAITS.map(([name, query], i) => ({
    id: `tra_${String(i).padStart(27, '0')}`,
    key: keyOf(name),
    class: 'trait',
    query,
    type: 'trait',
  })),
  ...AUDIENCES.map((query, i) => ({
    id: `aud_${String(i).padStart(27, '0')}`,
    key: `audience_${i + 1}`,
    class: 'audience',
    query,
    type: 'users',
  })),
];
const keys = new Set(defs.map((d) => d.key));
const ordered = engine.dependencyOrder(
  defs.map((d) =>
    engine.compileComputation(
      {
        id: d.id,
        key: d.key,
        class: d.class,
        ast: engine.parseQuery(d.query, { type: d.type }),
        definitionVersion: 1,
        countsEventsFrom: 0,
      },
      keys,
    ),
  ),
);
const slotById = new Map(defs.map((d, i) => [d.id, i + 1]));
const idBySlot = new Map(defs.map((d, i) => [i + 1, d.id]));
const slotOf = (id) => slotById.get(id);
const idOf = (slot) => idBySlot.get(slot);

// Profiles as the evaluator holds them after 10 events each (the e2e bench's mix and properties).
const now = Date.now();
let seq = 0;
const profiles = [];
for (let p = 0; p < PROFILES; p++) {
  const profile = {
    spaceId: 'spa_bench',
    profileId: `pro_${p}`,
    events: [],
    traits: {},
    values: {},
    userId: `u_${p}`,
    anonymousId: null,
    externalIds: [{ type: 'user_id', id: `u_${p}` }],
  };
  for (let i = 0; i < 10; i++) {
    const name = NAMES[(p + i * 3) % NAMES.length];
    const at = now - 20 * 86_400_000 + (p * 10 + i) * 1000;
    const isPage = name === 'Page Viewed';
    seq++;
    const event = {
      type: isPage ? 'page' : 'track',
      event: isPage ? undefined : name,
      name: isPage ? 'Home' : undefined,
      timestamp: at,
      arrivedAt: at,
      sourceId: 'src_bench',
      messageId: `m-${seq}`,
      properties: { revenue: (seq * 37) % 300, category: CATEGORIES[seq % CATEGORIES.length], price: (seq * 13) % 120 },
      traits: {},
      context: {},
    };
    profile.metadata ??= {
      createdAt: at,
      updatedAt: at,
      firstMessageId: event.messageId,
      firstSourceId: 'src_bench',
      lastMessageId: event.messageId,
      lastSourceId: 'src_bench',
    };
    engine.applyEvent(profile, event, ordered, { maxEvents: 200, now: at });
  }
  profile.events = []; // stored apart (the :hist list): not part of the document
  profile.historyLength = 10;
  profile.changeSeq = 10;
  profiles.push(profile);
}

/** CPU µs per profile of `fn` over every profile (the process is single-threaded: CPU time is its work). */
function perProfile(fn) {
  const start = process.cpuUsage();
  for (const p of profiles) fn(p);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / profiles.length;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const measures = new Map();
const record = (name, us) => (measures.get(name) ?? measures.set(name, []).get(name)).push(us);
const packed = codecs.map(({ codec }) => profiles.map((p) => codec.packState(codec.encodeState(p, slotOf))));
const json = profiles.map((p) => JSON.stringify(p));
// Warm-up, then RUNS rounds, each measure once per round, alternating.
for (let run = -1; run < RUNS; run++) {
  const take = (name, fn) => {
    const us = perProfile(fn);
    if (run >= 0) record(name, us);
  };
  take('JSON.stringify (baseline)', (p) => JSON.stringify(p));
  codecs.forEach(({ name, codec }) => take(`save: encodeState + pack, ${name}`, (p) => codec.packState(codec.encodeState(p, slotOf))));
  let i = 0;
  take('JSON.parse (baseline)', () => JSON.parse(json[i++]));
  codecs.forEach(({ name, codec }, c) => {
    let j = 0;
    take(`load: unpack + decodeState, ${name}`, (p) => codec.decodeState(codec.unpackState(packed[c][j++]), p, idOf));
  });
}

const bytes = (arr) => median(arr.map((b) => b.length));
const rows = [...measures].map(([name, xs]) => {
  const saveSide = name.startsWith('save') || name.startsWith('JSON.stringify');
  const base = median(measures.get(saveSide ? 'JSON.stringify (baseline)' : 'JSON.parse (baseline)'));
  return `| ${name} | ${median(xs).toFixed(2)} µs | ${(median(xs) / base).toFixed(2)}x | ${xs.map((x) => x.toFixed(2)).join(' / ')} |`;
});
const sizes = codecs.map(({ name }, c) => `${name} ${bytes(packed[c])} B`).join(', ');
const lines = [
  '## State document codec (issue 18)',
  '',
  `Command: \`npm run bench -- state\` (STATE_PROFILES=${PROFILES}, STATE_RUNS=${RUNS}${BASE_DIR ? `, STATE_BASE_DIR=${BASE_DIR}` : ''}). Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), Node ${process.version}, 1-minute load ${os.loadavg()[0].toFixed(1)}.`,
  'Profiles built by the engine from the e2e space (20 audiences, 10 computed traits) with 10 events each; CPU per profile, median of the runs; the baseline is the readable JSON form of the same profiles, same run.',
  '',
  '| measure | CPU per profile | vs JSON | runs |',
  '| --- | --- | --- | --- |',
  ...rows,
  '',
  `Document size, median: ${sizes}; readable JSON ${median(json.map((s) => Buffer.byteLength(s)))} B.`,
];
process.stdout.write(lines.join('\n') + '\n');
writeResults('RESULTS-state.md', lines);
