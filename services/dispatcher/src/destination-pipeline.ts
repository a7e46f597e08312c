// Everything one destination's delivery needs, under that destination's own
// consumer groups: the changes consumer (live calls, list buffering, and the
// re-syncs on new ids the evaluator emits in order with the other changes),
// the initial sync, list flushes and the loop that tries scheduled retries when due.
// A deployed dispatcher runs one (DESTINATION_ID=<id>); the all-destinations
// mode (DESTINATION_ID=*, `npm start`) runs one per destination in one process
// (AllDestinations), so a throttled or failing destination only lags its own
// groups there too, as DESIGN.md promises.
import type { ConfigStore } from '@engage/config-store';
import { BatchConsumer, type DeadLetterWriter, type Kafka } from '@engage/kafka';
import type { Logger } from '@engage/logging';
import { ProfileStateRepository } from '@engage/profile-store';
import type { RedisClient } from '@engage/redis';
import type { ComputationChange, SchemaCodec } from '@engage/schemas';
import { intervalJob, type Component } from '@engage/service';
import { listAdapters } from './adapters/list-adapters';
import type { DeliveryStatus } from './delivery-status';
import type { DeliveryService } from './delivery.service';
import { DispatchStep } from './dispatch.step';
import { Handover } from './handover';
import { FullAudienceSync } from './full-audience-sync';
import { ListBuffer } from './list-buffer';
import { ResyncJob } from './resync.job';
import { RetryLoop } from './retry-loop';
import { RetrySchedule } from './retry-schedule';
import { SentCalls } from './sent-calls';

export interface DestinationPipelineConfig {
  destinationId: string;
  topicPrefix: string;
  keyPrefix: string;
  changesTopic: string;
  chunkSize: number;
  sessionTimeoutMs?: number;
  /** BatchConsumerConfig.commitIntervalMs (KAFKA_COMMIT_INTERVAL_MS). */
  commitIntervalMs?: number;
  dedupeTtlSeconds: number;
  concurrency: number;
  /** How often connections are checked for a pending initial sync, ms. */
  initialSyncEveryMs: number;
  /** How often list batches are checked for being due, ms. */
  listTickMs: number;
  /** How often the retry schedule is checked for due calls, ms. */
  retryPollMs: number;
  /** How long a due call taken by a replica is its own before another may take it, ms. */
  retryLeaseMs: number;
}

export interface DestinationPipelineDeps {
  kafka: Kafka;
  codec: SchemaCodec;
  redis: RedisClient;
  store: ConfigStore;
  delivery: DeliveryService;
  status: DeliveryStatus;
  deadLetters: DeadLetterWriter;
  log: Logger;
}

/** The consumer group of a destination's changes: the same whichever mode serves it, so offsets carry over. */
const dispatcherGroup = (topicPrefix: string, destinationId: string) => `${topicPrefix}dispatcher-${destinationId}`;

export class DestinationPipeline implements Component {
  readonly name: string;
  readonly destinationId: string;
  private readonly lists: ListBuffer;
  private readonly resync: ResyncJob;
  private readonly retries: RetryLoop;
  private readonly changesConsumer: BatchConsumer<ComputationChange>;
  /** Per destination, so one destination's slow initial sync or flush never holds up another's. */
  private readonly jobs: Component[];

  constructor(config: DestinationPipelineConfig, deps: DestinationPipelineDeps) {
    const { destinationId, keyPrefix } = config;
    this.destinationId = destinationId;
    this.name = `destination-${destinationId}`;
    const log = deps.log.child({ destinationId });
    const profiles = new ProfileStateRepository({ keyPrefix }, { redis: deps.redis });
    this.lists = new ListBuffer(
      { keyPrefix, destinationId },
      {
        store: deps.store,
        redis: deps.redis,
        adapters: listAdapters({ delivery: deps.delivery }),
        status: deps.status,
        deadLetters: deps.deadLetters,
        log: log.child({ component: 'list-buffer' }),
        fullSync: new FullAudienceSync({
          store: deps.store,
          profiles,
          delivery: deps.delivery,
          status: deps.status,
          log: log.child({ component: 'full-audience-sync' }),
        }),
      },
    );
    const sent = new SentCalls({ keyPrefix, ttlSeconds: config.dedupeTtlSeconds }, { redis: deps.redis });
    const schedule = new RetrySchedule({ keyPrefix, destinationId }, { redis: deps.redis });
    const handover = new Handover({ keyPrefix }, { redis: deps.redis });
    const step = new DispatchStep(
      { destinationId, keyPrefix, concurrency: config.concurrency },
      {
        sent,
        schedule,
        handover,
        store: deps.store,
        delivery: deps.delivery,
        status: deps.status,
        lists: this.lists,
        redis: deps.redis,
        log: log.child({ component: 'dispatch' }),
        profiles,
      },
    );
    this.resync = new ResyncJob(
      { keyPrefix, destinationId },
      {
        store: deps.store,
        profiles,
        step,
        status: deps.status,
        redis: deps.redis,
        deadLetters: deps.deadLetters,
        handover,
        log: log.child({ component: 'resync' }),
      },
    );
    const retries = (this.retries = new RetryLoop(
      // One due call per profile at a time; as many profiles at once as the live path delivers.
      { destinationId, batchSize: config.concurrency, leaseMs: config.retryLeaseMs, maxRounds: 50 },
      {
        store: deps.store,
        schedule,
        delivery: deps.delivery,
        sent,
        status: deps.status,
        deadLetters: deps.deadLetters,
        log: log.child({ component: 'retry-loop' }),
      },
    ));
    // One consumer group per destination: a slow destination only lags its own group.
    const group = dispatcherGroup(config.topicPrefix, destinationId);
    this.changesConsumer = new BatchConsumer<ComputationChange>(
      {
        groupId: group,
        topics: [config.changesTopic],
        fromBeginning: true,
        chunkSize: config.chunkSize,
        sessionTimeoutMs: config.sessionTimeoutMs,
        commitIntervalMs: config.commitIntervalMs,
        partitionsConsumedConcurrently: 2,
      },
      {
        kafka: deps.kafka,
        log: log.child({ component: 'changes-consumer' }),
        step: 'deliver',
        deadLetters: deps.deadLetters,
        decode: (m) => deps.codec.decode(m.value),
        handle: (ms, ctx) => step.handle(ms, ctx),
      },
    );
    this.jobs = [
      intervalJob('initial-sync-loop', config.initialSyncEveryMs, () => this.resync.syncNewConnections(), { log }),
      intervalJob('list-flush-loop', config.listTickMs, () => this.lists.flushDue(), { log }),
      intervalJob('retry-loop', config.retryPollMs, () => retries.run(), { log }),
    ];
  }

  async start(): Promise<void> {
    await this.changesConsumer.start();
    for (const job of this.jobs) await job.start();
  }

  /** Idempotent: the jobs finish their run in flight, each consumer its chunk (and commits). */
  async stop(): Promise<void> {
    await Promise.all(this.jobs.map((job) => job.stop()));
    await this.changesConsumer.stop();
  }

  /** The destination was deleted: stopped, and the calls still waiting for a retry go to the DLQ (not left in Redis). */
  async retire(): Promise<number> {
    await this.stop();
    return this.retries.abandonAll(`destination ${this.destinationId} was deleted while the call waited for its retry`);
  }

  healthcheck(): { ok: boolean; detail?: string } {
    const parts: Array<{ name: string; healthcheck?: () => { ok: boolean; detail?: string } }> = [
      { name: 'changes-consumer', healthcheck: () => this.changesConsumer.healthcheck() },
      ...this.jobs,
    ];
    for (const part of parts) {
      const h = part.healthcheck?.() ?? { ok: true };
      if (!h.ok) return { ok: false, detail: `destination ${this.destinationId}, ${part.name}: ${h.detail ?? 'unhealthy'}` };
    }
    return { ok: true };
  }
}

/**
 * DESTINATION_ID=*: one DestinationPipeline per destination of the
 * configuration, started as destinations appear and stopped when they are
 * deleted. Reconciliation is serialised, so a burst of config changes never
 * starts a destination twice.
 */
/** After a pipeline failed to start (Kafka unreachable, say), when to try again, ms. */
const START_RETRY_MS = 5000;

export class AllDestinations implements Component {
  readonly name = 'all-destinations';
  private readonly pipelines = new Map<string, DestinationPipeline>();
  private reconciling: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | null = null;
  private stopped = false;

  constructor(
    private readonly deps: {
      store: Pick<ConfigStore, 'list' | 'onChange'>;
      create: (destinationId: string) => DestinationPipeline;
      log: Logger;
    },
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = this.deps.store.onChange((object) => {
      if (object.kind === 'destination') void this.reconcile();
    });
    await this.reconcile();
  }

  /** Brings the running pipelines in line with the configuration's destinations. */
  reconcile(): Promise<void> {
    this.reconciling = this.reconciling.then(
      () => this.reconcileNow(),
      () => this.reconcileNow(),
    );
    return this.reconciling;
  }

  private async reconcileNow(): Promise<void> {
    if (this.stopped) return;
    const wanted = new Set(this.deps.store.list('destination').map((d) => d.id));
    for (const [id, pipeline] of this.pipelines) {
      if (wanted.has(id)) continue;
      this.pipelines.delete(id);
      const abandoned = await pipeline.retire();
      this.deps.log.info({ destinationId: id, abandonedRetries: abandoned }, 'destination_pipeline_stopped');
    }
    for (const id of wanted) {
      if (this.pipelines.has(id)) continue;
      const pipeline = this.deps.create(id);
      try {
        await pipeline.start();
      } catch (err) {
        // Not kept: tried again by the next reconciliation, a config change or this retry.
        this.deps.log.error({ err, destinationId: id }, 'destination_pipeline_start_failed');
        await pipeline.stop().catch(() => undefined);
        setTimeout(() => void this.reconcile(), START_RETRY_MS).unref();
        continue;
      }
      this.pipelines.set(id, pipeline);
      this.deps.log.info({ destinationId: id }, 'destination_pipeline_started');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    await this.reconciling.catch(() => undefined);
    const all = [...this.pipelines.values()];
    this.pipelines.clear();
    await Promise.all(all.map((p) => p.stop()));
  }

  healthcheck(): { ok: boolean; detail?: string } {
    for (const p of this.pipelines.values()) {
      const h = p.healthcheck();
      if (!h.ok) return h;
    }
    return { ok: true };
  }
}
