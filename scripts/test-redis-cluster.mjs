#!/usr/bin/env node
// The Redis-Cluster test run: starts a local 3-master Redis Cluster (and
// Kafka and the schema registry when none is given) with scripts/infra.mjs,
// runs the integration tests whose Redis use is Cluster-relevant against it
// (REDIS_URL=redis-cluster://...), then stops what it started. Exits with
// jest's status. Expects a built tree (`npm run build`): some tests start
// the services' processes from dist/.
//
//   node scripts/test-redis-cluster.mjs [extra jest args]
//
// .ci/run calls it after `npm test`. To add a test: append it to TESTS.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { down, up } from './infra.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// Each touches keys of many slots (several profiles, lists, connections,
// destinations) or runs scripts over several keys of one tag.
export const TESTS = [
  'libs/redis/src/lock.int.test.ts',
  'libs/profile-store/src/atomic-writes.int.test.ts',
  'libs/profile-store/src/change-committer.int.test.ts',
  'libs/profile-store/src/profile-state.repository.int.test.ts',
  'services/dispatcher/src/dispatch-keys.int.test.ts',
  'services/dispatcher/src/handover.int.test.ts',
  'services/dispatcher/src/list-buffer.int.test.ts',
  'services/dispatcher/src/retry-schedule.int.test.ts',
  'services/dispatcher/src/dispatch.step.int.test.ts',
  'services/control-plane/src/status.reader.int.test.ts',
  'libs/config-store/src/history.int.test.ts',
  'services/dispatcher/src/delivery-status.int.test.ts',
  'services/control-plane/src/history.int.test.ts',
  'services/identity-resolver/src/identity-graph.int.test.ts',
  'services/batch-scheduler/src/journey.runner.int.test.ts',
  'test/evaluation-backfill-history.test.ts',
  'test/fleet.e2e.test.ts',
  // The Profile API and the audience CSV export (Segment's three formats) over a Cluster.
  'test/read-side.test.ts',
  'test/journeys.test.ts',
];

const started = Date.now();
const { env, started: ours } = await up({ redisCluster: true }).catch((err) => {
  process.stderr.write(`[cluster-tests] could not start the infrastructure: ${err.message}\n`);
  process.exit(1);
});
process.stderr.write(`[cluster-tests] REDIS_URL=${env.REDIS_URL}; running ${TESTS.length} test files\n`);
let status = 1;
try {
  // --runTestsByPath: exactly these files (no pattern matching); the global
  // setup uses the environment given and starts nothing.
  const r = spawnSync('npx', ['jest', '--ci', '--selectProjects', 'integration', '--runTestsByPath', ...TESTS, ...process.argv.slice(2)], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
  status = r.status ?? 1;
} finally {
  await down(ours);
}
process.stderr.write(`[cluster-tests] ${status === 0 ? 'passed' : 'FAILED'} in ${Math.round((Date.now() - started) / 1000)} s\n`);
process.exit(status);
