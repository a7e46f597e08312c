// JourneyRunner against the real broker, registry and Redis, with an injected
// clock: entries from audience changes, waits on timers, splits on the
// condition audiences' members, send steps as journey_step change records,
// re-entry rules, versions, pause, and the compare-and-set that keeps two
// movers of one user from both moving them.
import type { JourneyConfig, JourneyStep, JourneyVersion } from '@engage/config-store';
import { ConfigStore } from '@engage/config-store';
import { createKafka, createProducer, ensureTopics, topicRegistry, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { emptyProfile, ProfileStateRepository } from '@engage/profile-store';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec, type ComputationChange } from '@engage/schemas';
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import type { Consumer, Kafka } from 'kafkajs';
import { JourneyRunner } from './journey.runner';

const log = silentLogger();
const topics = topicRegistry(`${uniqueName('journeys')}.`);
const SPACE = 'spa_j';
const T0 = Date.parse('2026-12-04T10:00:00Z');
let kafka: Kafka;
let producer: Producer;
let consumer: Consumer;
let redis: RedisClient;
let codec: SchemaCodec;
const produced: ComputationChange[] = [];

beforeAll(async () => {
  kafka = createKafka({ brokers: testInfrastructure().kafkaBrokers, clientId: 'journeys-test' }, { log });
  await ensureTopics(kafka, [topics.computationsChanges]);
  codec = new SchemaCodec({ url: testInfrastructure().schemaRegistryUrl });
  await codec.registerTopics([topics.computationsChanges]);
  producer = createProducer(kafka);
  await producer.connect();
  redis = createRedis({ url: testInfrastructure().redisUrl });
  consumer = kafka.consumer({ groupId: uniqueName('journeys-test') });
  await consumer.connect();
  await consumer.subscribe({ topic: topics.computationsChanges.name, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void produced.push(await codec.decode<ComputationChange>(message.value!)) });
});
afterAll(async () => {
  await consumer.disconnect();
  await producer.disconnect();
  redis.disconnect();
});

const send = (id: string, name: string, next: string): JourneyStep => ({
  id,
  type: 'send',
  name,
  destinations: [{ destinationId: 'dst_1', settings: { identify: true, track: true } }],
  next,
});
const STEPS: JourneyStep[] = [
  send('welcome', 'Opened Email', 'wait'),
  { id: 'wait', type: 'wait', duration: '2 seconds', next: 'bought' },
  { id: 'bought', type: 'split', query: "event('Order Completed').count() >= 1", true: 'thanks', false: 'nudge' },
  send('thanks', 'Thank You', 'exit'),
  send('nudge', 'Come Back', 'exit'),
  { id: 'exit', type: 'exit' },
];
const KEYS = {
  welcome: 'j_o_first_purchase__opened_email_aaaaa1',
  thanks: 'j_o_first_purchase__thank_you_aaaaa2',
  nudge: 'j_o_first_purchase__come_back_aaaaa3',
};

function version(n: number, steps = STEPS, stepKeys: Record<string, string> = KEYS): JourneyVersion {
  return {
    version: n,
    publishedAt: new Date(T0 - 60_000).toISOString(),
    entryComputationId: 'aud_entry',
    start: steps[0]!.id,
    steps,
    conditions: { bought: ['aud_bought'] },
    stepKeys,
  };
}

function journey(id: string, over: Partial<JourneyConfig> = {}): JourneyConfig {
  return {
    id,
    spaceId: SPACE,
    name: 'First Purchase',
    key: 'first_purchase',
    status: 'Live',
    entry: { audienceId: 'aud_entry' },
    reentry: 'never',
    includeExistingMembers: false,
    start: 'welcome',
    steps: STEPS,
    stepKeys: KEYS,
    versions: [version(1)],
    createdAt: new Date(T0).toISOString(),
    updatedAt: new Date(T0).toISOString(),
    ...over,
  };
}

let storeVersion = 0;
function put(store: ConfigStore, j: JourneyConfig): void {
  store.apply({
    kind: 'journey',
    id: j.id,
    space_id: j.spaceId,
    deleted: false,
    version: ++storeVersion,
    updated_at: T0,
    body_json: JSON.stringify(j),
  });
}

/** A runner on its own key prefix, its clock in the test's hands. */
async function setup() {
  const keyPrefix = `${uniqueName('jr')}:`;
  const clock = { now: T0 };
  const store = new ConfigStore({ topic: topics.config.name, groupPrefix: 'unused' }, { kafka, codec, log });
  const profiles = new ProfileStateRepository({ keyPrefix }, { redis });
  const runner = new JourneyRunner(
    { keyPrefix, changesTopic: topics.computationsChanges.name, batchSize: 100, leaseMs: 60_000 },
    { store, redis, producer, codec, profiles, log, now: () => clock.now },
  );
  return { keyPrefix, clock, store, profiles, runner };
}

const entered = (profileId: string, over: Partial<ComputationChange> = {}): ComputationChange => ({
  change_id: uniqueName('chg'),
  space_id: SPACE,
  computation_id: 'aud_entry',
  computation_key: 'entry',
  computation_class: 'audience',
  level: 'user',
  profile_id: profileId,
  value: true,
  previous: false,
  value_is_json: false,
  reason: 'realtime',
  occurred_at: T0,
  emitted_at: T0,
  external_ids: [],
  user_id: null,
  anonymous_id: null,
  traits_json: '{}',
  ...over,
});
const asMessages = (changes: ComputationChange[]) =>
  changes.map((value, i) => ({
    topic: 't',
    partition: 0,
    offset: String(i),
    key: value.profile_id,
    timestamp: 0,
    headers: {},
    value,
    raw: {} as never,
  }));

/** The records of send steps (what destinations get). */
const sentFor = (journeyId: string, profileId: string) =>
  produced.filter((c) => c.computation_id === journeyId && c.profile_id === profileId && c.computation_key.startsWith('j_o_'));
/** Every step's record, in order: the journey's trail. */
const trailOf = (journeyId: string, profileId: string) =>
  produced.filter((c) => c.computation_id === journeyId && c.profile_id === profileId).map((c) => c.computation_key);

async function stats(keyPrefix: string, journeyId: string): Promise<Record<string, string>> {
  return redis.hgetall(`${keyPrefix}jrn:stats:{${journeyId}}`);
}

test('entry sends, waits, then the split takes each user down their branch to the exit', async () => {
  const { keyPrefix, clock, store, profiles, runner } = await setup();
  const j = journey(uniqueName('jou'));
  put(store, j);
  const buyer = uniqueName('p-buyer');
  const browser = uniqueName('p-browser');
  await profiles.save(
    [
      {
        profile: {
          ...emptyProfile({ spaceId: SPACE, profileId: buyer }),
          userId: 'u-buyer',
          traits: { email: 'b@example.com' },
          externalIds: [{ type: 'user_id', id: 'u-buyer' }],
        },
        wakeAt: null,
      },
    ],
    [],
  );
  // The entry record names the user (the evaluator produces it before it saves the profile).
  await runner.handle(
    asMessages([
      entered(buyer, { user_id: 'u-buyer', external_ids: [{ type: 'user_id', id: 'u-buyer' }], traits_json: '{"email":"b@example.com"}' }),
      entered(browser),
    ]),
  );

  await waitFor(() => sentFor(j.id, buyer).length === 1 && sentFor(j.id, browser).length === 1);
  const welcome = sentFor(j.id, buyer)[0]!;
  expect(welcome).toMatchObject({
    computation_class: 'journey_step',
    computation_id: j.id,
    computation_key: KEYS.welcome,
    level: 'user',
    value: true,
    previous: null,
    reason: 'realtime',
    user_id: 'u-buyer',
    external_ids: [{ type: 'user_id', id: 'u-buyer' }],
  });
  expect(JSON.parse(welcome.traits_json)).toEqual({ email: 'b@example.com' });
  expect(await stats(keyPrefix, j.id)).toEqual({ 'welcome:entered': '2', 'wait:entered': '2', 'wait:current': '2' });

  // Not due yet: nobody moves.
  clock.now = T0 + 1_999;
  expect(await runner.tick()).toBe(0);

  // The buyer bought meanwhile (the evaluator keeps the condition audience's members).
  await redis.sadd(`${keyPrefix}rt:members:{aud_bought}`, buyer);
  clock.now = T0 + 2_000;
  expect(await runner.tick()).toBe(2);
  await waitFor(() => sentFor(j.id, buyer).length === 2 && sentFor(j.id, browser).length === 2);
  expect(sentFor(j.id, buyer).map((c) => c.computation_key)).toEqual([KEYS.welcome, KEYS.thanks]);
  expect(sentFor(j.id, browser).map((c) => c.computation_key)).toEqual([KEYS.welcome, KEYS.nudge]);
  // Every step reached has its record (the others under `<journey key>__<step id>`, which no connection names).
  await waitFor(() => trailOf(j.id, browser).length === 5);
  expect(trailOf(j.id, browser)).toEqual([
    KEYS.welcome,
    'first_purchase__wait',
    'first_purchase__bought',
    KEYS.nudge,
    'first_purchase__exit',
  ]);
  expect(await stats(keyPrefix, j.id)).toEqual({
    'welcome:entered': '2',
    'wait:entered': '2',
    'wait:current': '0',
    'bought:entered': '2',
    'thanks:entered': '1',
    'nudge:entered': '1',
    'exit:entered': '2',
  });
  expect(await runner.tick()).toBe(0);
});

test('re-entry: never by default; after_exit enters again as a new run with new change ids', async () => {
  const { clock, store, runner } = await setup();
  const never = journey(uniqueName('jou'), { steps: [send('welcome', 'Opened Email', 'exit'), { id: 'exit', type: 'exit' }] });
  never.versions = [{ ...version(1, never.steps), start: 'welcome' }];
  const again = { ...never, id: uniqueName('jou'), reentry: 'after_exit' as const };
  put(store, never);
  put(store, again);
  const p = uniqueName('p');
  await runner.handle(asMessages([entered(p)]));
  clock.now += 1000;
  await runner.handle(asMessages([entered(p, { previous: false })]));
  await waitFor(() => sentFor(again.id, p).length === 2);
  // An absence check on `never`: its only record arrived before `again`'s second, on the same partition.
  expect(sentFor(never.id, p)).toHaveLength(1);
  const [first, second] = sentFor(again.id, p);
  expect(first!.change_id).not.toBe(second!.change_id);
});

test('a user inside is not entered twice, and two movers of one timer move the user once', async () => {
  const { clock, store, runner } = await setup();
  const j = journey(uniqueName('jou'));
  put(store, j);
  const p = uniqueName('p');
  await runner.handle(asMessages([entered(p)]));
  await runner.handle(asMessages([entered(p)])); // a redelivery, or a second entry while inside
  clock.now = T0 + 2_000;
  const moved = await Promise.all([runner.tick(), runner.tick()]);
  expect(moved.reduce((a, b) => a + b, 0)).toBe(1);
  await waitFor(() => sentFor(j.id, p).length >= 2);
  // Quiet period: a second mover's records would be on the same partition right behind.
  const marker = uniqueName('p-marker');
  await runner.handle(asMessages([entered(marker)]));
  await waitFor(() => sentFor(j.id, marker).length === 1);
  expect(sentFor(j.id, p).map((c) => c.computation_key)).toEqual([KEYS.welcome, KEYS.nudge]);
});

test('a published edit does not move users already inside; a paused journey enters nobody and holds its timers', async () => {
  const { clock, store, runner } = await setup();
  const j = journey(uniqueName('jou'));
  put(store, j);
  const early = uniqueName('p-early');
  await runner.handle(asMessages([entered(early)]));
  // Version 2: after the wait, straight to a new send step.
  const v2Steps: JourneyStep[] = [
    send('welcome', 'Opened Email', 'wait'),
    { id: 'wait', type: 'wait', duration: '2 seconds', next: 'v2' },
    send('v2', 'Second Version', 'exit'),
    { id: 'exit', type: 'exit' },
  ];
  const v2Keys = { welcome: KEYS.welcome, v2: 'j_o_first_purchase__second_version_aaaaa4' };
  put(store, { ...j, versions: [version(1), { ...version(2, v2Steps, v2Keys), conditions: {} }] });
  const late = uniqueName('p-late');
  await runner.handle(asMessages([entered(late)]));
  clock.now = T0 + 2_000;
  expect(await runner.tick()).toBe(2);
  await waitFor(() => sentFor(j.id, early).length === 2 && sentFor(j.id, late).length === 2);
  expect(sentFor(j.id, early)[1]!.computation_key).toBe(KEYS.nudge); // v1's split
  expect(sentFor(j.id, late)[1]!.computation_key).toBe(v2Keys.v2);

  // Paused: nobody enters, timers wait; resumed: the waiting user moves on.
  // (its own entry audience: the journey above enters on aud_entry)
  const paused = journey(uniqueName('jou'), { versions: [{ ...version(1), entryComputationId: 'aud_paused' }] });
  put(store, paused);
  const waiting = uniqueName('p-waiting');
  await runner.handle(asMessages([entered(waiting, { computation_id: 'aud_paused' })]));
  put(store, { ...paused, status: 'Paused' });
  const refused = uniqueName('p-refused');
  await runner.handle(asMessages([entered(refused, { computation_id: 'aud_paused' })]));
  clock.now = T0 + 10_000;
  expect(await runner.tick()).toBe(0);
  put(store, { ...paused, status: 'Live' });
  expect(await runner.tick()).toBe(1);
  await waitFor(() => sentFor(paused.id, waiting).length === 2);
  expect(sentFor(paused.id, refused)).toEqual([]);
});

test('existing members enter on the first publish only when asked; backfill entries are ignored otherwise', async () => {
  const { keyPrefix, store, runner } = await setup();
  const member = uniqueName('p-member');
  await redis.sadd(`${keyPrefix}rt:members:{aud_entry}`, member);
  const ignoring = journey(uniqueName('jou'));
  const including = journey(uniqueName('jou'), { includeExistingMembers: true });
  put(store, ignoring);
  put(store, including);
  await runner.tick();
  await runner.tick(); // seeded once
  await runner.handle(asMessages([entered(uniqueName('p-backfilled'), { reason: 'backfill', profile_id: 'p-bf' })]));
  await waitFor(() => sentFor(including.id, member).length === 1 && sentFor(including.id, 'p-bf').length === 1);
  expect(sentFor(including.id, member)[0]!.reason).toBe('batch');
  expect(sentFor(ignoring.id, member)).toEqual([]);
  expect(sentFor(ignoring.id, 'p-bf')).toEqual([]);
});

test('a user merged into another profile while waiting moves on as the survivor: its ids, its membership', async () => {
  const { keyPrefix, clock, store, profiles, runner } = await setup();
  const j = journey(uniqueName('jou'));
  put(store, j);
  const merged = uniqueName('p-merged');
  const survivor = uniqueName('p-survivor');
  await runner.handle(asMessages([entered(merged)]));
  await profiles.save(
    [
      {
        profile: {
          ...emptyProfile({ spaceId: SPACE, profileId: survivor }),
          userId: 'u-survivor',
          externalIds: [{ type: 'user_id', id: 'u-survivor' }],
        },
        wakeAt: null,
      },
    ],
    [],
    [{ spaceId: SPACE, profileId: merged, mergedInto: survivor }],
  );
  await redis.sadd(`${keyPrefix}rt:members:{aud_bought}`, survivor);
  clock.now = T0 + 2_000;
  expect(await runner.tick()).toBe(1);
  await waitFor(() => sentFor(j.id, survivor).length > 0 && trailOf(j.id, survivor).length === 3);
  expect(sentFor(j.id, survivor)).toEqual([
    expect.objectContaining({ computation_key: KEYS.thanks, user_id: 'u-survivor', external_ids: [{ type: 'user_id', id: 'u-survivor' }] }),
  ]);
});

test('a crash between producing a step and committing the progress repeats the walk with the same change ids', async () => {
  const { keyPrefix, store, profiles } = await setup();
  const j = journey(uniqueName('jou'));
  put(store, j);
  // Redis whose next compare-and-set "dies" (the process was killed after producing, before committing).
  let crashes = 1;
  const crashing = new Proxy(redis, {
    get(target, prop, receiver) {
      // The progress commit: the runner's script whose first key is the user's progress (jrn:p:), called by SHA.
      if (prop === 'evalsha' || prop === 'eval')
        return (...args: unknown[]) => {
          if (String(args[2]).includes('jrn:p:') && crashes-- > 0) return Promise.reject(new Error('killed'));
          return (Reflect.get(target, prop) as (...a: unknown[]) => unknown).apply(target, args);
        };
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const runner = new JourneyRunner(
    { keyPrefix, changesTopic: topics.computationsChanges.name, batchSize: 100, leaseMs: 60_000 },
    { store, redis: crashing, producer, codec, profiles, log, now: () => T0 },
  );
  const p = uniqueName('p');
  await expect(runner.handle(asMessages([entered(p)]))).rejects.toThrow('killed');
  await runner.handle(asMessages([entered(p)])); // the redelivery
  await waitFor(() => sentFor(j.id, p).length === 2);
  const [first, again] = sentFor(j.id, p);
  expect(again!.change_id).toBe(first!.change_id);
  expect(await redis.hget(`${keyPrefix}jrn:stats:{${j.id}}`, 'welcome:entered')).toBe('1');
});
