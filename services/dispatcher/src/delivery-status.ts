// Delivery counts per destination (sent, retried, failed, throttled,
// dead-lettered, last error) as Prometheus metrics and in Redis, where the
// control plane reads them for the destination's status.
import { statusKeys } from '@engage/config-store';
import type { RedisClient } from '@engage/redis';
import { Counter, type Registry } from 'prom-client';

export type DeliveryCount = 'sent' | 'retried' | 'failed' | 'throttled' | 'dead_lettered';

export class DeliveryStatus {
  private readonly counter: Counter<'destination' | 'outcome'>;
  private readonly keys;

  constructor(
    config: { keyPrefix: string },
    private readonly deps: { redis: RedisClient; metrics: Registry },
  ) {
    this.keys = statusKeys(config.keyPrefix);
    this.counter = new Counter({
      name: 'engage_dispatch_calls_total',
      help: 'Destination calls by outcome',
      labelNames: ['destination', 'outcome'],
      registers: [deps.metrics],
    });
  }

  count(destinationId: string, outcome: DeliveryCount, error?: string): void {
    this.counter.inc({ destination: destinationId, outcome });
    // Fire and forget: status is informational; a Redis hiccup must not fail a delivery.
    const key = this.keys.destination(destinationId);
    const tx = this.deps.redis.multi().hincrby(key, outcome, 1);
    if (outcome === 'sent') tx.hset(key, 'lastSentAt', String(Date.now()));
    if (error) tx.hset(key, 'lastError', error, 'lastErrorAt', String(Date.now()));
    tx.exec().catch(() => undefined);
  }

  fail(destinationId: string, reason: string): void {
    this.count(destinationId, 'failed', reason);
  }
}
