// The list buffer against real Redis (a single node or a Redis Cluster,
// REDIS_URL=redis-cluster://...): a batch buffers changes of several lists
// (several slots), each list's pending hash is renamed to its `:flushing`
// batch (one hash tag: one slot), and hashes of the untagged layout of before
// are folded in and sent.
import type { ConfigStore, ConnectionConfig, DestinationConfig } from '@engage/config-store';
import type { ExternalAudience, ListDestinationAdapter, NormalisedId } from '@engage/delivery';
import type { DeadLetter, DeadLetterWriter } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { createRedis, type RedisClient } from '@engage/redis';
import type { ComputationChange } from '@engage/schemas';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { Registry } from 'prom-client';
import { DeliveryStatus } from './delivery-status';
import { ListBuffer } from './list-buffer';

let redis: RedisClient;
beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
afterAll(() => redis.disconnect());

const iso = new Date(0).toISOString();
const destination = {
  id: 'dst_1',
  spaceId: 'spa_1',
  name: 'List',
  type: 'fake-list',
  settings: {},
  enabled: true,
  createdAt: iso,
  updatedAt: iso,
} as DestinationConfig;
const connectionOf = (computationId: string): ConnectionConfig =>
  ({
    id: `con_${computationId}`,
    spaceId: 'spa_1',
    computationId,
    computationClass: 'audience',
    destinationId: destination.id,
    settings: {},
    enabled: true,
    createdAt: iso,
    updatedAt: iso,
  }) as ConnectionConfig;
const AUDIENCES = Array.from({ length: 6 }, (_, i) => `aud_${i}`);
const connections = AUDIENCES.map(connectionOf);

function setup() {
  const keyPrefix = `${uniqueName('lb')}:`;
  const sent: Array<[op: string, audience: string, ids: string[]]> = [];
  const adapter: ListDestinationAdapter = {
    type: 'fake-list',
    batchLimit: () => 100,
    defaultRateLimit: null,
    identifierTypes: ['user_id'],
    normalise: (id): NormalisedId => ({ ok: true, type: id.type, value: id.id }),
    createAudience: async (_d, a): Promise<ExternalAudience> => ({ id: `ext_${a.computationId}`, name: a.name }),
    getAudience: async (_d, id) => ({ id, name: id }),
    add: async (_d, a, items) => (sent.push(['add', a.id, items.map((i) => (i.ok ? i.value : '')).sort()]), { failed: [] }),
    remove: async (_d, a, items) => (sent.push(['remove', a.id, items.map((i) => (i.ok ? i.value : '')).sort()]), { failed: [] }),
  };
  const objects: Record<string, unknown[]> = { destination: [destination], connection: connections };
  const store = {
    list: (kind: string) => objects[kind] ?? [],
    get: (kind: string, id: string) => (objects[kind] as Array<{ id: string }> | undefined)?.find((o) => o.id === id),
  } as unknown as ConfigStore;
  const letters: DeadLetter[] = [];
  const buffer = new ListBuffer(
    { keyPrefix, destinationId: destination.id },
    {
      store,
      redis,
      adapters: new Map([['fake-list', adapter]]),
      status: new DeliveryStatus({ keyPrefix }, { redis, metrics: new Registry() }),
      deadLetters: { write: async (ls: DeadLetter[]) => void letters.push(...ls) } as unknown as DeadLetterWriter,
      log: silentLogger(),
      now: () => 10_000_000,
    },
  );
  return { keyPrefix, sent, buffer, letters };
}

const change = (computationId: string, user: string, value: boolean) =>
  ({
    computation_id: computationId,
    profile_id: `p-${user}`,
    value,
    external_ids: [{ type: 'user_id', id: user }],
  }) as unknown as ComputationChange;

it('buffers one batch over 6 lists and flushes each list once: adds and removes, the last change per profile winning', async () => {
  const { keyPrefix, sent, buffer } = setup();
  const items = AUDIENCES.flatMap((aud, i) => [
    { change: change(aud, `a${i}`, true), connection: connections[i]!, destination },
    { change: change(aud, `b${i}`, true), connection: connections[i]!, destination },
    { change: change(aud, `b${i}`, false), connection: connections[i]!, destination },
  ]);
  await buffer.add(items);
  expect(await redis.hlen(`${keyPrefix}dispatch:list:{dst_1:aud_3}`)).toBe(2);
  expect(await buffer.flushDue()).toBe(6);
  expect(sent.sort()).toEqual(
    AUDIENCES.flatMap((aud, i) => [
      ['add', `ext_${aud}`, [`a${i}`]],
      ['remove', `ext_${aud}`, [`b${i}`]],
    ]).sort(),
  );
  for (const aud of AUDIENCES) {
    expect(await redis.exists(`${keyPrefix}dispatch:list:{dst_1:${aud}}`)).toBe(0);
    expect(await redis.exists(`${keyPrefix}dispatch:list:{dst_1:${aud}}:flushing`)).toBe(0);
  }
});

it('folds the untagged hashes of before (pending and an interrupted flush) into the list, a newer entry winning, and sends them', async () => {
  const { keyPrefix, sent, buffer } = setup();
  const entry = (member: boolean, user: string) => JSON.stringify({ member, ids: [{ type: 'user_id', id: user }] });
  // Written by the dispatcher of before: pending and a crashed flush's batch.
  await redis.hset(`${keyPrefix}dispatch:list:dst_1:aud_0`, { 'p-old': entry(true, 'old'), 'p-both': entry(true, 'both') });
  await redis.hset(`${keyPrefix}dispatch:list:dst_1:aud_0:flushing`, { 'p-crashed': entry(true, 'crashed'), 'p-old': entry(false, 'old') });
  // Written since the upgrade: p-both left.
  await buffer.add([{ change: change('aud_0', 'both', false), connection: connections[0]!, destination }]);
  expect(await buffer.flushDue()).toBe(1);
  expect(sent.sort()).toEqual([
    ['add', 'ext_aud_0', ['crashed', 'old']],
    ['remove', 'ext_aud_0', ['both']],
  ]);
  // Two slots on a Cluster: one EXISTS each.
  expect(await redis.exists(`${keyPrefix}dispatch:list:dst_1:aud_0`)).toBe(0);
  expect(await redis.exists(`${keyPrefix}dispatch:list:dst_1:aud_0:flushing`)).toBe(0);
});
