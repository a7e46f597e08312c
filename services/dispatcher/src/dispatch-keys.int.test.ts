// The dispatcher's reads and writes over many keys against real Redis: one
// key per messageId, connection or destination, so on a Redis Cluster
// (REDIS_URL=redis-cluster://...) they land on every node. Each must answer
// for all of them, in order, where a pipeline over several slots was refused.
import { statusKeys } from '@engage/config-store';
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { Registry } from 'prom-client';
import { DeliveryStatus } from './delivery-status';
import { Handover } from './handover';
import { SentCalls } from './sent-calls';

let redis: RedisClient;
let prefix: string;
const ids = (what: string, n: number) => Array.from({ length: n }, (_, i) => `${what}_${i}`);

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
beforeEach(() => {
  prefix = `${uniqueName('dk')}:`;
});
afterAll(() => redis.disconnect());

it('tells which of 40 calls of 4 destinations were delivered, in order', async () => {
  const sent = new SentCalls({ keyPrefix: prefix, ttlSeconds: 60 }, { redis });
  const calls = ids('msg', 40).map((messageId, i) => ({ destinationId: `dst_${i % 4}`, messageId }));
  for (const c of calls.filter((_, i) => i % 3 === 0)) await sent.mark(c.destinationId, c.messageId);
  expect(await sent.delivered(calls)).toEqual(calls.map((_, i) => i % 3 === 0));
  expect(await sent.delivered([])).toEqual([]);
});

it('tells which of 20 connections have handover claims, in order', async () => {
  const handover = new Handover({ keyPrefix: prefix }, { redis });
  const connections = ids('con', 20);
  const claimed = connections.filter((_, i) => i % 2 === 1);
  await handover.claim(
    'sync',
    claimed.map((connectionId) => ({ connectionId, profileId: 'p-1', id: `sync_${connectionId}`, valueText: 'true', at: 1 })),
  );
  expect(await handover.active(connections)).toEqual(connections.map((_, i) => i % 2 === 1));
});

it("flushes the counts of 12 destinations into each destination's hash, and a connection's sync into its own", async () => {
  const status = new DeliveryStatus({ keyPrefix: prefix }, { redis, metrics: new Registry(), now: () => 1000 });
  const destinations = ids('dst', 12);
  destinations.forEach((d, i) => {
    for (let k = 0; k <= i; k++) status.count(d, 'sent');
    if (i % 4 === 0) status.count(d, 'failed', `boom ${i}`);
  });
  await status.flush();
  await status.connection('con_1', { state: 'Synced', matched: 3, sent: 2 });
  const keys = statusKeys(prefix);
  for (const [i, d] of destinations.entries())
    expect(await redis.hgetall(keys.destination(d))).toEqual({
      sent: String(i + 1),
      lastSentAt: '1000',
      ...(i % 4 === 0 ? { failed: '1', lastError: `boom ${i}`, lastErrorAt: '1000' } : {}),
    });
  expect(await redis.hgetall(keys.connection('con_1'))).toEqual({ state: 'Synced', lastSyncAt: '1000', matched: '3', sent: '2' });
});
