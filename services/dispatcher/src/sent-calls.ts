// Which calls a destination has already received, by their deterministic
// messageId, so a redelivered chunk or a retry that raced a delivery is not
// sent again. The owner of this keyspace:
//   <prefix>dispatch:sent:<destinationId>:<messageId>  "1", expires after DISPATCH_DEDUPE_TTL_SECONDS
import { acrossSlots, type RedisClient } from '@engage/redis';

export class SentCalls {
  constructor(
    private readonly config: { keyPrefix: string; ttlSeconds: number },
    private readonly deps: { redis: RedisClient },
  ) {}

  private key = (destinationId: string, messageId: string) => `${this.config.keyPrefix}dispatch:sent:${destinationId}:${messageId}`;

  /**
   * For each call, whether it was delivered already: one round trip per Redis
   * node (one key per messageId, so on a Cluster they span slots: acrossSlots).
   */
  async delivered(calls: Array<{ destinationId: string; messageId: string }>): Promise<boolean[]> {
    const replies = await acrossSlots(
      this.deps.redis,
      calls.map((c) => ['exists', this.key(c.destinationId, c.messageId)]),
    );
    return replies.map((n) => n === 1);
  }

  async mark(destinationId: string, messageId: string): Promise<void> {
    await this.deps.redis.set(this.key(destinationId, messageId), '1', 'EX', this.config.ttlSeconds);
  }
}
