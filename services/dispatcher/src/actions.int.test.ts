// Actions destinations (issue 19, CONTRACT.md section 8): an audience change
// through the dispatch step to the vendor's request, run by Segment's own
// definition with the definition's presets as mappings, over real HTTP to an
// emulator of the vendor's documented API (DESTINATION_HTTP_OVERRIDES sends
// the vendor host there). Real Redis, an injected clock for the retry schedule.
import { presetMappings } from '@engage/actions';
import type { DestinationConfig } from '@engage/config-store';
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure } from '@engage/testing';
import { ActionsRuntime } from './adapters/actions.runtime';
import { AUDIENCE, audienceChange, dispatchFixture, type Fixture } from './testing/dispatch-fixture';
import { brazeEmulator, type Emulator } from './testing/vendor-emulators';

let redis: RedisClient;
const emulators: Emulator[] = [];
const runtimes: ActionsRuntime[] = [];
const ctx = { topic: 'changes', partition: 0, heartbeat: async () => undefined, isActive: () => true };

beforeAll(() => {
  redis = createRedis({ url: testInfrastructure().redisUrl });
});
afterAll(async () => {
  redis.disconnect();
  runtimes.forEach((r) => r.close());
  await Promise.all(emulators.map((e) => e.receiver.stop()));
});

let ids = 0;
const newId = () => `map_${++ids}`;

async function actionsSetup(
  slug: string,
  host: string,
  emulator: Emulator,
  settings: Record<string, unknown>,
  connection: { identify: boolean; track: boolean } = { identify: true, track: false },
): Promise<Fixture> {
  emulators.push(emulator);
  const actions = new ActionsRuntime({ overrides: { [host]: emulator.target } });
  runtimes.push(actions);
  const destination: Partial<DestinationConfig> = {
    name: slug,
    type: 'actions',
    slug,
    settings,
    mappings: presetMappings(slug, newId),
  };
  return dispatchFixture(redis, { url: 'unused', destination, connection, actions });
}

const statusHash = async (fx: Fixture) => {
  await fx.status.flush();
  return redis.hgetall(`${fx.keyPrefix}status:destination:dst_1`);
};

describe('Braze (Actions): POST /users/track with the audience key as a custom attribute', () => {
  const BRAZE = 'rest.iad-01.braze.com';
  const settings = { api_key: 'braze-key', app_id: 'app-1', endpoint: `https://${BRAZE}` };

  it('an audience entry with identify on reaches Braze as CONTRACT.md section 8 shows, the exit as false', async () => {
    const braze = await brazeEmulator('braze-key');
    const fx = await actionsSetup('braze', BRAZE, braze, settings);
    const outcomes = await fx.step.handle([fx.consumed(audienceChange('p-1', true), 0), fx.consumed(audienceChange('p-1', false), 1)], ctx);
    expect(outcomes).toEqual([{ kind: 'ok' }, { kind: 'ok' }]);
    const requests = braze.receiver.requests;
    expect(requests.map((r) => [r.method, r.path, r.status, r.headers.authorization, r.headers.host])).toEqual([
      ['POST', '/users/track', 201, 'Bearer braze-key', BRAZE],
      ['POST', '/users/track', 201, 'Bearer braze-key', BRAZE],
    ]);
    expect(requests.map((r) => r.body.attributes)).toEqual([
      [expect.objectContaining({ external_id: 'u-p-1', [AUDIENCE.key]: true })],
      [expect.objectContaining({ external_id: 'u-p-1', [AUDIENCE.key]: false })],
    ]);
    expect(fx.letters).toEqual([]);
  });

  it('a track connection runs the Track Calls preset: an Audience Entered event with the audience key property', async () => {
    const braze = await brazeEmulator('braze-key');
    const fx = await actionsSetup('braze', BRAZE, braze, settings, { identify: false, track: true });
    await fx.step.handle([fx.consumed(audienceChange('p-2', true), 0)], ctx);
    expect(braze.receiver.ok('/users/track').map((r) => r.body.events)).toEqual([
      [
        expect.objectContaining({
          external_id: 'u-p-2',
          name: 'Audience Entered',
          properties: expect.objectContaining({ audience_key: AUDIENCE.key, [AUDIENCE.key]: true }),
        }),
      ],
    ]);
  });

  it("retries a 429 after its Retry-After with the same call, and the profile's next change waits behind it", async () => {
    const braze = await brazeEmulator('braze-key');
    braze.faults.push({ status: 429, headers: { 'retry-after': '3' }, body: { message: 'Rate limit exceeded' } });
    const fx = await actionsSetup('braze', BRAZE, braze, settings);
    const outcomes = await fx.step.handle([fx.consumed(audienceChange('p-3', true), 0), fx.consumed(audienceChange('p-3', false), 1)], ctx);
    expect(outcomes).toEqual([{ kind: 'ok' }, { kind: 'ok' }]); // scheduled, so the offsets may commit
    expect(braze.receiver.requests.map((r) => r.status)).toEqual([429]);
    expect(await fx.schedule.size()).toBe(2);

    fx.clock.now += 2999; // Retry-After is 3 s, more than the 500 ms backoff
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    expect(await fx.drain()).toBe(2);
    const [first, retry, exit] = braze.receiver.requests;
    expect([first!.status, retry!.status, exit!.status]).toEqual([429, 201, 201]);
    expect(retry!.body).toEqual(first!.body); // the same call
    expect(exit!.body.attributes[0][AUDIENCE.key]).toBe(false);
    expect(fx.letters).toEqual([]);
    expect(await statusHash(fx)).toMatchObject({ retried: '1', sent: '2' });
  });

  it('dead-letters on 401 without a retry and flags the destination (credentials refused)', async () => {
    const braze = await brazeEmulator('braze-key');
    const fx = await actionsSetup('braze', BRAZE, braze, { ...settings, api_key: 'revoked-key' });
    const outcomes = await fx.step.handle([fx.consumed(audienceChange('p-4', true), 0)], ctx);
    expect(outcomes).toEqual([{ kind: 'dlq', reason: expect.stringMatching(/^HTTP 401 \(credentials refused\)/), step: 'deliver' }]);
    expect(braze.receiver.requests.map((r) => [r.status, r.headers.authorization])).toEqual([[401, 'Bearer revoked-key']]);
    expect(await fx.schedule.size()).toBe(0); // not retried
    expect(await statusHash(fx)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });
  });

  it('dead-letters a 400 at once with the vendor message', async () => {
    const braze = await brazeEmulator('braze-key');
    braze.faults.push({ status: 400, body: { message: "'attributes' has an invalid custom attribute" } });
    const fx = await actionsSetup('braze', BRAZE, braze, settings);
    const outcomes = await fx.step.handle([fx.consumed(audienceChange('p-5', true), 0)], ctx);
    expect(outcomes).toEqual([{ kind: 'dlq', reason: expect.stringContaining('invalid custom attribute'), step: 'deliver' }]);
    expect(outcomes[0]).toMatchObject({ reason: expect.stringMatching(/^HTTP 400/) });
    expect(await fx.schedule.size()).toBe(0);
  });
});
