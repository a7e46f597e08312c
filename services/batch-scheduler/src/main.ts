// Window expiry, backfills, batch computations -> engage.computations.changes.
// The only place that reads process.env: parse config, wire, run.
import { parseConfig } from '@engage/config';
import { ConfigStore, HistoryStore } from '@engage/config-store';
import { ChangeCommitter, ComputationsRegistry, ProfileStateRepository } from '@engage/profile-store';
import { BatchConsumer, DeadLetterWriter, deadLetterTopicFor, ensureTopics } from '@engage/kafka';
import type { ComputationChange, ResolvedEvent } from '@engage/schemas';
import { JourneyRunner } from './journey.runner';
import { BackfillPass } from './backfill.pass';
import { HistoryReplay } from './history-replay';
import { IdentityAliases } from './identity-aliases';
import { createRuntime, intervalJob, opsComponent } from '@engage/service';
import { configSchema } from './config';
import { ExpiryJob } from './expiry.job';
import { RecomputeJob } from './recompute.job';
import { SizeHistoryJob } from './size-history.job';

const config = parseConfig(configSchema, process.env);
const runtime = createRuntime('batch-scheduler', config);
const { kafka, codec, producer, redis, log, topics } = runtime;

const store = new ConfigStore(
  { topic: topics.config.name, groupPrefix: 'batch-scheduler' },
  { kafka, codec, log: log.child({ component: 'config-store' }) },
);
const onError = (err: unknown, id: string) => log.error({ err, computationId: id }, 'computation_unparsable');
const realtime = new ComputationsRegistry({ computeMode: 'realtime' }, { store, onError });
const batch = new ComputationsRegistry({ computeMode: 'batch' }, { store, onError });
const all = new ComputationsRegistry({ computeMode: 'all' }, { store, onError });
const profiles = new ProfileStateRepository({ keyPrefix: config.REDIS_KEY_PREFIX, lockTtlMs: config.PROFILE_LOCK_TTL_MS }, { redis });
const committer = new ChangeCommitter({ changesTopic: topics.computationsChanges.name }, { producer, codec, profiles });
const expiry = new ExpiryJob(
  { batchSize: config.SCHEDULER_BATCH_SIZE, leaseMs: config.SCHEDULER_LEASE_MS, lookaheadMs: config.SCHEDULER_EXPIRY_LOOKAHEAD_MS },
  { profiles, all, realtime, committer },
);
const holdKey = config.BACKFILL_TEST_HOLD_KEY;
const backfill = new BackfillPass({
  all,
  realtime,
  profiles,
  committer,
  redis,
  replay: () =>
    new HistoryReplay(
      { topic: topics.eventsResolved.name, groupPrefix: `${config.TOPIC_PREFIX}batch-scheduler-` },
      { kafka, decode: (v) => codec.decode<ResolvedEvent>(v!), log: log.child({ component: 'history-replay' }) },
    ),
  aliases: () => new IdentityAliases({ keyPrefix: config.REDIS_KEY_PREFIX }, { redis }),
  beforeWrite: holdKey
    ? async () => {
        while ((await redis.exists(holdKey)) === 1) await new Promise((r) => setTimeout(r, 100));
      }
    : undefined,
});
const recompute = new RecomputeJob(
  {
    keyPrefix: config.REDIS_KEY_PREFIX,
    batchIntervalMs: config.BATCH_INTERVAL_MS,
    leaseMs: config.SCHEDULER_LEASE_MS,
    cutGraceMs: config.BACKFILL_CUT_GRACE_MS,
  },
  { store, realtime, batch, all, profiles, committer, redis, backfill },
);

// Audience sizes over time (the console's chart): every replica samples, points keyed by interval.
const sizeHistory = new SizeHistoryJob(
  { intervalMs: config.SIZE_HISTORY_INTERVAL_MS },
  {
    store,
    sizes: profiles,
    history: new HistoryStore({ keyPrefix: config.REDIS_KEY_PREFIX, sizeIntervalMs: config.SIZE_HISTORY_INTERVAL_MS }, { redis }),
  },
);

// Journeys: entries from engage.computations.changes, waits on timers (journey.runner.ts).
const journeys = new JourneyRunner(
  {
    keyPrefix: config.REDIS_KEY_PREFIX,
    changesTopic: topics.computationsChanges.name,
    batchSize: config.JOURNEY_BATCH_SIZE,
    leaseMs: config.SCHEDULER_LEASE_MS,
  },
  { store, redis, producer, codec, profiles, log: log.child({ component: 'journeys' }) },
);
const journeyDlq = deadLetterTopicFor(topics.computationsChanges);
const journeyEntries = new BatchConsumer<ComputationChange>(
  // From the beginning: a new group that started at the end would miss the
  // entries made while it joins (a journey published and entered at once).
  // Entries made before a journey's first publish are skipped by their
  // emitted_at (JourneyRunner.handle), so reading old records enters nobody.
  {
    groupId: `${config.TOPIC_PREFIX}batch-scheduler-journeys`,
    topics: [topics.computationsChanges.name],
    chunkSize: 500,
    fromBeginning: true,
    commitIntervalMs: config.KAFKA_COMMIT_INTERVAL_MS,
  },
  {
    kafka,
    log: log.child({ component: 'journey-entries' }),
    step: 'journey-entry',
    deadLetters: new DeadLetterWriter({ topic: journeyDlq.name }, { producer }),
    decode: (m) => codec.decode(m.value),
    handle: (ms) => journeys.handle(ms),
  },
);

// The history backfills replay: the retention of engage.events.resolved is ours to keep.
// NOTE: AlterConfigs (not incremental) resets the topic's other settings to
// the broker's defaults: it is sent the topic's whole config from the registry
// (min.insync.replicas and the rest), retention.ms replaced.
const retention = {
  name: 'events-resolved-retention',
  start: async () => {
    if (config.EVENTS_RESOLVED_RETENTION_MS === '') return;
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: 2, // kafkajs ConfigResourceTypes.TOPIC
            name: topics.eventsResolved.name,
            configEntries: Object.entries({ ...topics.eventsResolved.config, 'retention.ms': config.EVENTS_RESOLVED_RETENTION_MS }).map(
              ([name, value]) => ({ name, value: String(value) }),
            ),
          },
        ],
      });
    } finally {
      await admin.disconnect();
    }
  },
  stop: async () => {},
};

runtime.service.add(
  ...runtime.infrastructure,
  retention,
  { name: 'config-store', start: () => store.start(), stop: () => store.stop() },
  { name: 'journey-dlq-topic', start: () => ensureTopics(kafka, [journeyDlq]), stop: async () => {} },
  { name: 'journey-entries', start: () => journeyEntries.start(), stop: () => journeyEntries.stop() },
  intervalJob('journey-loop', config.JOURNEY_POLL_MS, () => journeys.tick(), { log }),
  // Each tick prepares what is due within the lookahead and commits everything due now.
  intervalJob('expiry-loop', config.SCHEDULER_EXPIRY_POLL_MS, () => expiry.tick(), { log }),
  intervalJob('size-history', sizeHistory.everyMs, () => sizeHistory.tick(), { log }),
  intervalJob('recompute-loop', Math.max(config.SCHEDULER_TICK_MS, 2000), () => recompute.tick(), { log }),
  opsComponent(runtime, { port: config.OPS_PORT, host: config.HTTP_HOST }),
);
void runtime.service.run();
