// The dispatcher's initial-sync keyspace, owned here (deploy/README.md, Redis keyspaces):
//   <prefix>dispatch:synced:<connectionId>     STRING: when the connection's initial sync finished
//                                              (absent: the sync is still to run; clearing it asks
//                                              for a new one)
//   <prefix>dispatch:sync:lock:<connectionId>  the lock one replica holds while it syncs the
//                                              connection (RedisLock: renewed while held)
// The initial sync (ResyncJob) writes both; the live path (DispatchStep) reads
// the markers to know which connections no longer need handover claims.
import { acrossSlots, type RedisClient } from '@engage/redis';

export class SyncMarkers {
  constructor(
    private readonly config: { keyPrefix: string },
    private readonly deps: { redis: RedisClient },
  ) {}

  private markerKey(connectionId: string): string {
    return `${this.config.keyPrefix}dispatch:synced:${connectionId}`;
  }

  /** The key of the lock a replica holds while it runs the connection's initial sync. */
  lockKey(connectionId: string): string {
    return `${this.config.keyPrefix}dispatch:sync:lock:${connectionId}`;
  }

  /** Whether each connection's initial sync finished (one key per connection, several slots on a Cluster: acrossSlots). */
  async synced(connectionIds: string[]): Promise<boolean[]> {
    const found = await acrossSlots(
      this.deps.redis,
      connectionIds.map((id) => ['exists', this.markerKey(id)]),
    );
    return found.map((n) => n === 1);
  }

  async isSynced(connectionId: string): Promise<boolean> {
    return (await this.deps.redis.exists(this.markerKey(connectionId))) === 1;
  }

  /** Marks the connection's initial sync done at `at` (epoch ms). */
  async markSynced(connectionId: string, at: number): Promise<void> {
    await this.deps.redis.set(this.markerKey(connectionId), String(at));
  }
}
