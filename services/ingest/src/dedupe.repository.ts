// messageId dedupe per source over 24 h (CONTRACT.md section 1), in Redis,
// one pipeline per flush.
//
// TRICKY: a plain `SET NX EX 24h` before producing would lose events: if the
// process dies (or Kafka fails) after the SET and before the broker acks, the
// client's retry is dropped as a duplicate of an event that never landed. So a
// key goes through two states:
//   claim:   SET key "p" NX PX <pendingTtl> GET   (Redis >= 7.0: NX with GET)
//   confirm: SET key "d" EX <ttl>                  (after the broker acked)
//   release: DEL key                               (the send failed)
// A call that finds "d" is a duplicate (accepted, dropped); one that finds "p"
// is in flight elsewhere (answered 503 so the client retries: by then it is
// "d", or the claim expired after a crash and the retry goes through).
// https://redis.io/docs/latest/commands/set/
import type { RedisClient } from '@engage/redis';

export type ClaimResult = 'new' | 'duplicate' | 'in_flight';

export interface DedupeKey {
  sourceId: string;
  messageId: string;
}

const PENDING = 'p';
const DONE = 'd';

export class DedupeRepository {
  constructor(
    private readonly config: { keyPrefix: string; ttlSeconds: number; pendingTtlMs: number },
    private readonly deps: { redis: RedisClient },
  ) {}

  // NOTE: the {source} hash tag keeps one source's keys on one Cluster slot.
  private key(k: DedupeKey): string {
    return `${this.config.keyPrefix}ingest:dedupe:{${k.sourceId}}:${k.messageId}`;
  }

  async claim(keys: DedupeKey[]): Promise<ClaimResult[]> {
    if (keys.length === 0) return [];
    const pipeline = this.deps.redis.pipeline();
    for (const k of keys) pipeline.call('SET', this.key(k), PENDING, 'PX', String(this.config.pendingTtlMs), 'NX', 'GET');
    const replies = (await pipeline.exec()) ?? [];
    return keys.map((_, i) => {
      const [err, previous] = replies[i] ?? [new Error('no reply'), null];
      if (err) throw err;
      if (previous === null) return 'new';
      return previous === DONE ? 'duplicate' : 'in_flight';
    });
  }

  async confirm(keys: DedupeKey[]): Promise<void> {
    if (keys.length === 0) return;
    const pipeline = this.deps.redis.pipeline();
    for (const k of keys) pipeline.set(this.key(k), DONE, 'EX', this.config.ttlSeconds);
    await execOrThrow(pipeline.exec());
  }

  async release(keys: DedupeKey[]): Promise<void> {
    if (keys.length === 0) return;
    const pipeline = this.deps.redis.pipeline();
    for (const k of keys) pipeline.del(this.key(k));
    await execOrThrow(pipeline.exec());
  }
}

async function execOrThrow(result: Promise<Array<[Error | null, unknown]> | null>): Promise<void> {
  for (const [err] of (await result) ?? []) if (err) throw err;
}
