// Journey send steps delivered end to end (CONTRACT.md section 9): a
// dispatcher process (DESTINATION_ID=*) reads journey_step change records
// from engage.computations.changes (as the batch scheduler's journey runner
// writes them) and calls local receivers. The journey connections are written
// to engage.config as the control plane writes them at publish: one per
// (send step, destination), computationClass journey_step, computationId the
// journey, computationKey the step key.
import { ConfigStore, ConfigWriter, type ConnectionConfig, type DestinationConfig } from '@engage/config-store';
import { createKafka, createProducer, ensureTopics, topicRegistry, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec, type ComputationChange } from '@engage/schemas';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';
import { deliveryEnv, publishChanges } from './helpers/delivery-harness';
import { Receiver } from './helpers/receiver';

const prefix = `${uniqueName('djn')}.`;
const topics = topicRegistry(prefix);
const log = silentLogger();
const infra = () => testInfrastructure();
const SPACE = 'spa_journeys';
const JOURNEY = 'jou_first_purchase';
const OPENED = 'j_o_first_purchase__opened_email_ab12cd';
const THANKS = 'j_o_first_purchase__thank_you_9zx8yw';
const iso = new Date().toISOString();

let producer: Producer;
let codec: SchemaCodec;
let redis: RedisClient;
let writer: ConfigWriter;
let dispatcher: ServiceProcess | undefined;
const receivers: Receiver[] = [];

beforeAll(async () => {
  const kafka = createKafka({ brokers: infra().kafkaBrokers, clientId: 'delivery-journeys-test' }, { log });
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

/** A journey connection as the control plane writes it when the journey is published. */
async function stepConnection(id: string, destinationId: string, key: string, settings: { identify: boolean; track: boolean }) {
  const body: ConnectionConfig = {
    id,
    spaceId: SPACE,
    computationClass: 'journey_step',
    computationId: JOURNEY,
    computationKey: key,
    destinationId,
    settings,
    enabled: true,
    createdAt: iso,
    updatedAt: iso,
  };
  await writer.write('connection', id, SPACE, body);
}

/** A user reaching a send step, as the journey runner emits it. */
function reached(profileId: string, userId: string, key: string): ComputationChange {
  return {
    change_id: `jrn_${JOURNEY}_${key}_${profileId}_1`,
    space_id: SPACE,
    computation_id: JOURNEY,
    computation_key: key,
    computation_class: 'journey_step',
    level: 'user',
    profile_id: profileId,
    value: true,
    previous: null,
    value_is_json: false,
    reason: 'batch',
    occurred_at: Date.parse('2026-11-22T10:00:00Z'),
    emitted_at: Date.parse('2026-11-22T10:00:05Z'),
    external_ids: [
      { type: 'user_id', id: userId },
      { type: 'email', id: `${userId}@example.com` },
    ],
    user_id: userId,
    anonymous_id: null,
    traits_json: JSON.stringify({ email: `${userId}@example.com` }),
  };
}

it('a webhook on a send step gets exactly its identify and track, a webhook on another step of the journey nothing, a list on the step an add', async () => {
  const opened = await receiver();
  const thanks = await receiver();
  const list = await receiver();
  await destination('dst_opened', 'Opened Hook', 'webhook', { url: `${opened.url}/hook` });
  await destination('dst_thanks', 'Thanks Hook', 'webhook', { url: `${thanks.url}/hook` });
  await destination('dst_list', 'Journey List', 'list-webhook', { url: `${list.url}/list`, syncIntervalSeconds: 1 });
  await stepConnection('con_opened', 'dst_opened', OPENED, { identify: true, track: true });
  await stepConnection('con_thanks', 'dst_thanks', THANKS, { identify: true, track: true });
  // The list destination is on both steps: each step is its own list.
  await stepConnection('con_list_opened', 'dst_list', OPENED, { identify: false, track: false });
  await stepConnection('con_list_thanks', 'dst_list', THANKS, { identify: false, track: false });

  dispatcher = startService('dispatcher', deliveryEnv(prefix, 'unused', { DESTINATION_ID: '*', DISPATCH_LIST_TICK_MS: '200' }));
  await dispatcher.port();
  // Journey connections are settled at once: marked synced with nothing sent.
  for (const id of ['con_opened', 'con_thanks', 'con_list_opened', 'con_list_thanks'])
    await waitFor(async () => (await redis.exists(`${prefix}dispatch:synced:${id}`)) === 1, {
      timeoutMs: 60000,
      description: `${id} settled`,
    });

  await publishChanges(producer, codec, topics.computationsChanges.name, [reached('pro_ada', 'ada', OPENED)]);

  await waitFor(() => opened.requests.length >= 2 && list.requests.length >= 1, {
    timeoutMs: 60000,
    description: 'the step calls and the list add',
  });
  // Nothing more comes after the last expected call, to any of them.
  await Promise.all([opened.quietFor(3000), thanks.quietFor(3000), list.quietFor(3000)]);

  const personas = { computation_class: 'audience', computation_id: JOURNEY, computation_key: OPENED, namespace: SPACE, space_id: SPACE };
  const common = {
    userId: 'ada',
    messageId: expect.stringMatching(/^personas_[0-9a-f]{32}$/),
    timestamp: '2026-11-22T10:00:05.000Z',
    integrations: { All: false, 'Opened Hook': true },
  };
  expect(opened.requests.map((r) => ({ path: r.path, status: r.status, body: r.body }))).toEqual([
    {
      path: '/hook',
      status: 200,
      body: { type: 'identify', ...common, traits: { [OPENED]: true, email: 'ada@example.com' }, context: { personas } },
    },
    {
      path: '/hook',
      status: 200,
      body: {
        type: 'track',
        event: 'Audience Entered',
        ...common,
        properties: { audience_key: OPENED, [OPENED]: true },
        context: { personas, traits: { email: 'ada@example.com' } },
      },
    },
  ]);
  expect(thanks.requests).toEqual([]);
  expect(list.requests.map((r) => ({ path: r.path, status: r.status, body: r.body }))).toEqual([
    { path: '/list', status: 200, body: { audience_key: OPENED, audience_id: JOURNEY, add: ['ada'], remove: [] } },
  ]);
  // No handover claims were taken for journey connections.
  expect(await redis.keys(`${prefix}dispatch:handover:*`)).toEqual([]);
});
