// The Redis script against the plain reference graph (libs/identity
// reference-graph.ts) on random event streams: same answers, same graph.
import { DEFAULT_IDENTITY_RULES, ReferenceGraph, compileRules, type ExternalId, type IdentityRules } from '@engage/identity';
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { readGraph } from './graph.inspector';
import { IdentityRepository, type ResolveRequest } from './identity.repository';
import { newProfileId } from './resolve.step';

let redis: RedisClient;
beforeAll(() => (redis = createRedis({ url: testInfrastructure().redisUrl })));
afterAll(() => redis.disconnect());

const DAY = 24 * 3600 * 1000;
const RULES: Record<string, IdentityRules> = {
  defaults: DEFAULT_IDENTITY_RULES,
  tight: {
    ...DEFAULT_IDENTITY_RULES,
    priority: ['user_id', 'email', 'crm_id'],
    limits: { user_id: { limit: 1, window: 'ever' }, email: { limit: 1, window: 'ever' }, anonymous_id: { limit: 2, window: 'weekly' } },
    defaultLimit: { limit: 2, window: 'monthly' },
    maxMergesPerProfile: 3,
  },
};

function stream(seed: number, n: number) {
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)]!;
  const pools: Array<[string, string[]]> = [
    ['user_id', ['u1', 'u2', 'u3', 'u4', 'u5', 'u6']],
    ['email', ['a@x.co', 'b@x.co', 'c@x.co', 'd@x.co', 'e@x.co']],
    ['anonymous_id', Array.from({ length: 12 }, (_, i) => `anon-${i}`)],
    ['ios.id', ['dev-1', 'dev-2', 'dev-3']],
    ['crm_id', ['c1', 'c2', 'c3', 'c4']],
  ];
  let ts = Date.parse('2026-01-01T00:00:00Z');
  return Array.from({ length: n }, (_, i) => {
    ts += Math.floor(random() * 3 * DAY);
    const ids = new Map<string, ExternalId>();
    for (let k = 1 + Math.floor(random() * 3); k > 0; k--) {
      const [type, values] = pick(pools);
      const x = { type, id: pick(values) };
      ids.set(`${x.type}:${x.id}`, x);
    }
    return {
      eventKey: `evt_${i}`,
      ids: [...ids.values()],
      accountId: random() < 0.1 ? pick(['acc_1', 'acc_2']) : null,
      timestamp: ts,
    };
  });
}

describe('identity graph script vs reference', () => {
  for (const [name, rules] of Object.entries(RULES)) {
    for (const seed of [1, 2, 3]) {
      it(`agrees on a random stream (${name} rules, seed ${seed}), chunked at random`, async () => {
        const compiled = compileRules(rules);
        const events = stream(seed * 7919 + name.length, 300).map((e) => ({
          ...e,
          ids: [...e.ids].sort((a, b) => compiled.compare(a.type, b.type)),
        }));
        const reference = new ReferenceGraph(rules, (first) => newProfileId('spa_r', first));
        const expected = events.map((e) => reference.resolve(e));

        const repo = new IdentityRepository({ keyPrefix: `${uniqueName('ref')}:`, resultTtlSeconds: 600 }, { redis });
        const requests: ResolveRequest[] = events.map((e) => ({ ...e, spaceId: 'spa_r', rules: compiled }));
        const actual = [];
        for (let i = 0, size = 1; i < requests.length; i += size, size = 1 + ((i * 31) % 40))
          actual.push(...(await repo.resolveAll(requests.slice(i, i + size))));
        // A redelivered tail answers the same again.
        const replay = await repo.resolveAll(requests.slice(-50));

        expect(actual.map(({ all: _all, ...rest }) => rest)).toEqual(expected);
        expect(replay.map((r) => r.profileId)).toEqual(
          events
            .slice(-50)
            .map((e, k) =>
              expected[250 + k]!.merged.length > 0 ||
              expected[250 + k]!.accountLinked ||
              (expected[250 + k]!.added.length > 0 && !expected[250 + k]!.created)
                ? expected[250 + k]!.profileId
                : reference.resolve({ ...e, eventKey: `fresh-${k}` }).profileId,
            ),
        );
        const graph = await readGraph(repo.graph, 'spa_r');
        expect(new Map([...graph.ids].map(([k, v]) => [k, v]))).toEqual(reference.ids);
        expect(new Map([...graph.profiles].map(([pid, ids]) => [pid, [...ids].sort()]))).toEqual(
          new Map([...reference.profiles].map(([pid, ids]) => [pid, [...ids.keys()].sort()])),
        );
      });
    }
  }
});
