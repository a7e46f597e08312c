// "Sync now" for list destinations: the dispatcher of the destination watches
// this key (libs/config-store statusKeys.syncNow) and flushes every pending
// list of the destination at its next tick (about a second), then deletes it.
import { statusKeys } from '@engage/config-store';
import type { RedisClient } from '@engage/redis';

export class SyncTrigger {
  private readonly keys;

  constructor(
    config: { redisKeyPrefix: string },
    private readonly deps: { redis: RedisClient },
  ) {
    this.keys = statusKeys(config.redisKeyPrefix);
  }

  async request(destinationId: string, at = Date.now()): Promise<void> {
    await this.deps.redis.set(this.keys.syncNow(destinationId), String(at));
  }
}
