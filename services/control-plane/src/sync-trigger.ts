// "Sync now" for list destinations: the dispatcher of the destination watches
// this key (libs/config-store StatusStore, its owner) and flushes every pending
// list of the destination at its next tick (about a second), then deletes it.
import { StatusStore } from '@engage/config-store';
import type { RedisClient } from '@engage/redis';

export class SyncTrigger {
  private readonly status: StatusStore;

  constructor(config: { redisKeyPrefix: string }, deps: { redis: RedisClient }) {
    this.status = new StatusStore({ keyPrefix: config.redisKeyPrefix }, { redis: deps.redis });
  }

  async request(destinationId: string, at = Date.now()): Promise<void> {
    await this.status.requestSyncNow(destinationId, at);
  }
}
