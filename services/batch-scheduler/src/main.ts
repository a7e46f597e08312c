// Window expiry, backfills, batch computations -> engage.computations.changes.
// The only place that reads process.env: parse config, wire, run.
import { parseConfig } from '@engage/config';
import { ConfigStore } from '@engage/config-store';
import { ChangeCommitter, ComputationsRegistry, ProfileStateRepository } from '@engage/profile-store';
import { createRuntime, intervalJob, opsComponent } from '@engage/service';
import { configSchema } from './config';
import { ExpiryJob } from './expiry.job';
import { RecomputeJob } from './recompute.job';

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
  { batchSize: config.SCHEDULER_BATCH_SIZE, leaseMs: config.SCHEDULER_LEASE_MS },
  { profiles, all, realtime, committer },
);
const recompute = new RecomputeJob(
  { keyPrefix: config.REDIS_KEY_PREFIX, batchIntervalMs: config.BATCH_INTERVAL_MS, leaseMs: config.SCHEDULER_LEASE_MS },
  { store, realtime, batch, all, profiles, committer, redis },
);

runtime.service.add(
  ...runtime.infrastructure,
  { name: 'config-store', start: () => store.start(), stop: () => store.stop() },
  intervalJob(
    'expiry-loop',
    config.SCHEDULER_TICK_MS,
    async () => {
      // Drain what is due now, a batch at a time.
      while ((await expiry.tick()) === config.SCHEDULER_BATCH_SIZE);
    },
    { log },
  ),
  intervalJob('recompute-loop', Math.max(config.SCHEDULER_TICK_MS, 2000), () => recompute.tick(), { log }),
  opsComponent(runtime, { port: config.OPS_PORT, host: config.HTTP_HOST }),
);
void runtime.service.run();
