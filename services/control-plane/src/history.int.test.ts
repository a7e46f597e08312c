// The history routes on the built control plane against real Kafka and Redis:
// points written by the keyspace module's writers (as the batch scheduler and
// the dispatchers do) come back as the API's series; bad ranges and objects
// of another space are refused.
import { HistoryStore } from '@engage/config-store';
import { createRedis, type RedisClient } from '@engage/redis';
import { serviceEnv, startService, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';

const TOKEN = 'history-test-token';
const MIN = 60_000;
let proc: ServiceProcess;
let base: string;
let redis: RedisClient;
let history: HistoryStore;

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  const prefix = `${uniqueName('cphist')}.`;
  const env = serviceEnv(prefix, { CONTROL_PLANE_TOKEN: TOKEN, DESTINATION_ALLOWED_HOSTS: '127.0.0.0/8' });
  proc = startService('control-plane', env);
  redis = createRedis({ url: env.REDIS_URL! });
  history = new HistoryStore({ keyPrefix: env.REDIS_KEY_PREFIX!, sizeIntervalMs: MIN }, { redis });
  base = `http://127.0.0.1:${await proc.port()}`;
  await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { description: 'control plane ready' });
});
afterAll(async () => {
  await proc?.stop();
  redis?.disconnect();
});

it('answers the size history of an audience and the delivery history of a destination', async () => {
  const spaceId = (await api('POST', '/spaces', { name: 'History' })).body.data.space.id;
  const audience = (
    await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'Buyers',
      definition: { query: "event('Order Completed').count() >= 1", type: 'users' },
    })
  ).body.data.audience;
  const destination = (
    await api('POST', `/spaces/${spaceId}/destinations`, { name: 'Hook', type: 'webhook', settings: { url: 'http://127.0.0.1:9/hook' } })
  ).body.data.destination;
  const t0 = Math.floor(Date.now() / MIN) * MIN - 10 * MIN;
  await history.recordSizes([{ computationId: audience.id, size: 2 }], t0 + 1000);
  await history.recordSizes([{ computationId: audience.id, size: 5 }], t0 + 3 * MIN);
  await history.addDeliveries(destination.id, [
    { at: t0 + 5000, outcome: 'sent', n: 4 },
    { at: t0 + MIN, outcome: 'throttled', n: 2 },
    { at: t0 + MIN, outcome: 'dead_lettered', n: 1 },
  ]);
  const iso = (ms: number) => new Date(ms).toISOString();
  const range = `since=${iso(t0)}&until=${iso(t0 + 4 * MIN)}`;

  const sizes = await api('GET', `/spaces/${spaceId}/audiences/${audience.id}/size-history?${range}`);
  expect(sizes).toEqual({
    status: 200,
    body: {
      data: {
        audienceId: audience.id,
        since: iso(t0),
        until: iso(t0 + 4 * MIN),
        resolution: 'recent',
        points: [
          { at: iso(t0), size: 2 },
          { at: iso(t0 + 3 * MIN), size: 5 },
        ],
      },
    },
  });
  // By default the last 24 hours: the same points.
  const recent = await api('GET', `/spaces/${spaceId}/audiences/${audience.id}/size-history`);
  expect(recent.body.data.points).toEqual(sizes.body.data.points);
  expect(Date.parse(recent.body.data.until) - Date.parse(recent.body.data.since)).toBe(24 * 3600 * 1000);

  // A computed trait's size (profiles with a value), kept the same way; not readable as an audience.
  const trait = (
    await api('POST', `/spaces/${spaceId}/computed-traits`, { name: 'Orders', definition: { query: "event('Order Completed').count()" } })
  ).body.data.computedTrait;
  await history.recordSizes([{ computationId: trait.id, size: 7 }], t0 + 2 * MIN);
  expect((await api('GET', `/spaces/${spaceId}/computed-traits/${trait.id}/size-history?${range}`)).body.data).toEqual({
    computedTraitId: trait.id,
    since: iso(t0),
    until: iso(t0 + 4 * MIN),
    resolution: 'recent',
    points: [{ at: iso(t0 + 2 * MIN), size: 7 }],
  });
  expect((await api('GET', `/spaces/${spaceId}/audiences/${trait.id}/size-history`)).status).toBe(404);

  const deliveries = await api('GET', `/spaces/${spaceId}/destinations/${destination.id}/delivery-history?${range}`);
  expect(deliveries.status).toBe(200);
  expect(deliveries.body.data).toEqual({
    destinationId: destination.id,
    since: iso(t0),
    until: iso(t0 + 4 * MIN),
    resolution: 'recent',
    bucketMs: MIN,
    buckets: [
      { at: iso(t0), sent: 4, failed: 0, throttled: 0, deadLettered: 0 },
      { at: iso(t0 + MIN), sent: 0, failed: 0, throttled: 2, deadLettered: 1 },
      { at: iso(t0 + 2 * MIN), sent: 0, failed: 0, throttled: 0, deadLettered: 0 },
      { at: iso(t0 + 3 * MIN), sent: 0, failed: 0, throttled: 0, deadLettered: 0 },
    ],
  });
  // A week: hourly buckets, the counts of the hour in one of them.
  const week = await api(
    'GET',
    `/spaces/${spaceId}/destinations/${destination.id}/delivery-history?since=${iso(t0 - 7 * 24 * 3600 * 1000)}`,
  );
  expect(week.body.data).toEqual(expect.objectContaining({ resolution: 'hour', bucketMs: 3600 * 1000 }));
  expect(week.body.data.buckets.reduce((n: number, b: any) => n + b.sent + b.throttled + b.deadLettered, 0)).toBe(7);

  // Refused: a bad time, an empty or too long range, an object of another space.
  expect(await api('GET', `/spaces/${spaceId}/audiences/${audience.id}/size-history?since=yesterday`)).toEqual({
    status: 400,
    body: { errors: [{ type: 'bad-request', field: 'since', message: expect.stringMatching(/^since: must be an ISO 8601 date-time/) }] },
  });
  expect((await api('GET', `/spaces/${spaceId}/audiences/${audience.id}/size-history?since=${iso(t0)}&until=${iso(t0)}`)).status).toBe(400);
  expect(
    (await api('GET', `/spaces/${spaceId}/destinations/${destination.id}/delivery-history?since=2020-01-01T00:00:00Z`)).body.errors,
  ).toEqual([expect.objectContaining({ field: 'since', message: 'since: the range may span at most 90 days' })]);
  const other = (await api('POST', '/spaces', { name: 'Other' })).body.data.space.id;
  expect((await api('GET', `/spaces/${other}/audiences/${audience.id}/size-history`)).status).toBe(404);
  expect((await api('GET', `/spaces/${other}/destinations/${destination.id}/delivery-history`)).status).toBe(404);
});
