// The initial sync and the live path handing over (issue 17 #3 and #6) with
// an injected clock: real Redis, a local HTTP receiver, no Kafka. The
// end-to-end versions are in test/delivery-trust.test.ts.
import { emptyProfile, type StoredProfile } from '@engage/profile-store';
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure } from '@engage/testing';
import { Receiver } from './testing/receiver';
import { AUDIENCE, SPACE, audienceChange, dispatchFixture, type Fixture } from './testing/dispatch-fixture';

let redis: RedisClient;
const receivers: Receiver[] = [];
const ctx = { topic: 'changes', partition: 0, heartbeat: async () => undefined, isActive: () => true };

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
afterAll(async () => {
  redis.disconnect();
  await Promise.all(receivers.map((r) => r.stop()));
});

async function setup(respond?: ConstructorParameters<typeof Receiver>[0]): Promise<{ fx: Fixture; hook: Receiver }> {
  const hook = await new Receiver(respond).start();
  receivers.push(hook);
  return { fx: dispatchFixture(redis, { url: `${hook.url}/hook` }), hook };
}

/** What the evaluator stores before it emits the entries: the members' documents and the membership set. */
async function storeMembers(fx: Fixture, profileIds: string[], member = true, changeSeq?: number) {
  const docs: StoredProfile[] = profileIds.map((profileId) => ({
    ...emptyProfile({ spaceId: SPACE, profileId }),
    changeSeq,
    userId: `u-${profileId}`,
    externalIds: [{ type: 'user_id', id: `u-${profileId}` }],
    values: { [AUDIENCE.id]: { value: member, version: 1 } },
  }));
  await fx.profiles.save(
    docs.map((profile) => ({ profile, wakeAt: null })),
    docs.map((p) => ({ computationId: AUDIENCE.id, profileId: p.profileId, member })),
  );
}

const delivered = (hook: Receiver) => hook.ok().map((r) => [r.body.userId, r.body.traits[AUDIENCE.key]]);

it('#3: a live entry waiting for its retry when the sync runs stays the only call for that transition, every attempt one body', async () => {
  const { fx, hook } = await setup((_p, _b, nth) => (nth <= 2 ? { status: 503 } : { status: 200 }));
  await storeMembers(fx, ['p-a']);
  await fx.step.handle([fx.consumed(audienceChange('p-a', true), 0)], ctx);
  // The sync reads p-a as a member while the live call waits for its retry.
  await fx.resync.syncNewConnections();
  for (let i = 0; i < 5; i++) {
    fx.clock.now += 2000;
    await fx.drain();
  }
  expect(hook.requests.map((r) => r.status)).toEqual([503, 503, 200]);
  const first = hook.requests[0]!.body;
  expect(hook.requests.map((r) => r.body)).toEqual([first, first, first]);
});

it('#6: members the sync sent are not sent again by their live entries; later transitions are', async () => {
  const { fx, hook } = await setup();
  await storeMembers(fx, ['p-1', 'p-2', 'p-3']);
  await fx.resync.syncNewConnections();
  expect(delivered(hook).sort()).toEqual([
    ['u-p-1', true],
    ['u-p-2', true],
    ['u-p-3', true],
  ]);
  // The live entries behind the sync in the topic: the same transitions.
  const entries = ['p-1', 'p-2', 'p-3'].map((p, i) => fx.consumed(audienceChange(p, true), i));
  expect(await fx.step.handle(entries, ctx)).toEqual([{ kind: 'ok' }, { kind: 'ok' }, { kind: 'ok' }]);
  expect(hook.requests).toHaveLength(3);
  await fx.step.handle([fx.consumed(audienceChange('p-2', false), 3)], ctx);
  expect(delivered(hook).at(-1)).toEqual(['u-p-2', false]);
  expect(hook.requests).toHaveLength(4);
});

it('#6: a sync running while the live path delivers the same 300 entries sends each user once', async () => {
  const { fx, hook } = await setup();
  const ids = Array.from({ length: 300 }, (_, i) => `p-${i}`);
  await storeMembers(fx, ids);
  const chunks = [0, 100, 200].map((from) => ids.slice(from, from + 100).map((p, i) => fx.consumed(audienceChange(p, true), from + i)));
  await Promise.all([fx.resync.syncNewConnections(), ...chunks.map((chunk) => fx.step.handle(chunk, ctx))]);
  const perUser = new Map<string, number>();
  for (const r of hook.ok()) perUser.set(r.body.userId, (perUser.get(r.body.userId) ?? 0) + 1);
  expect(perUser.size).toBe(300);
  expect([...perUser].filter(([, n]) => n > 1)).toEqual([]);
});

it('the sync leaves a profile the live path claimed to it, even when the sync read an older value', async () => {
  const { fx, hook } = await setup();
  await storeMembers(fx, ['p-x']);
  // The live path delivered the entry, then the exit; the store still answers "member" to the sync (read before the exit was stored).
  await fx.step.handle([fx.consumed(audienceChange('p-x', true), 0), fx.consumed(audienceChange('p-x', false), 1)], ctx);
  await fx.resync.syncNewConnections();
  expect(delivered(hook)).toEqual([
    ['u-p-x', true],
    ['u-p-x', false],
  ]);
});

it("a profile's records still behind the sync in the topic are not sent after the newer value the sync read (the value never goes back)", async () => {
  const { fx, hook } = await setup();
  // The evaluator made entry (changeSeq 1), exit (2), re-entry (3) and saved "member at 3" before the dispatcher read any of them.
  await storeMembers(fx, ['p-new'], true, 3);
  await fx.resync.syncNewConnections();
  expect(delivered(hook)).toEqual([['u-p-new', true]]);
  const records = [true, false, true].map((value, i) => fx.consumed(audienceChange('p-new', value), i, i + 1));
  expect(await fx.step.handle(records, ctx)).toEqual([{ kind: 'ok' }, { kind: 'ok' }, { kind: 'ok' }]);
  expect(delivered(hook)).toEqual([['u-p-new', true]]);
  // The next transition is newer than the read: sent.
  await fx.step.handle([fx.consumed(audienceChange('p-new', false), 3, 4)], ctx);
  expect(delivered(hook)).toEqual([
    ['u-p-new', true],
    ['u-p-new', false],
  ]);
});
