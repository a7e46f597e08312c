// StatusReader against real Redis: one status hash per computation,
// destination, connection or journey, so on a Redis Cluster
// (REDIS_URL=redis-cluster://...) they lie on every node; each list is read
// whole and in order.
import {
  statusKeys,
  type ComputationConfig,
  type ConnectionConfig,
  type DestinationConfig,
  type JourneyConfig,
} from '@engage/config-store';
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { StatusReader } from './status.reader';

let redis: RedisClient;
let prefix: string;
let reader: StatusReader;
const ids = (what: string, n: number) => Array.from({ length: n }, (_, i) => `${what}_${i}`);

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
beforeEach(() => {
  prefix = `${uniqueName('sr')}:`;
  reader = new StatusReader({ redisKeyPrefix: prefix }, { redis });
});
afterAll(() => redis.disconnect());

it('reads the status of 20 computations, 20 destinations and 20 connections, each its own', async () => {
  const keys = statusKeys(prefix);
  const computations = ids('aud', 20).map((id) => ({ id, enabled: true }) as unknown as ComputationConfig);
  const destinations = ids('dst', 20).map((id) => ({ id, enabled: true }) as unknown as DestinationConfig);
  const connections = ids('con', 20).map((id, i) => ({ id, enabled: true, destinationId: `dst_${i}` }) as unknown as ConnectionConfig);
  for (let i = 0; i < 20; i += 2) {
    await redis.hset(keys.computation(`aud_${i}`), { status: 'Live', size: String(i) });
    await redis.hset(keys.destination(`dst_${i}`), { sent: String(i + 1) });
    await redis.hset(keys.connection(`con_${i}`), { state: 'Synced', sent: String(i) });
  }
  expect((await reader.computations(computations)).map((c) => [c.id, c.status, c.size])).toEqual(
    computations.map((c, i) => [c.id, i % 2 === 0 ? 'Live' : 'Preparing', i % 2 === 0 ? i : 0]),
  );
  expect((await reader.destinations(destinations)).map((d) => d.deliveryStatus.sent)).toEqual(
    destinations.map((_, i) => (i % 2 === 0 ? i + 1 : 0)),
  );
  const byId = new Map(destinations.map((d) => [d.id, d]));
  expect((await reader.connections(connections, byId)).map((c) => [c.syncStatus.state, c.syncStatus.sent])).toEqual(
    connections.map((_, i) => (i % 2 === 0 ? ['Synced', i] : ['Pending', 0])),
  );
});

it('reads the step counts of 10 journeys', async () => {
  const keys = statusKeys(prefix);
  const journeys = ids('jrn', 10).map(
    (id) => ({ id, steps: [{ id: 'entry', type: 'entry' }], stepKeys: {}, versions: [] }) as unknown as JourneyConfig,
  );
  for (let i = 0; i < 10; i++) await redis.hset(keys.journeyStats(`jrn_${i}`), { 'entry:entered': String(i), 'entry:current': '1' });
  expect((await reader.journeys(journeys)).map(([s]) => [s!.entered, s!.current])).toEqual(journeys.map((_, i) => [i, 1]));
});
