// Compute and sync status live in Redis, written by the workers that know them
// (batch scheduler, dispatchers) and read by the control plane. This module is
// the one owner of those keys (deploy/README.md, Redis keyspaces): StatusStore
// is the typed API every writer and reader goes through; statusKeys only
// spells them (and the journey runner's stats key, which its commit script
// writes atomically with a user's progress).
import { acrossSlots, type RedisClient } from '@engage/redis';
import type { ComputationStatus } from './model';

export interface ComputationStatusRecord {
  status?: ComputationStatus;
  size?: number;
  /** 0..1 while a backfill runs. */
  progress?: number;
  error?: string;
  updatedAt?: number;
}

export const statusKeys = (prefix: string) => ({
  computation: (computationId: string) => `${prefix}status:computation:${computationId}`,
  connection: (connectionId: string) => `${prefix}status:connection:${connectionId}`,
  destination: (destinationId: string) => `${prefix}status:destination:${destinationId}`,
  /** "Sync now" of a list destination: set by the control plane, consumed by its dispatcher. */
  syncNow: (destinationId: string) => `${prefix}dispatch:list:syncnow:${destinationId}`,
  /**
   * A journey's per-step counts: fields `<stepId>:entered` and `<stepId>:current`
   * (integers). Written by the batch scheduler's journey runner, read by the
   * control plane. The braces are a Redis Cluster hash tag (one slot per journey).
   */
  journeyStats: (journeyId: string) => `${prefix}jrn:stats:{${journeyId}}`,
});

/** Parses a status hash (HGETALL) into typed fields; absent fields stay absent. */
export function parseComputationStatus(hash: Record<string, string>): ComputationStatusRecord {
  const out: ComputationStatusRecord = {};
  if (hash.status) out.status = hash.status as ComputationStatus;
  if (hash.size !== undefined) out.size = Number(hash.size);
  if (hash.progress !== undefined) out.progress = Number(hash.progress);
  if (hash.error) out.error = hash.error;
  if (hash.updatedAt !== undefined) out.updatedAt = Number(hash.updatedAt);
  return out;
}

/** What a dispatcher counted for a destination (status:destination:<id>). */
export interface DestinationStatusRecord {
  sent: number;
  retried: number;
  failed: number;
  throttled: number;
  deadLettered: number;
  /** ms since epoch */
  lastSentAt?: number;
  /**
   * The latest failure or retry reason, and when (ms since epoch): only while
   * no call was sent after it (a later success settles it, as credentials do).
   */
  lastError?: string;
  lastErrorAt?: number;
  /** The vendor refused the credentials (401/403), and why. */
  credentialsRefusedAt?: number;
  credentialsError?: string;
}

/** A connection's sync progress as its dispatcher reports it. */
export interface ConnectionSync {
  state: 'Syncing' | 'Synced' | 'Partially Synced' | 'Failed';
  matched?: number;
  sent?: number;
  failed?: number;
  error?: string;
}

/** A connection's sync status as stored (status:connection:<id>): counters add up over syncs. */
export interface ConnectionStatusRecord {
  state?: ConnectionSync['state'];
  /** ms since epoch of the last finished sync */
  lastSyncAt?: number;
  matched: number;
  sent: number;
  failed: number;
  /** The error of the latest finished sync (or of one running since): a sync finished without one clears it. */
  lastError?: string;
}

/** Fields of a destination's delivery counts, as the dispatcher counts them. */
export type DestinationCounter = 'sent' | 'retried' | 'failed' | 'throttled' | 'dead_lettered';

const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));

/**
 * Reads and writes of the status keyspace. Each write touches one hash (one
 * slot on a Cluster); reads of many hashes go through acrossSlots (one round
 * trip per node).
 */
export class StatusStore {
  private readonly keys: ReturnType<typeof statusKeys>;

  constructor(
    config: { keyPrefix: string },
    private readonly deps: { redis: RedisClient },
  ) {
    this.keys = statusKeys(config.keyPrefix);
  }

  private hashes(keys: string[]): Promise<Array<Record<string, string>>> {
    return acrossSlots(
      this.deps.redis,
      keys.map((k) => ['hgetall', k]),
    ) as Promise<Array<Record<string, string>>>;
  }

  /** A computation's status, size and progress (absent: none running, the field goes), at `at`. */
  async reportComputation(
    computationId: string,
    r: { status: ComputationStatus; size: number; progress?: number; at: number },
  ): Promise<void> {
    const key = this.keys.computation(computationId);
    const fields: Record<string, string> = { status: r.status, size: String(r.size), updatedAt: String(r.at) };
    if (r.progress !== undefined) fields.progress = String(r.progress);
    const tx = this.deps.redis.multi().hset(key, fields);
    if (r.progress === undefined) tx.hdel(key, 'progress');
    await tx.exec();
  }

  /** A computation disabled or deleted: its status and an empty size. */
  async computationStopped(computationId: string, status: 'Disabled' | 'Not Computing'): Promise<void> {
    await this.deps.redis.hset(this.keys.computation(computationId), { status, size: '0' });
  }

  async computations(ids: string[]): Promise<ComputationStatusRecord[]> {
    if (ids.length === 0) return [];
    return (await this.hashes(ids.map((id) => this.keys.computation(id)))).map((h) => parseComputationStatus(h ?? {}));
  }

  /** Adds a flush's counts to a destination's counters and sets its other fields, in one MULTI (one key). */
  async addDeliveries(
    destinationId: string,
    counts: Iterable<[DestinationCounter, number]>,
    fields: Record<string, string>,
  ): Promise<void> {
    const key = this.keys.destination(destinationId);
    const tx = this.deps.redis.multi();
    for (const [counter, n] of counts) tx.hincrby(key, counter, n);
    if (Object.keys(fields).length > 0) tx.hset(key, fields);
    await tx.exec();
  }

  async destinations(ids: string[]): Promise<DestinationStatusRecord[]> {
    if (ids.length === 0) return [];
    return (await this.hashes(ids.map((id) => this.keys.destination(id)))).map((h) => {
      const s = h ?? {};
      // The hash keeps the latest error and the latest success, each with its time (writers of several
      // replicas never race to clear a field): the error is current only when no call was sent after it.
      const lastErrorAt = num(s.lastErrorAt);
      const lastSentAt = num(s.lastSentAt);
      const errorCurrent =
        s.lastError !== undefined && !(lastSentAt !== undefined && lastErrorAt !== undefined && lastSentAt > lastErrorAt);
      return {
        sent: Number(s.sent ?? 0),
        retried: Number(s.retried ?? 0),
        failed: Number(s.failed ?? 0),
        throttled: Number(s.throttled ?? 0),
        deadLettered: Number(s.dead_lettered ?? 0),
        lastSentAt,
        lastError: errorCurrent ? s.lastError : undefined,
        lastErrorAt: errorCurrent ? lastErrorAt : undefined,
        credentialsRefusedAt: num(s.credentialsRefusedAt),
        credentialsError: s.credentialsError,
      };
    });
  }

  /**
   * A connection's sync progress at `at` (initial sync, list flush); counters
   * add up over syncs. The error is the latest sync's: one that finishes
   * without an error clears an earlier one (a sync starting keeps it).
   */
  async updateConnection(connectionId: string, sync: ConnectionSync, at: number): Promise<void> {
    const key = this.keys.connection(connectionId);
    const tx = this.deps.redis.multi().hset(key, 'state', sync.state);
    if (sync.state !== 'Syncing') tx.hset(key, 'lastSyncAt', String(at));
    if (sync.matched) tx.hincrby(key, 'matched', sync.matched);
    if (sync.sent) tx.hincrby(key, 'sent', sync.sent);
    if (sync.failed) tx.hincrby(key, 'failed', sync.failed);
    if (sync.error) tx.hset(key, 'lastError', sync.error);
    else if (sync.state !== 'Syncing') tx.hdel(key, 'lastError');
    await tx.exec();
  }

  async connections(ids: string[]): Promise<ConnectionStatusRecord[]> {
    if (ids.length === 0) return [];
    return (await this.hashes(ids.map((id) => this.keys.connection(id)))).map((h) => {
      const s = h ?? {};
      return {
        state: s.state as ConnectionSync['state'] | undefined,
        lastSyncAt: num(s.lastSyncAt),
        matched: Number(s.matched ?? 0),
        sent: Number(s.sent ?? 0),
        failed: Number(s.failed ?? 0),
        lastError: s.lastError,
      };
    });
  }

  /** Per-step counts of journeys (fields `<stepId>:entered` / `<stepId>:current`). */
  async journeyStats(journeyIds: string[]): Promise<Array<Record<string, string>>> {
    if (journeyIds.length === 0) return [];
    return (await this.hashes(journeyIds.map((id) => this.keys.journeyStats(id)))).map((h) => h ?? {});
  }

  /** "Sync now" of a list destination (the control plane), taken by its dispatcher. */
  async requestSyncNow(destinationId: string, at: number): Promise<void> {
    await this.deps.redis.set(this.keys.syncNow(destinationId), String(at));
  }

  /** Whether a "sync now" was waiting for this destination; takes it (one dispatcher acts on it). */
  async takeSyncNow(destinationId: string): Promise<boolean> {
    return (await this.deps.redis.del(this.keys.syncNow(destinationId))) === 1;
  }
}
