// DeliveryStatus against real Redis: one flush writes the status hash and the
// per-minute history, each call in the minute it was counted.
import { HistoryStore, statusKeys } from '@engage/config-store';
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { Registry } from 'prom-client';
import { DeliveryStatus } from './delivery-status';

const MIN = 60_000;
let redis: RedisClient;

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
afterAll(() => redis.disconnect());

it('counts sent, failed, throttled and dead-lettered calls per minute in the same flush as the totals', async () => {
  const prefix = `${uniqueName('ds')}:`;
  const t0 = Math.floor(Date.now() / MIN) * MIN - 5 * MIN;
  let now = t0 + 1000;
  const status = new DeliveryStatus({ keyPrefix: prefix }, { redis, metrics: new Registry(), now: () => now });
  status.count('dst_1', 'sent');
  status.count('dst_1', 'sent');
  status.count('dst_1', 'throttled', '429 Too Many Requests');
  status.count('dst_1', 'retried', 'timeout'); // in the totals, not a series of its own
  now = t0 + MIN + 10;
  status.fail('dst_1', 'HTTP 400');
  status.count('dst_1', 'dead_lettered', 'HTTP 400');
  status.count('dst_2', 'sent');
  await status.flush();

  expect(await redis.hgetall(statusKeys(prefix).destination('dst_1'))).toEqual(
    expect.objectContaining({ sent: '2', throttled: '1', retried: '1', failed: '1', dead_lettered: '1' }),
  );
  const history = new HistoryStore({ keyPrefix: prefix }, { redis });
  const range = { since: t0, until: t0 + 3 * MIN, now: t0 + 3 * MIN };
  expect((await history.deliveries('dst_1', range)).buckets).toEqual([
    { at: t0, sent: 2, failed: 0, throttled: 1, deadLettered: 0 },
    { at: t0 + MIN, sent: 0, failed: 1, throttled: 0, deadLettered: 1 },
    { at: t0 + 2 * MIN, sent: 0, failed: 0, throttled: 0, deadLettered: 0 },
  ]);
  expect((await history.deliveries('dst_2', range)).buckets.map((b) => b.sent)).toEqual([0, 1, 0]);

  // A second flush adds to the same buckets.
  status.count('dst_1', 'sent');
  await status.flush();
  expect((await history.deliveries('dst_1', range)).buckets[1]).toEqual({
    at: t0 + MIN,
    sent: 1,
    failed: 1,
    throttled: 0,
    deadLettered: 1,
  });
});
