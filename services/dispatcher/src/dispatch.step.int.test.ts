// The dispatch step and the retry loop with an injected clock: real Redis,
// a local HTTP receiver, no Kafka. Issue 17 #3 and #4 at unit speed (the
// end-to-end versions are in test/delivery-trust.test.ts).
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure } from '@engage/testing';
import { Receiver } from './testing/receiver';
import { AUDIENCE, audienceChange, dispatchFixture, type Fixture } from './testing/dispatch-fixture';

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

async function setup(respond: ConstructorParameters<typeof Receiver>[0], retryWindowMs?: number): Promise<{ fx: Fixture; hook: Receiver }> {
  const hook = await new Receiver(respond).start();
  receivers.push(hook);
  return { fx: dispatchFixture(redis, { url: `${hook.url}/hook`, retryWindowMs }), hook };
}

const valuesOf = (hook: Receiver, userId: string) =>
  hook.requests.filter((r) => r.body.userId === userId).map((r) => [r.status, r.body.traits[AUDIENCE.key]]);

describe('a chunk never waits for a retry (issue 17 #4)', () => {
  it("schedules the failing call, queues the profile's later change behind it, delivers other profiles, and the loop delivers both in order when due", async () => {
    let released = false;
    const { fx, hook } = await setup((_p, body) => (body.userId === 'u-p-a' && !released ? { status: 503 } : { status: 200 }));
    const chunk = [audienceChange('p-a', true), audienceChange('p-b', true), audienceChange('p-a', false)];
    const outcomes = await fx.step.handle(
      chunk.map((c, i) => fx.consumed(c, i)),
      ctx,
    );
    // Every record is done for the consumer (its offset may commit): delivered or durably scheduled.
    expect(outcomes).toEqual([{ kind: 'ok' }, { kind: 'ok' }, { kind: 'ok' }]);
    expect(valuesOf(hook, 'u-p-b')).toEqual([[200, true]]);
    expect(valuesOf(hook, 'u-p-a')).toEqual([[503, true]]); // the exit was not sent ahead of the entry
    expect(await fx.schedule.size()).toBe(2);

    // Not due before its backoff (500 ms); then tried again, still failing, and backed off further.
    fx.clock.now += 499;
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    expect(await fx.drain()).toBe(1);
    expect(valuesOf(hook, 'u-p-a')).toEqual([
      [503, true],
      [503, true],
    ]);
    // A later change of the waiting profile, in a later chunk, queues behind it too.
    await fx.step.handle([fx.consumed(audienceChange('p-a', true, { change_id: 'chg_reentry' }), 3)], ctx);
    expect(valuesOf(hook, 'u-p-a')).toHaveLength(2);

    released = true;
    fx.clock.now += 1000;
    expect(await fx.drain()).toBe(3);
    expect(valuesOf(hook, 'u-p-a')).toEqual([
      [503, true],
      [503, true],
      [200, true],
      [200, false],
      [200, true],
    ]);
    expect(await fx.schedule.size()).toBe(0);
    expect(fx.letters).toEqual([]);
  });

  it('dead-letters a call whose retry window is spent with its original record and the reason; the next call of the profile follows', async () => {
    const { fx, hook } = await setup((_p, body) => (body.traits[AUDIENCE.key] === true ? { status: 503 } : { status: 200 }), 10_000);
    const entry = audienceChange('p-a', true);
    await fx.step.handle([fx.consumed(entry, 7), fx.consumed(audienceChange('p-a', false), 8)], ctx);
    for (let i = 0; i < 10 && fx.letters.length === 0; i++) {
      fx.clock.now += 5000;
      await fx.drain();
    }
    expect(fx.letters.map((l) => ({ ...l, value: JSON.parse(String(l.value)) }))).toEqual([
      {
        key: 'p-a',
        value: entry,
        headers: {},
        reason: expect.stringMatching(/^HTTP 503 from Hook; retry window of 10000 ms spent after \d+ attempts$/),
        step: 'deliver',
        source: { topic: 'changes', partition: 0, offset: '7' },
      },
    ]);
    // The exit waited behind the entry and goes once the entry is given up on.
    fx.clock.now += 1;
    await fx.drain();
    expect(valuesOf(hook, 'u-p-a').at(-1)).toEqual([200, false]);
    expect(await fx.schedule.size()).toBe(0);
  });

  it('dead-letters a refused call at once, in the chunk, without scheduling it', async () => {
    const { fx } = await setup(() => ({ status: 400 }));
    const outcomes = await fx.step.handle([fx.consumed(audienceChange('p-a', true), 0)], ctx);
    expect(outcomes).toEqual([{ kind: 'dlq', reason: 'HTTP 400 from Hook (not retriable)', step: 'deliver' }]);
    expect(await fx.schedule.size()).toBe(0);
  });
});

describe('a retried call is the same call (issue 17 #3)', () => {
  it('500, 503, 429 (Retry-After: 2) then 200: four attempts of one body, the third retry not before the Retry-After', async () => {
    const answers = [500, 503, 429];
    const { fx, hook } = await setup((_p, _b, nth) =>
      nth <= 3 ? { status: answers[nth - 1]!, headers: nth === 3 ? { 'retry-after': '2' } : undefined } : { status: 200 },
    );
    const change = audienceChange('p-a', true);
    await fx.step.handle([fx.consumed(change, 0)], ctx);
    fx.clock.now += 500; // first backoff
    await fx.drain();
    fx.clock.now += 1000; // second backoff
    await fx.drain();
    expect(hook.requests.map((r) => r.status)).toEqual([500, 503, 429]);
    fx.clock.now += 1999;
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    await fx.drain();
    expect(hook.requests.map((r) => r.status)).toEqual([500, 503, 429, 200]);
    const first = hook.requests[0]!.body;
    expect(hook.requests.map((r) => r.body)).toEqual([first, first, first, first]);
    // Delivered once: a redelivery of the record sends nothing.
    await fx.step.handle([fx.consumed(change, 0)], ctx);
    expect(hook.requests).toHaveLength(4);
  });

  it('a 429 after a run of failures comes back at its Retry-After, not at the backoff the failures built up', async () => {
    // Five 503s (backoffs 0.5, 1, 2, 4, 8 s with the fixture's jitter pinned), then a 429 asking for 1 s: the next
    // backoff would be 16 s, the destination asked for 1.
    const { fx, hook } = await setup((_p, _b, nth) =>
      nth <= 5 ? { status: 503 } : nth === 6 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 },
    );
    await fx.step.handle([fx.consumed(audienceChange('p-a', true), 0)], ctx);
    for (const backoff of [500, 1000, 2000, 4000, 8000]) {
      fx.clock.now += backoff;
      await fx.drain();
    }
    expect(hook.requests.map((r) => r.status)).toEqual([503, 503, 503, 503, 503, 429]);
    fx.clock.now += 999;
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    await fx.drain();
    expect(hook.requests.map((r) => r.status)).toEqual([503, 503, 503, 503, 503, 429, 200]);
  });
});

it("one run of the retry loop drains a profile's queue once its head is delivered, not one call per poll", async () => {
  let released = false;
  const { fx, hook } = await setup(() => (released ? { status: 200 } : { status: 503 }));
  const chunk = [audienceChange('p-a', true), audienceChange('p-a', false), audienceChange('p-a', true, { change_id: 'chg_again' })];
  await fx.step.handle(
    chunk.map((c, i) => fx.consumed(c, i)),
    ctx,
  );
  expect(await fx.schedule.size()).toBe(3);
  released = true;
  fx.clock.now += 500;
  // The head is due; delivering it makes the next due, and so on, within the same run.
  expect(await fx.loop.run()).toBe(3);
  expect(valuesOf(hook, 'u-p-a')).toEqual([
    [503, true],
    [200, true],
    [200, false],
    [200, true],
  ]);
  expect(await fx.schedule.size()).toBe(0);
});

it('a deleted destination: every call waiting for its retry (due or not, queued behind another) goes to the DLQ, none stays in Redis', async () => {
  const { fx, hook } = await setup(() => ({ status: 503 }));
  const chunk = [audienceChange('p-a', true), audienceChange('p-b', true), audienceChange('p-a', false)];
  await fx.step.handle(
    chunk.map((c, i) => fx.consumed(c, i)),
    ctx,
  );
  expect(await fx.schedule.size()).toBe(3);
  expect(await fx.loop.abandonAll('destination dst_1 was deleted')).toBe(3);
  expect(await fx.schedule.size()).toBe(0);
  expect(fx.letters.map((l) => l.reason)).toEqual(Array(3).fill('destination dst_1 was deleted'));
  // Nothing was tried again on the way.
  expect(hook.requests).toHaveLength(2);
  // And nothing of the schedule is left under the destination's keys.
  expect(await redis.keys(`${fx.keyPrefix}dispatch:retry*`)).toEqual([]);
});
