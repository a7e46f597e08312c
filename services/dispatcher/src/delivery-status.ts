// Delivery counts per destination (sent, retried, failed, throttled,
// dead-lettered, last error) as Prometheus metrics and in Redis, where the
// control plane reads them for the destination's Status and the connection's
// Sync status.
//
// Redis layout (written through @engage/config-store's StatusStore, its owner; prefix = REDIS_KEY_PREFIX):
//   <prefix>status:destination:<destinationId>  HASH
//     sent, retried, failed, throttled, dead_lettered   counters (HINCRBY), per call/request
//     lastSentAt, lastErrorAt                           ms since epoch
//     lastError                                         text of the latest failure or retry reason (readers show it
//                                                       only while no call was sent after it: lastErrorAt >= lastSentAt)
//     credentialsRefusedAt, credentialsError            the vendor refused our credentials (401/403): flagged
//                                                       while no call was sent after it
//   <prefix>status:connection:<connectionId>    HASH (what StatusReader.connections shows as syncStatus)
//     state        Syncing | Synced | Partially Synced | Failed
//     lastSyncAt   ms since epoch of the last finished sync (initial sync or list flush)
//     matched, sent, failed   counters over the connection's syncs
//     lastError    text, the latest sync's (a sync finished without an error clears it)
//   <prefix>hist:delivery:{<destinationId>}:...  sent, failed, throttled, dead_lettered per minute and
//                                                per hour, for the console's chart (keys and buckets:
//                                                @engage/config-store history.ts), written in the same flush
// Metrics: engage_dispatch_calls_total{destination, outcome}.
import {
  bucketStart,
  DELIVERY_OUTCOMES,
  HISTORY_TIERS,
  HistoryStore,
  StatusStore,
  type ConnectionSync,
  type DeliveryOutcome,
  type DestinationCounter,
} from '@engage/config-store';
import type { RedisClient } from '@engage/redis';
import { Counter, type Registry } from 'prom-client';

export type DeliveryCount = DestinationCounter;
export type { ConnectionSync };

interface Pending {
  counts: Map<DeliveryCount, number>;
  fields: Record<string, string>;
  /** `<minute bucket start>:<outcome>` -> count, for the history. */
  buckets: Map<string, number>;
}

const HISTORY_OUTCOMES: ReadonlySet<string> = new Set(DELIVERY_OUTCOMES);

export class DeliveryStatus {
  private readonly counter: Counter<'destination' | 'outcome'>;
  private readonly status: StatusStore;
  private readonly history: HistoryStore;
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | null = null;
  private readonly flushMs = 250;

  constructor(
    config: { keyPrefix: string },
    private readonly deps: { redis: RedisClient; metrics: Registry; now?: () => number },
  ) {
    this.status = new StatusStore({ keyPrefix: config.keyPrefix }, { redis: deps.redis });
    this.history = new HistoryStore({ keyPrefix: config.keyPrefix }, { redis: deps.redis });
    this.counter = new Counter({
      name: 'engage_dispatch_calls_total',
      help: 'Destination calls by outcome (sent, retried, failed, throttled, dead_lettered)',
      labelNames: ['destination', 'outcome'],
      registers: [deps.metrics],
    });
  }

  private now() {
    return String(this.deps.now?.() ?? Date.now());
  }

  private pendingOf(destinationId: string): Pending {
    let pending = this.pending.get(destinationId);
    if (!pending) this.pending.set(destinationId, (pending = { counts: new Map(), fields: {}, buckets: new Map() }));
    return pending;
  }

  count(destinationId: string, outcome: DeliveryCount, error?: string): void {
    this.counter.inc({ destination: destinationId, outcome });
    // Redis gets the counts once per flush interval, not one round trip per call.
    const pending = this.pendingOf(destinationId);
    pending.counts.set(outcome, (pending.counts.get(outcome) ?? 0) + 1);
    // Bucketed by when the call was counted, not when the flush runs (a flush can straddle a minute).
    if (HISTORY_OUTCOMES.has(outcome)) {
      const bucket = `${bucketStart(Number(this.now()), HISTORY_TIERS.m.bucketMs)}:${outcome}`;
      pending.buckets.set(bucket, (pending.buckets.get(bucket) ?? 0) + 1);
    }
    if (outcome === 'sent') pending.fields.lastSentAt = this.now();
    if (error) Object.assign(pending.fields, { lastError: error, lastErrorAt: this.now() });
    this.timer ??= setTimeout(() => void this.flush(), this.flushMs).unref();
  }

  /**
   * Writes pending counts (fire and forget from the timer: status is
   * informational, a Redis hiccup must not fail a delivery). One MULTI per
   * destination (its hash is one key, so one slot on a Cluster), all sent at
   * once: auto-pipelining sends those of one node together. The history's
   * counts go in a second MULTI per destination (its keys share another slot).
   */
  async flush(): Promise<void> {
    this.timer = null;
    if (this.pending.size === 0) return;
    const writes = [...this.pending].flatMap(([destinationId, { counts, fields, buckets }]) => {
      const history = [...buckets].map(([bucket, n]) => {
        const [at, outcome] = bucket.split(':');
        return { at: Number(at), outcome: outcome as DeliveryOutcome, n };
      });
      return [
        this.status.addDeliveries(destinationId, counts, fields).catch(() => undefined),
        this.history.addDeliveries(destinationId, history).catch(() => undefined),
      ];
    });
    this.pending.clear();
    await Promise.all(writes);
  }

  fail(destinationId: string, reason: string): void {
    this.count(destinationId, 'failed', reason);
  }

  /** The destination's credentials were refused (401/403): the control plane shows it flagged until a later call is sent. */
  credentialsRefused(destinationId: string, reason: string): void {
    Object.assign(this.pendingOf(destinationId).fields, { credentialsRefusedAt: this.now(), credentialsError: reason });
    this.timer ??= setTimeout(() => void this.flush(), this.flushMs).unref();
  }

  /** A connection's sync progress (initial sync, list flush); counters add up over syncs. */
  async connection(connectionId: string, sync: ConnectionSync): Promise<void> {
    await this.status.updateConnection(connectionId, sync, Number(this.now())).catch(() => undefined);
  }
}
