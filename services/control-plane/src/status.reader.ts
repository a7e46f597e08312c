// Reads compute and sync status that workers write to Redis, and combines it
// with configuration into what the API shows.
import {
  parseComputationStatus,
  statusKeys,
  type ComputationConfig,
  type ComputationStatus,
  type ConnectionConfig,
  type DestinationConfig,
  type JourneyConfig,
} from '@engage/config-store';
import { acrossSlots, type RedisClient } from '@engage/redis';

export interface ComputationView extends ComputationConfig {
  status: ComputationStatus;
  size: number;
  progress: number | null;
}

/** A step of a journey with what the journey runner counted: users who reached it, users there now. */
export interface JourneyStepStats {
  id: string;
  type: string;
  /** Send steps: the key their calls carry. */
  key?: string;
  current: number;
  entered: number;
}

/**
 * The steps of the latest version (the draft when never published) with the
 * counts of the runner's hash (`<stepId>:entered`, `<stepId>:current`; absent: 0).
 */
export function journeyStepStats(journey: JourneyConfig, hash: Record<string, string>): JourneyStepStats[] {
  const version = journey.versions.at(-1);
  const steps = version?.steps ?? journey.steps;
  const keys = version?.stepKeys ?? journey.stepKeys;
  const count = (field: string) => {
    const n = Number(hash[field] ?? 0);
    return Number.isFinite(n) ? n : 0;
  };
  return steps.map((s) => ({
    id: s.id,
    type: s.type,
    ...(s.type === 'send' ? { key: keys[s.id] } : {}),
    current: count(`${s.id}:current`),
    entered: count(`${s.id}:entered`),
  }));
}

export class StatusReader {
  private readonly keys;

  constructor(
    config: { redisKeyPrefix: string },
    private readonly deps: { redis: RedisClient },
  ) {
    this.keys = statusKeys(config.redisKeyPrefix);
  }

  /**
   * HGETALL of many status hashes: one round trip per Redis node (the keys
   * have no common hash tag, so on a Cluster they span slots: acrossSlots).
   */
  private hashes(keys: string[]): Promise<unknown[]> {
    return acrossSlots(
      this.deps.redis,
      keys.map((k) => ['hgetall', k]),
    );
  }

  /** One round trip (per Redis node) for any number of computations. */
  async computations(list: ComputationConfig[]): Promise<ComputationView[]> {
    if (list.length === 0) return [];
    const results = await this.hashes(list.map((c) => this.keys.computation(c.id)));
    return list.map((c, i) => {
      const s = parseComputationStatus((results[i] as Record<string, string> | undefined) ?? {});
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
    const results = await this.hashes(list.map((d) => this.keys.destination(d.id)));
    const at = (ms: string | undefined) => (ms ? new Date(Number(ms)).toISOString() : null);
    return list.map((d, i) => {
      const s = (results[i] as Record<string, string> | undefined) ?? {};
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

  /** Per-step counts of journeys, one round trip (the batch scheduler's journey runner writes them). */
  async journeys(list: JourneyConfig[]): Promise<JourneyStepStats[][]> {
    if (list.length === 0) return [];
    const results = await this.hashes(list.map((j) => this.keys.journeyStats(j.id)));
    return list.map((j, i) => journeyStepStats(j, (results[i] as Record<string, string> | undefined) ?? {}));
  }

  async connections(list: ConnectionConfig[], destinations: Map<string, DestinationConfig | undefined>) {
    if (list.length === 0) return [];
    const results = await this.hashes(list.map((c) => this.keys.connection(c.id)));
    return list.map((c, i) => {
      const s = (results[i] as Record<string, string> | undefined) ?? {};
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
