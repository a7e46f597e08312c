// Compute and sync status live in Redis, written by the workers that know them
// (evaluator, scheduler, dispatchers) and read by the control plane. These
// helpers are the one definition of those keys.
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
