// Journey send steps through the dispatch step and the initial-sync loop
// (CONTRACT.md section 9): real Redis, a local HTTP receiver, no Kafka. The
// end-to-end version (dispatcher process, Kafka, list destination) is
// test/delivery-journeys.test.ts.
import type { ActionMapping } from '@engage/config-store';
import type { ActionEvent } from '@engage/delivery';
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure } from '@engage/testing';
import { Receiver } from './testing/receiver';
import { AUDIENCE, SPACE, audienceChange, dispatchFixture, type Fixture } from './testing/dispatch-fixture';

let redis: RedisClient;
const receivers: Receiver[] = [];
const ctx = { topic: 'changes', partition: 0, heartbeat: async () => undefined, isActive: () => true };

const JOURNEY = 'jou_1';
const OPENED = 'j_o_first_purchase__opened_email_ab12cd';
const THANKS = 'j_o_first_purchase__thank_you_9zx8yw';

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
afterAll(async () => {
  redis.disconnect();
  await Promise.all(receivers.map((r) => r.stop()));
});

/** con_1: the "Opened Email" step (identify and track); con_thanks: the "Thank You" step; con_aud: an audience, all to one webhook. */
async function setup(): Promise<{ fx: Fixture; hook: Receiver }> {
  const hook = await new Receiver().start();
  receivers.push(hook);
  const fx = dispatchFixture(redis, {
    url: `${hook.url}/hook`,
    connection: { identify: true, track: true },
    connectionConfig: { computationClass: 'journey_step', computationId: JOURNEY, computationKey: OPENED },
    extraConnections: [
      { id: 'con_thanks', computationClass: 'journey_step', computationId: JOURNEY, computationKey: THANKS },
      { id: 'con_aud', computationClass: 'audience', computationId: AUDIENCE.id, computationKey: undefined },
    ],
  });
  return { fx, hook };
}

const stepChange = (profileId: string, key: string, over: Parameters<typeof audienceChange>[2] = {}) =>
  audienceChange(profileId, true, {
    computation_class: 'journey_step',
    computation_id: JOURNEY,
    computation_key: key,
    previous: null,
    ...over,
  });

const personas = (key: string) => ({
  computation_class: 'audience',
  computation_id: JOURNEY,
  computation_key: key,
  namespace: SPACE,
  space_id: SPACE,
});

describe('journey step connections', () => {
  it('match only changes of their own step key; audience connections are unchanged', async () => {
    const { fx } = await setup();
    const ids = (change: Parameters<Fixture['step']['connectionsFor']>[0]) => fx.step.connectionsFor(change).map((x) => x.connection.id);
    expect(ids(stepChange('p', OPENED))).toEqual(['con_1']);
    expect(ids(stepChange('p', THANKS))).toEqual(['con_thanks']);
    expect(ids(stepChange('p', 'j_o_first_purchase__other_000000'))).toEqual([]);
    // Another journey's step of the same key name never matches (the journey id differs).
    expect(ids(stepChange('p', OPENED, { computation_id: 'jou_2' }))).toEqual([]);
    expect(ids(audienceChange('p', true))).toEqual(['con_aud']);
    expect(ids(audienceChange('p', false))).toEqual(['con_aud']);
    // Never an exit, never a re-sync.
    expect(ids(stepChange('p', OPENED, { value: false }))).toEqual([]);
    expect(ids(stepChange('p', OPENED, { reason: 'resync' }))).toEqual([]);
  });

  it('a step change sends exactly the identify and the track of its step, and a user reaching the step again is sent again', async () => {
    const { fx, hook } = await setup();
    const first = stepChange('p-a', OPENED);
    expect(await fx.step.handle([fx.consumed(first, 0)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(hook.requests.map((r) => ({ status: r.status, body: r.body }))).toEqual([
      {
        status: 200,
        body: {
          type: 'identify',
          userId: 'u-p-a',
          messageId: expect.stringMatching(/^personas_[0-9a-f]{32}$/),
          timestamp: '2026-11-22T10:00:00.000Z',
          traits: { [OPENED]: true },
          context: { personas: personas(OPENED) },
          integrations: { All: false, Hook: true },
        },
      },
      {
        status: 200,
        body: {
          type: 'track',
          event: 'Audience Entered',
          userId: 'u-p-a',
          messageId: expect.stringMatching(/^personas_[0-9a-f]{32}$/),
          timestamp: '2026-11-22T10:00:00.000Z',
          properties: { audience_key: OPENED, [OPENED]: true },
          context: { personas: personas(OPENED) },
          integrations: { All: false, Hook: true },
        },
      },
    ]);
    // A redelivered record is not sent twice; a re-entry (another change id, the same value) is.
    await fx.step.handle([fx.consumed(first, 0)], ctx);
    expect(hook.requests).toHaveLength(2);
    await fx.step.handle([fx.consumed(stepChange('p-a', OPENED, { change_id: 'chg_reentry' }), 1)], ctx);
    expect(hook.requests.map((r) => [r.body.type, r.body.userId])).toEqual([
      ['identify', 'u-p-a'],
      ['track', 'u-p-a'],
      ['identify', 'u-p-a'],
      ['track', 'u-p-a'],
    ]);
    // The live path took no handover claims for the journey connection.
    expect(await redis.exists(`${fx.keyPrefix}dispatch:handover:{con_1}`)).toBe(0);
  });

  it('the initial-sync loop marks a journey connection synced with nothing sent, and leaves the audience connection to its sync', async () => {
    const { fx, hook } = await setup();
    await fx.resync.syncNewConnections();
    expect(hook.requests).toEqual([]);
    expect(await redis.exists(`${fx.keyPrefix}dispatch:synced:con_1`)).toBe(1);
    expect(await redis.exists(`${fx.keyPrefix}dispatch:synced:con_thanks`)).toBe(1);
    expect(await redis.hget(`${fx.keyPrefix}status:connection:con_1`, 'state')).toBe('Synced');
    expect(await redis.keys(`${fx.keyPrefix}dispatch:handover:*`)).toEqual([]);
    // A sync asked for again (its marker cleared): done again, still nothing to send.
    await redis.del(`${fx.keyPrefix}dispatch:synced:con_1`);
    await fx.resync.syncNewConnections();
    expect(await redis.exists(`${fx.keyPrefix}dispatch:synced:con_1`)).toBe(1);
    expect(hook.requests).toEqual([]);
  });

  it('Actions destinations: a mapping subscribed to track "Audience Entered" runs on the step\'s track call, as for an audience entry', async () => {
    const ran: Array<{ mappingId: string; events: ActionEvent[] }> = [];
    const mappings: ActionMapping[] = [
      { id: 'm_entered', actionId: 'trackEvent', subscribe: 'type = "track" and event = "Audience Entered"', mapping: {}, enabled: true },
      { id: 'm_exited', actionId: 'trackEvent', subscribe: 'type = "track" and event = "Audience Exited"', mapping: {}, enabled: true },
    ];
    const fx = dispatchFixture(redis, {
      url: 'unused',
      destination: { name: 'Braze', type: 'actions', slug: 'braze', settings: {}, mappings },
      connection: { identify: true, track: true },
      connectionConfig: { computationClass: 'journey_step', computationId: JOURNEY, computationKey: OPENED },
      actions: {
        run: async (_d, mapping, events) => {
          ran.push({ mappingId: mapping.id, events });
          return events.map(() => ({ ok: true as const, status: 200 }));
        },
        batchSize: () => 1,
      },
    });
    expect(await fx.step.handle([fx.consumed(stepChange('p-b', OPENED), 0), fx.consumed(stepChange('p-c', THANKS), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(ran).toEqual([
      {
        mappingId: 'm_entered',
        events: [
          {
            type: 'track',
            event: 'Audience Entered',
            userId: 'u-p-b',
            messageId: expect.stringMatching(/^personas_[0-9a-f]{32}$/),
            timestamp: '2026-11-22T10:00:00.000Z',
            receivedAt: '2026-11-22T10:00:00.000Z',
            properties: { audience_key: OPENED, [OPENED]: true },
            context: { personas: personas(OPENED) },
            integrations: { All: false, Braze: true },
          },
        ],
      },
    ]);
  });
});
