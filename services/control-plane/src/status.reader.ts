// Reads compute and sync status that workers write to Redis, and combines it
// with configuration into what the API shows.
import {
  StatusStore,
  type ComputationConfig,
  type ComputationStatus,
  type ConnectionConfig,
  type DestinationConfig,
  type JourneyConfig,
} from '@engage/config-store';
import type { RedisClient } from '@engage/redis';

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
  private readonly status: StatusStore;

  constructor(config: { redisKeyPrefix: string }, deps: { redis: RedisClient }) {
    this.status = new StatusStore({ keyPrefix: config.redisKeyPrefix }, { redis: deps.redis });
  }

  /** One round trip (per Redis node) for any number of computations. */
  async computations(list: ComputationConfig[]): Promise<ComputationView[]> {
    const results = await this.status.computations(list.map((c) => c.id));
    return list.map((c, i) => {
      const s = results[i]!;
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
    const results = await this.status.destinations(list.map((d) => d.id));
    const at = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);
    return list.map((d, i) => {
      const s = results[i]!;
      return {
        ...d,
        status: d.enabled ? 'Enabled' : 'Disabled',
        deliveryStatus: {
          sent: s.sent,
          retried: s.retried,
          failed: s.failed,
          throttled: s.throttled,
          deadLettered: s.deadLettered,
          lastSentAt: at(s.lastSentAt),
          lastError: s.lastError ?? null,
          lastErrorAt: at(s.lastErrorAt),
          // The vendor refused the destination's credentials (401/403) and nothing was sent since: fix the settings.
          credentialsRefused:
            s.credentialsRefusedAt && !((s.lastSentAt ?? 0) > s.credentialsRefusedAt)
              ? { at: at(s.credentialsRefusedAt), error: s.credentialsError ?? null }
              : null,
        },
      };
    });
  }

  /** Per-step counts of journeys, one round trip (the batch scheduler's journey runner writes them). */
  async journeys(list: JourneyConfig[]): Promise<JourneyStepStats[][]> {
    const results = await this.status.journeyStats(list.map((j) => j.id));
    return list.map((j, i) => journeyStepStats(j, results[i]!));
  }

  async connections(list: ConnectionConfig[], destinations: Map<string, DestinationConfig | undefined>) {
    const results = await this.status.connections(list.map((c) => c.id));
    return list.map((c, i) => {
      const s = results[i]!;
      const destination = destinations.get(c.destinationId);
      const status = !destination ? 'Disconnected' : !c.enabled || !destination.enabled ? 'Disabled' : 'Connected';
      return {
        ...c,
        status,
        syncStatus: {
          state: s.state ?? (status === 'Connected' ? 'Pending' : 'Not Syncing'),
          lastSyncAt: s.lastSyncAt ? new Date(s.lastSyncAt).toISOString() : null,
          matched: s.matched,
          sent: s.sent,
          failed: s.failed,
          lastError: s.lastError ?? null,
        },
      };
    });
  }
}
