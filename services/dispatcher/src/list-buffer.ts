// List destinations: adds and removes accumulate per (destination, audience)
// in a Redis hash (profile -> last state wins) and are flushed on the
// destination's cadence (settings.cadenceMinutes, default 60) or on "sync
// now", chunked to the destination's batch limit (settings.batchSize, default
// 10,000). The list-webhook type receives {audience_key, audience_id, add, remove}.
import type { ConfigStore, ConnectionConfig, DestinationConfig } from '@engage/config-store';
import type { Logger } from '@engage/logging';
import type { RedisClient } from '@engage/redis';
import type { ComputationChange } from '@engage/schemas';
import type { DeliveryService } from './delivery.service';

interface BufferedMember {
  member: boolean;
  ids: string[];
}

export class ListBuffer {
  constructor(
    private readonly config: { keyPrefix: string; destinationId: string },
    private readonly deps: { store: ConfigStore; redis: RedisClient; delivery: DeliveryService; log: Logger; now?: () => number },
  ) {}

  private key = (destinationId: string, computationId: string) => `${this.config.keyPrefix}dispatch:list:${destinationId}:${computationId}`;
  private lastFlushKey = (connectionId: string) => `${this.config.keyPrefix}dispatch:list:flushed:${connectionId}`;
  /** Set by the control plane's "sync now". */
  syncNowKey = (destinationId: string) => `${this.config.keyPrefix}dispatch:list:syncnow:${destinationId}`;

  async add(items: Array<{ change: ComputationChange; connection: ConnectionConfig; destination: DestinationConfig }>): Promise<void> {
    if (items.length === 0) return;
    const pipeline = this.deps.redis.pipeline();
    for (const { change, connection, destination } of items) {
      const types = connection.settings.identifierTypes ?? ['user_id'];
      const ids = change.external_ids.filter((x) => types.includes(x.type)).map((x) => x.id);
      const entry: BufferedMember = { member: change.value === true, ids };
      pipeline.hset(this.key(destination.id, change.computation_id), change.profile_id, JSON.stringify(entry));
    }
    await pipeline.exec();
  }

  /** Flushes every list connection of this dispatcher that is due; returns how many were flushed. */
  async flushDue(): Promise<number> {
    const now = this.deps.now?.() ?? Date.now();
    let flushed = 0;
    for (const connection of this.deps.store.list('connection')) {
      if (this.config.destinationId !== '*' && connection.destinationId !== this.config.destinationId) continue;
      const destination = this.deps.store.get('destination', connection.destinationId);
      if (!destination || destination.type !== 'list-webhook' || !destination.enabled || !connection.enabled) continue;
      const cadenceMs = Number(destination.settings.cadenceMinutes ?? 60) * 60_000;
      const last = Number((await this.deps.redis.get(this.lastFlushKey(connection.id))) ?? 0);
      const syncNow = (await this.deps.redis.del(this.syncNowKey(destination.id))) === 1;
      if (!syncNow && now - last < cadenceMs) continue;
      await this.flush(destination, connection);
      await this.deps.redis.set(this.lastFlushKey(connection.id), String(now));
      flushed++;
    }
    return flushed;
  }

  private async flush(destination: DestinationConfig, connection: ConnectionConfig): Promise<void> {
    const key = this.key(destination.id, connection.computationId);
    const flushing = `${key}:flushing`;
    // A flush interrupted by a crash left its batch in `flushing`: send it first (at least once).
    if ((await this.deps.redis.exists(flushing)) === 0) {
      if ((await this.deps.redis.exists(key)) === 0) return;
      await this.deps.redis.rename(key, flushing);
    }
    const entries = await this.deps.redis.hgetall(flushing);
    const add: string[] = [];
    const remove: string[] = [];
    for (const raw of Object.values(entries)) {
      const e = JSON.parse(raw) as BufferedMember;
      (e.member ? add : remove).push(...e.ids);
    }
    const computation = this.deps.store.get(connection.computationClass === 'audience' ? 'audience' : 'computed_trait', connection.computationId);
    const batchSize = Number(destination.settings.batchSize ?? 10_000);
    const url = String(destination.settings.url);
    for (let i = 0; i < Math.max(add.length, remove.length); i += batchSize) {
      const body = { audience_key: computation?.key ?? connection.computationId, audience_id: connection.computationId, add: add.slice(i, i + batchSize), remove: remove.slice(i, i + batchSize) };
      const result = await this.deps.delivery.deliver(destination, { url, method: 'POST', headers: (destination.settings.headers as Record<string, string>) ?? {}, body });
      if (!result.ok) {
        // Keep the batch for the next flush rather than dropping it.
        this.deps.log.error({ destinationId: destination.id, reason: result.reason }, 'list_flush_failed');
        return;
      }
    }
    await this.deps.redis.del(flushing);
  }
}
