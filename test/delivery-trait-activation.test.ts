// Trait Activation end to end (issue 20 item 5): a dispatcher process
// (DESTINATION_ID=*) reads audience change records from
// engage.computations.changes and calls local receivers. A webhook connection
// with Trait Enrichment (a custom trait from the record's traits_json, a
// computed trait whose value lives only in the profile state) and ID Sync
// (`last` email), and a list destination whose connection's ID Sync picks the
// `first` email instead of its adapter's user_id. Exits reach every email.
import {
  ConfigStore,
  ConfigWriter,
  type ComputationConfig,
  type ConnectionConfig,
  type ConnectionSettings,
  type DestinationConfig,
} from '@engage/config-store';
import { createKafka, createProducer, ensureTopics, topicRegistry, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { emptyProfile, ProfileStateRepository } from '@engage/profile-store';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec, type ComputationChange } from '@engage/schemas';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';
import { deliveryEnv, publishChanges } from './helpers/delivery-harness';
import { Receiver } from './helpers/receiver';

const prefix = `${uniqueName('dta')}.`;
const topics = topicRegistry(prefix);
const log = silentLogger();
const infra = () => testInfrastructure();
const SPACE = 'spa_trait_activation';
const AUDIENCE = 'aud_vip';
const TRAIT = 'tra_ltv';
const iso = new Date().toISOString();

let producer: Producer;
let codec: SchemaCodec;
let redis: RedisClient;
let writer: ConfigWriter;
let dispatcher: ServiceProcess | undefined;
const receivers: Receiver[] = [];

beforeAll(async () => {
  const kafka = createKafka({ brokers: infra().kafkaBrokers, clientId: 'delivery-trait-activation-test' }, { log });
  await ensureTopics(kafka, Object.values(topics));
  codec = new SchemaCodec({ url: infra().schemaRegistryUrl });
  await codec.registerTopics(Object.values(topics));
  producer = createProducer(kafka);
  await producer.connect();
  redis = createRedis({ url: infra().redisUrl });
  // Not started: the writer only keeps the versions of what it wrote.
  const store = new ConfigStore({ topic: topics.config.name, groupPrefix: uniqueName('writer') }, { kafka, codec, log });
  writer = new ConfigWriter({ topic: topics.config.name }, { producer, codec, store });
});
afterAll(async () => {
  await dispatcher?.stop();
  await producer?.disconnect();
  redis?.disconnect();
  await Promise.all(receivers.map((r) => r.stop()));
});

async function receiver(): Promise<Receiver> {
  const r = await new Receiver().start();
  receivers.push(r);
  return r;
}

async function destination(id: string, name: string, type: string, settings: Record<string, unknown>): Promise<void> {
  const body: DestinationConfig = { id, spaceId: SPACE, name, type, settings, enabled: true, createdAt: iso, updatedAt: iso };
  await writer.write('destination', id, SPACE, body);
}

async function computation(kind: 'audience' | 'computed_trait', id: string, key: string): Promise<void> {
  const body: ComputationConfig = {
    id,
    spaceId: SPACE,
    name: key,
    key,
    description: '',
    enabled: true,
    definition: {
      query: kind === 'audience' ? "event('Order Completed').count() >= 1" : "event('Order Completed').sum('total')",
      type: 'users',
    },
    options: { includeHistoricalData: true, computeMode: 'realtime' },
    definitionVersion: 1,
    definitionUpdatedAt: iso,
    createdAt: iso,
    updatedAt: iso,
  };
  await writer.write(kind, id, SPACE, body);
}

async function connection(id: string, destinationId: string, settings: ConnectionSettings): Promise<void> {
  const body: ConnectionConfig = {
    id,
    spaceId: SPACE,
    computationClass: 'audience',
    computationId: AUDIENCE,
    destinationId,
    settings,
    enabled: true,
    createdAt: iso,
    updatedAt: iso,
  };
  await writer.write('connection', id, SPACE, body);
}

/** Ada entering (true) or leaving (false) the audience, as the evaluator emits it: her ids in the order she gained them. */
function vip(value: boolean, n: number): ComputationChange {
  return {
    change_id: `chg_vip_ada_${n}`,
    space_id: SPACE,
    computation_id: AUDIENCE,
    computation_key: 'vip',
    computation_class: 'audience',
    level: 'user',
    profile_id: 'pro_ada',
    value,
    previous: !value,
    value_is_json: false,
    reason: 'realtime',
    occurred_at: Date.parse('2026-11-22T10:00:00Z'),
    emitted_at: Date.parse(`2026-11-22T10:00:0${n}Z`),
    external_ids: [
      { type: 'user_id', id: 'ada' },
      { type: 'email', id: 'ada.old@example.com' },
      { type: 'email', id: 'ada.new@example.com' },
    ],
    user_id: 'ada',
    anonymous_id: null,
    traits_json: JSON.stringify({ plan: 'pro', email: 'ada.new@example.com', city: 'Paris' }),
  };
}

it('enriches the webhook calls with a custom and a computed trait, sends the ID Sync identifiers, and the list follows its ID Sync; exits reach every email', async () => {
  const hook = await receiver();
  const list = await receiver();
  await destination('dst_hook', 'Hook', 'webhook', { url: `${hook.url}/hook` });
  await destination('dst_list', 'List', 'list-webhook', { url: `${list.url}/list`, syncIntervalSeconds: 1 });
  await computation('audience', AUDIENCE, 'vip');
  await computation('computed_trait', TRAIT, 'lifetime_value');
  await connection('con_hook', 'dst_hook', {
    identify: true,
    track: true,
    traitEnrichment: ['lifetime_value', 'plan', 'never_set'],
    idSync: [{ type: 'email', strategy: 'last' }],
  });
  await connection('con_list', 'dst_list', { identify: false, track: false, idSync: [{ type: 'email', strategy: 'first' }] });
  // The computed trait's value is in the profile state only (change records do not carry it).
  const profiles = new ProfileStateRepository({ keyPrefix: prefix }, { redis });
  await profiles.save(
    [
      {
        profile: { ...emptyProfile({ spaceId: SPACE, profileId: 'pro_ada' }), values: { [TRAIT]: { value: 250, version: 1 } } },
        wakeAt: null,
      },
    ],
    [],
  );

  dispatcher = startService('dispatcher', deliveryEnv(prefix, 'unused', { DESTINATION_ID: '*', DISPATCH_LIST_TICK_MS: '200' }));
  await dispatcher.port();
  // The initial syncs (no members yet) are done: live records are then sent without a handover.
  for (const id of ['con_hook', 'con_list'])
    await waitFor(async () => (await redis.exists(`${prefix}dispatch:synced:${id}`)) === 1, {
      timeoutMs: 60000,
      description: `${id} synced`,
    });

  await publishChanges(producer, codec, topics.computationsChanges.name, [vip(true, 1)]);
  await waitFor(() => hook.requests.length >= 2 && list.requests.length >= 1, {
    timeoutMs: 60000,
    description: 'the entry calls and the list add',
  });
  await Promise.all([hook.quietFor(2000), list.quietFor(2000)]);

  const personas = { computation_class: 'audience', computation_id: AUDIENCE, computation_key: 'vip', namespace: SPACE, space_id: SPACE };
  const common = (n: number) => ({
    userId: 'ada',
    messageId: expect.stringMatching(/^personas_[0-9a-f]{32}$/),
    timestamp: `2026-11-22T10:00:0${n}.000Z`,
    integrations: { All: false, Hook: true },
  });
  const enriched = { lifetime_value: 250, plan: 'pro' };
  expect(hook.requests.map((r) => ({ path: r.path, status: r.status, body: r.body }))).toEqual([
    {
      path: '/hook',
      status: 200,
      body: { type: 'identify', ...common(1), traits: { ...enriched, vip: true, email: 'ada.new@example.com' }, context: { personas } },
    },
    {
      path: '/hook',
      status: 200,
      body: {
        type: 'track',
        event: 'Audience Entered',
        ...common(1),
        properties: { audience_key: 'vip', vip: true },
        context: { personas, traits: { ...enriched, email: 'ada.new@example.com' } },
      },
    },
  ]);
  expect(list.requests.map((r) => r.body)).toEqual([
    { audience_key: 'vip', audience_id: AUDIENCE, add: ['ada.old@example.com'], remove: [] },
  ]);

  // The exit: not narrowed by ID Sync, every email hears it (each its own messageId).
  await publishChanges(producer, codec, topics.computationsChanges.name, [vip(false, 2)]);
  await waitFor(() => hook.requests.length >= 6 && list.requests.length >= 2, {
    timeoutMs: 60000,
    description: 'the exit calls and the list removal',
  });
  await Promise.all([hook.quietFor(2000), list.quietFor(2000)]);
  const exits = hook.requests.slice(2).map((r) => r.body);
  expect(exits).toEqual(
    ['ada.old@example.com', 'ada.new@example.com'].flatMap((email) => [
      { type: 'identify', ...common(2), traits: { ...enriched, vip: false, email }, context: { personas } },
      {
        type: 'track',
        event: 'Audience Exited',
        ...common(2),
        properties: { audience_key: 'vip', vip: false },
        context: { personas, traits: { ...enriched, email } },
      },
    ]),
  );
  expect(new Set(exits.map((b) => b.messageId)).size).toBe(4);
  expect(list.requests.slice(1).map((r) => r.body)).toEqual([
    { audience_key: 'vip', audience_id: AUDIENCE, add: [], remove: ['ada.old@example.com', 'ada.new@example.com'] },
  ]);
});
