// Trait Activation through the dispatch step (issue 20 item 5): real Redis
// (the computed trait's value in the profile state), an Actions destination
// whose mapping gets the enriched, ID-synced calls. The end-to-end version
// (dispatcher process, Kafka, webhook and list destination) is
// test/delivery-trait-activation.test.ts.
import type { ActionMapping } from '@engage/config-store';
import type { ActionEvent } from '@engage/delivery';
import { emptyProfile } from '@engage/profile-store';
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure } from '@engage/testing';
import { AUDIENCE, SPACE, audienceChange, dispatchFixture } from './testing/dispatch-fixture';
import { Receiver } from './testing/receiver';

let redis: RedisClient;
const ctx = { topic: 'changes', partition: 0, heartbeat: async () => undefined, isActive: () => true };
const TRAIT = { id: 'tra_ltv', key: 'lifetime_value', definitionVersion: 2 };

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
afterAll(() => redis.disconnect());

it('an Actions mapping gets identify calls enriched with custom and computed traits (one state read per chunk), for the first email only', async () => {
  const ran: ActionEvent[] = [];
  const mappings: ActionMapping[] = [
    { id: 'm_identify', actionId: 'identifyUser', subscribe: 'type = "identify"', mapping: {}, enabled: true },
  ];
  const fx = dispatchFixture(redis, {
    url: 'unused',
    destination: { name: 'Braze', type: 'actions', slug: 'braze', settings: {}, mappings },
    connection: {
      identify: true,
      track: false,
      traitEnrichment: ['lifetime_value', 'plan'],
      idSync: [{ type: 'email', strategy: 'first' }],
    },
    computedTraits: [TRAIT],
    actions: {
      run: async (_d, _mapping, events) => {
        ran.push(...events);
        return events.map(() => ({ ok: true as const, status: 200 }));
      },
      batchSize: () => 10,
    },
  });
  // p-a has a current value; p-b a value of the trait's previous definition (being recomputed: left out).
  await fx.profiles.save(
    [
      {
        profile: { ...emptyProfile({ spaceId: SPACE, profileId: 'p-a' }), values: { [TRAIT.id]: { value: 250, version: 2 } } },
        wakeAt: null,
      },
      {
        profile: { ...emptyProfile({ spaceId: SPACE, profileId: 'p-b' }), values: { [TRAIT.id]: { value: 90, version: 1 } } },
        wakeAt: null,
      },
    ],
    [],
  );
  const emails = (p: string) => [
    { type: 'user_id', id: `u-${p}` },
    { type: 'email', id: `${p}.first@x.co` },
    { type: 'email', id: `${p}.second@x.co` },
  ];
  const loads = jest.spyOn(fx.profiles, 'loadStates');
  const changes = ['p-a', 'p-b'].map((p) =>
    audienceChange(p, true, { external_ids: emails(p), traits_json: JSON.stringify({ plan: `plan-${p}`, [AUDIENCE.key]: 'stale' }) }),
  );
  expect(
    await fx.step.handle(
      changes.map((c, i) => fx.consumed(c, i)),
      ctx,
    ),
  ).toEqual([{ kind: 'ok' }, { kind: 'ok' }]);
  expect(loads).toHaveBeenCalledTimes(1);
  expect(loads.mock.calls[0]![0]).toEqual([
    { spaceId: SPACE, profileId: 'p-a' },
    { spaceId: SPACE, profileId: 'p-b' },
  ]);
  const personas = {
    computation_class: 'audience',
    computation_id: AUDIENCE.id,
    computation_key: AUDIENCE.key,
    namespace: SPACE,
    space_id: SPACE,
  };
  expect(ran).toEqual([
    {
      type: 'identify',
      userId: 'u-p-a',
      messageId: expect.stringMatching(/^personas_[0-9a-f]{32}$/),
      timestamp: '2026-11-22T10:00:00.000Z',
      receivedAt: '2026-11-22T10:00:00.000Z',
      traits: { lifetime_value: 250, plan: 'plan-p-a', [AUDIENCE.key]: true, email: 'p-a.first@x.co' },
      context: { personas },
      integrations: { All: false, Braze: true },
    },
    {
      type: 'identify',
      userId: 'u-p-b',
      messageId: expect.stringMatching(/^personas_[0-9a-f]{32}$/),
      timestamp: '2026-11-22T10:00:00.000Z',
      receivedAt: '2026-11-22T10:00:00.000Z',
      traits: { plan: 'plan-p-b', [AUDIENCE.key]: true, email: 'p-b.first@x.co' },
      context: { personas },
      integrations: { All: false, Braze: true },
    },
  ]);
});

it('a connection listing custom traits only: enriched from the change record, no profile state read', async () => {
  const hook = await new Receiver().start();
  try {
    const fx = dispatchFixture(redis, {
      url: `${hook.url}/hook`,
      connection: { identify: true, track: false, identifierTypes: ['user_id'], traitEnrichment: ['plan', 'city'] },
      computedTraits: [TRAIT],
    });
    const loads = jest.spyOn(fx.profiles, 'loadStates');
    await fx.step.handle([fx.consumed(audienceChange('p-c', true, { traits_json: JSON.stringify({ plan: 'free', age: 40 }) }), 0)], ctx);
    expect(loads.mock.calls.map(([refs]) => refs)).toEqual([[]]);
    expect(hook.requests.map((r) => r.body.traits)).toEqual([{ plan: 'free', [AUDIENCE.key]: true }]);
  } finally {
    await hook.stop();
  }
});
