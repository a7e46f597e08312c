// Reads compute and sync status that workers write to Redis, and combines it
// with configuration into what the API shows.
import {
  parseComputationStatus,
  statusKeys,
  type ComputationConfig,
  type ComputationStatus,
  type ConnectionConfig,
  type DestinationConfig,
} from '@engage/config-store';
import type { RedisClient } from '@engage/redis';

export interface ComputationView extends ComputationConfig {
  status: ComputationStatus;
  size: number;
  progress: number | null;
}

export class StatusReader {
  private readonly keys;

  constructor(
    config: { redisKeyPrefix: string },
    private readonly deps: { redis: RedisClient },
  ) {
    this.keys = statusKeys(config.redisKeyPrefix);
  }

  /** One round trip for any number of computations. */
  async computations(list: ComputationConfig[]): Promise<ComputationView[]> {
    if (list.length === 0) return [];
    const pipeline = this.deps.redis.pipeline();
    for (const c of list) pipeline.hgetall(this.keys.computation(c.id));
    const results = (await pipeline.exec()) ?? [];
    return list.map((c, i) => {
      const s = parseComputationStatus((results[i]?.[1] as Record<string, string>) ?? {});
      // Disabled wins over whatever a worker last wrote; nothing written yet means Preparing.
      const status: ComputationStatus = !c.enabled ? 'Disabled' : (s.status ?? 'Preparing');
      return { ...c, status, size: s.size ?? 0, progress: s.progress ?? null };
    });
  }

  /**
   * Destinations with what their dispatchers counted (services/dispatcher
   * delivery-status.ts writes the hash): the destination table's Status.
   */
  async destinations(list: DestinationConfig[]) {
    if (list.length === 0) return [];
    const pipeline = this.deps.redis.pipeline();
    for (const d of list) pipeline.hgetall(this.keys.destination(d.id));
    const results = (await pipeline.exec()) ?? [];
    const at = (ms: string | undefined) => (ms ? new Date(Number(ms)).toISOString() : null);
    return list.map((d, i) => {
      const s = (results[i]?.[1] as Record<string, string>) ?? {};
      return {
        ...d,
        status: d.enabled ? 'Enabled' : 'Disabled',
        deliveryStatus: {
          sent: Number(s.sent ?? 0),
          retried: Number(s.retried ?? 0),
          failed: Number(s.failed ?? 0),
          throttled: Number(s.throttled ?? 0),
          deadLettered: Number(s.dead_lettered ?? 0),
          lastSentAt: at(s.lastSentAt),
          lastError: s.lastError ?? null,
          lastErrorAt: at(s.lastErrorAt),
          // The vendor refused the destination's credentials (401/403) and nothing was sent since: fix the settings.
          credentialsRefused:
            s.credentialsRefusedAt && !(Number(s.lastSentAt ?? 0) > Number(s.credentialsRefusedAt))
              ? { at: at(s.credentialsRefusedAt), error: s.credentialsError ?? null }
              : null,
        },
      };
    });
  }

  async connections(list: ConnectionConfig[], destinations: Map<string, DestinationConfig | undefined>) {
    if (list.length === 0) return [];
    const pipeline = this.deps.redis.pipeline();
    for (const c of list) pipeline.hgetall(this.keys.connection(c.id));
    const results = (await pipeline.exec()) ?? [];
    return list.map((c, i) => {
      const s = (results[i]?.[1] as Record<string, string>) ?? {};
      const destination = destinations.get(c.destinationId);
      const status = !destination ? 'Disconnected' : !c.enabled || !destination.enabled ? 'Disabled' : 'Connected';
      return {
        ...c,
        status,
        syncStatus: {
          state: s.state ?? (status === 'Connected' ? 'Pending' : 'Not Syncing'),
          lastSyncAt: s.lastSyncAt ? new Date(Number(s.lastSyncAt)).toISOString() : null,
          matched: Number(s.matched ?? 0),
          sent: Number(s.sent ?? 0),
          failed: Number(s.failed ?? 0),
          lastError: s.lastError ?? null,
        },
      };
    });
  }
}
