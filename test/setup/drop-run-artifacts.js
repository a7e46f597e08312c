// Removes what this test run left on the broker and in Redis: the topics and
// keys named after a uniqueName() of this run (libs/testing records each one
// in ENGAGE_TEST_NAMES_FILE). On a long-lived development broker, hundreds of
// leftover topics made Kafka measurably slower (bench/RESULTS-identity.md,
// 2026-12-02). Names carry random bytes, so a concurrent run's topics and keys,
// or anything else on the servers, are never touched. Best effort: a failure
// is reported, never fails the run.
const fs = require('node:fs');

async function dropRunArtifacts({ namesFile, kafkaBrokers, redisUrl, log = (m) => process.stderr.write(`${m}\n`) }) {
  let names;
  try {
    names = [...new Set(fs.readFileSync(namesFile, 'utf8').split('\n').filter(Boolean))];
  } catch {
    return; // nothing recorded
  }
  if (names.length === 0) return;
  const ours = (text) => names.some((n) => text.startsWith(n));
  const summary = [];
  try {
    const { Kafka, logLevel } = require('kafkajs');
    const admin = new Kafka({ brokers: kafkaBrokers.split(','), clientId: 'test-teardown', logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const topics = (await admin.listTopics()).filter(ours);
      for (let i = 0; i < topics.length; i += 100) await admin.deleteTopics({ topics: topics.slice(i, i + 100), timeout: 30000 });
      summary.push(`${topics.length} topics`);
    } finally {
      await admin.disconnect();
    }
  } catch (err) {
    log(`[teardown] could not delete this run's topics: ${err.message}`);
  }
  try {
    const Redis = require('ioredis');
    // A Redis Cluster (`redis-cluster://h1:p1,h2:p2`): SCAN sees one node, so every
    // master is scanned, and its keys are unlinked one by one (they span slots).
    const cluster = redisUrl.startsWith('redis-cluster://');
    const redis = cluster
      ? new Redis.Cluster(
          redisUrl
            .slice('redis-cluster://'.length)
            .split(',')
            .map((hp) => ({ host: hp.split(':')[0], port: Number(hp.split(':')[1] ?? 6379) })),
          { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 1 } },
        )
      : new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    let dropped = 0;
    for (const node of cluster ? redis.nodes('master') : [redis]) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'COUNT', 5000);
        cursor = next;
        const mine = keys.filter(ours);
        if (mine.length > 0)
          dropped += cluster
            ? (await Promise.all(mine.map((k) => redis.unlink(k)))).reduce((a, b) => a + b, 0)
            : await redis.unlink(...mine);
      } while (cursor !== '0');
    }
    redis.disconnect();
    summary.push(`${dropped} Redis keys`);
  } catch (err) {
    log(`[teardown] could not delete this run's Redis keys: ${err.message}`);
  }
  fs.rmSync(namesFile, { force: true });
  log(`[teardown] removed what this run created: ${summary.join(', ')}`);
}

module.exports = { dropRunArtifacts };
