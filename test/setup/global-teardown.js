// Stops only what the global setup started (set ENGAGE_KEEP_INFRA=1 to keep
// local processes running between test runs during development).
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const { dropRunArtifacts } = require('./drop-run-artifacts');

module.exports = async function globalTeardown() {
  const { ENGAGE_TEST_NAMES_FILE, KAFKA_BROKERS, REDIS_URL } = process.env;
  if (ENGAGE_TEST_NAMES_FILE && KAFKA_BROKERS && REDIS_URL && process.env.ENGAGE_KEEP_TEST_DATA !== '1')
    await dropRunArtifacts({ namesFile: ENGAGE_TEST_NAMES_FILE, kafkaBrokers: KAFKA_BROKERS, redisUrl: REDIS_URL });
  for (const c of globalThis.__ENGAGE_CONTAINERS__ ?? []) await c.stop();
  if (globalThis.__ENGAGE_NETWORK__) await globalThis.__ENGAGE_NETWORK__.stop();
  const started = globalThis.__ENGAGE_STARTED__ ?? [];
  if (started.length > 0 && process.env.ENGAGE_KEEP_INFRA !== '1') {
    const infra = await import(pathToFileURL(path.resolve(__dirname, '../../scripts/infra.mjs')).href);
    await infra.down(started);
  }
};
