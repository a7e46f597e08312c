// The status keyspace against real Redis: an error stays on a destination or
// a connection only until a later success settles it, as the console shows it.
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { StatusStore } from './status';

let redis: RedisClient;
let store: StatusStore;

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
beforeEach(() => {
  store = new StatusStore({ keyPrefix: `${uniqueName('st')}:` }, { redis });
});
afterAll(() => redis.disconnect());

it("shows a destination's error until a call is sent after it, and an error after that success again", async () => {
  await store.addDeliveries('dst_1', [['sent', 1]], { lastSentAt: '1000' });
  await store.addDeliveries('dst_1', [['failed', 1]], { lastError: 'HTTP 400', lastErrorAt: '2000' });
  expect((await store.destinations(['dst_1']))[0]).toMatchObject({ sent: 1, failed: 1, lastError: 'HTTP 400', lastErrorAt: 2000 });

  // A later success (another replica may write it): the error is past, its count stays.
  await store.addDeliveries('dst_1', [['sent', 1]], { lastSentAt: '3000' });
  const [settled] = await store.destinations(['dst_1']);
  expect(settled).toMatchObject({ sent: 2, failed: 1, lastSentAt: 3000 });
  expect(settled!.lastError).toBeUndefined();
  expect(settled!.lastErrorAt).toBeUndefined();

  // A newer error shows again; one counted in the same millisecond as a success too.
  await store.addDeliveries('dst_1', [['retried', 1]], { lastError: 'HTTP 503', lastErrorAt: '4000' });
  expect((await store.destinations(['dst_1']))[0]).toMatchObject({ lastError: 'HTTP 503', lastErrorAt: 4000 });
  await store.addDeliveries(
    'dst_1',
    [
      ['sent', 1],
      ['failed', 1],
    ],
    { lastSentAt: '5000', lastError: 'HTTP 400', lastErrorAt: '5000' },
  );
  expect((await store.destinations(['dst_1']))[0]).toMatchObject({ lastError: 'HTTP 400', lastErrorAt: 5000 });

  // An error never followed by a success (nothing sent yet) shows.
  await store.addDeliveries('dst_2', [['failed', 1]], { lastError: 'HTTP 401', lastErrorAt: '1000' });
  expect((await store.destinations(['dst_2']))[0]).toMatchObject({ lastError: 'HTTP 401', lastErrorAt: 1000 });
});

it("clears a connection's error when a later sync finishes without one, not when a sync starts", async () => {
  await store.updateConnection('con_1', { state: 'Failed', matched: 20, failed: 20, error: 'below the minimum' }, 1000);
  expect((await store.connections(['con_1']))[0]).toMatchObject({ state: 'Failed', failed: 20, lastError: 'below the minimum' });

  await store.updateConnection('con_1', { state: 'Syncing' }, 2000);
  expect((await store.connections(['con_1']))[0]).toMatchObject({ state: 'Syncing', lastSyncAt: 1000, lastError: 'below the minimum' });

  await store.updateConnection('con_1', { state: 'Synced', matched: 1500, sent: 1500 }, 3000);
  const [synced] = await store.connections(['con_1']);
  expect(synced).toMatchObject({ state: 'Synced', lastSyncAt: 3000, matched: 1520, sent: 1500, failed: 20 });
  expect(synced!.lastError).toBeUndefined();

  // A partial sync's reason replaces it, and the next clean sync clears that one too.
  await store.updateConnection(
    'con_1',
    { state: 'Partially Synced', matched: 3, sent: 2, failed: 1, error: '1 members have no email' },
    4000,
  );
  expect((await store.connections(['con_1']))[0]!.lastError).toBe('1 members have no email');
  await store.updateConnection('con_1', { state: 'Synced', matched: 2, sent: 2 }, 5000);
  expect((await store.connections(['con_1']))[0]!.lastError).toBeUndefined();
});
