// Evaluation end to end through real Kafka, schema registry and Redis: the
// control plane, the realtime evaluator and the batch scheduler run as
// processes; the test writes resolved events and identity changes and reads
// engage.computations.changes.
import { createKafka, createProducer, ensureTopics, topicRegistry, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { SchemaCodec, valueSubject, type ComputationChange, type IdentityChange, type ResolvedEvent } from '@engage/schemas';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';
import type { Consumer } from 'kafkajs';

const TOKEN = 'evaluation-test-token';
const DAY = 86_400_000;
const prefix = `${uniqueName('eval')}.`;
const topics = topicRegistry(prefix);
const log = silentLogger();
let procs: ServiceProcess[] = [];
let api: (method: string, path: string, body?: unknown) => Promise<any>;
let producer: Producer;
let codec: SchemaCodec;
let reader: Consumer;
const changes: ComputationChange[] = [];
let spaceId: string;
let seq = 0;

beforeAll(async () => {
  const infra = testInfrastructure();
  const env = {
    KAFKA_BROKERS: infra.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl,
    REDIS_URL: infra.redisUrl,
    TOPIC_PREFIX: prefix,
    REDIS_KEY_PREFIX: prefix,
    CONTROL_PLANE_PORT: '0',
    CONTROL_PLANE_TOKEN: TOKEN,
    OPS_PORT: '0',
    SCHEDULER_TICK_MS: '200',
  };
  const kafka = createKafka({ brokers: infra.kafkaBrokers, clientId: 'evaluation-test' }, { log });
  await ensureTopics(kafka, Object.values(topics));
  codec = new SchemaCodec({ url: infra.schemaRegistryUrl });
  await codec.registerTopics(Object.values(topics));
  procs = ['control-plane', 'realtime-evaluator', 'batch-scheduler'].map((name) => startService(name, env));
  const base = `http://127.0.0.1:${await procs[0]!.port()}`;
  await Promise.all(procs.map((p) => p.port()));
  api = async (method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return res.json();
  };
  producer = createProducer(kafka);
  await producer.connect();
  reader = kafka.consumer({ groupId: uniqueName('changes-reader') });
  await reader.connect();
  await reader.subscribe({ topic: topics.computationsChanges.name, fromBeginning: true });
  await reader.run({ eachMessage: async ({ message }) => void changes.push(await codec.decode<ComputationChange>(message.value)) });
  spaceId = (await api('POST', '/spaces', { name: 'Evaluation' })).data.space.id;
});

afterAll(async () => {
  await reader?.disconnect();
  await producer?.disconnect();
  await Promise.all(procs.map((p) => p.stop()));
});

async function send(profileId: string, over: Partial<ResolvedEvent>) {
  const e: ResolvedEvent = {
    profile_id: profileId,
    account_id: null,
    resolved_at: Date.now(),
    message_id: `msg-${++seq}-${profileId}`,
    type: 'track',
    space_id: spaceId,
    source_id: 'src_1',
    user_id: profileId.replace('pro_', 'u_'),
    anonymous_id: null,
    group_id: null,
    previous_id: null,
    event: 'Order Completed',
    name: null,
    timestamp: Date.now(),
    sent_at: null,
    received_at: Date.now(),
    properties_json: '{}',
    traits_json: '{}',
    context_json: '{}',
    integrations_json: '{}',
    external_ids: [],
    ...over,
  };
  await producer.send({
    topic: topics.eventsResolved.name,
    messages: [{ key: profileId, value: await codec.encode(valueSubject(topics.eventsResolved.name), e) }],
  });
  return e;
}
const changesOf = (profileId: string, key: string) => changes.filter((c) => c.profile_id === profileId && c.computation_key === key);
async function waitChanges(profileId: string, key: string, n: number, timeoutMs = 30000): Promise<ComputationChange[]> {
  await waitFor(() => changesOf(profileId, key).length >= n, { timeoutMs, description: `${n} change(s) of ${key} for ${profileId}` });
  return changesOf(profileId, key);
}

async function createAudience(name: string, query: string, options: Record<string, unknown> = {}) {
  const res = await api('POST', `/spaces/${spaceId}/audiences`, { name, definition: { query, type: 'users' }, options });
  if (!res.data) throw new Error(JSON.stringify(res));
  return res.data.audience;
}

describe('evaluation through the fleet', () => {
  it('enters and exits in real time; a computed trait changes only when its value does; chains update in the same pass', async () => {
    await createAudience('Big Spenders', "event('Order Completed').sum(property('revenue')) > 100");
    await api('POST', `/spaces/${spaceId}/computed-traits`, {
      name: 'Total Revenue',
      definition: { query: "event('Order Completed').sum(property('revenue'))", type: 'users' },
    });
    await createAudience('Not Big Spenders', "NOT trait('big_spenders') = true AND event('Order Completed').count() >= 1");
    await waitFor(async () => (await api('GET', `/spaces/${spaceId}/audiences`)).data.audiences.every((a: any) => a.status === 'Live'), {
      description: 'audiences Live',
    });

    await send('pro_a', { properties_json: '{"revenue": 60}' });
    await send('pro_a', { properties_json: '{"revenue": 0}' }); // no change of anything
    await send('pro_a', { properties_json: '{"revenue": 50}' });
    await waitChanges('pro_a', 'big_spenders', 1);
    await waitChanges('pro_a', 'not_big_spenders', 2);
    expect(changesOf('pro_a', 'total_revenue').map((c) => [c.previous, c.value])).toEqual([
      [null, 60],
      [60, 110],
    ]);
    expect(changesOf('pro_a', 'big_spenders').map((c) => [c.previous, c.value, c.reason, c.computation_class, c.level])).toEqual([
      [false, true, 'realtime', 'audience', 'user'],
    ]);
    expect(changesOf('pro_a', 'not_big_spenders').map((c) => c.value)).toEqual([true, false]);
    expect(changesOf('pro_a', 'big_spenders')[0]).toEqual(
      expect.objectContaining({
        user_id: 'u_a',
        external_ids: [{ type: 'user_id', id: 'u_a' }],
        change_id: expect.stringMatching(/^chg_/),
      }),
    );
  });

  it('an event with an old timestamp enters, then expires on time with no new event', async () => {
    await createAudience('Ordered Last 30 Days', "event('Order Completed').within(30 days).count() >= 1");
    await waitFor(async () => (await api('GET', `/spaces/${spaceId}/audiences`)).data.audiences.every((a: any) => a.status === 'Live'), {
      description: 'Live',
    });
    const sent = await send('pro_old', { timestamp: Date.now() - 30 * DAY + 4000 });
    const [entry, exit] = await waitChanges('pro_old', 'ordered_last_30_days', 2, 30000);
    expect([entry!.value, entry!.reason, exit!.value, exit!.reason]).toEqual([true, 'realtime', false, 'expiry']);
    expect(exit!.emitted_at).toBeGreaterThanOrEqual(sent.timestamp + 30 * DAY);
  });

  it('backfills with history, and without history counts only later events', async () => {
    await send('pro_hist', { event: 'Signed Up' });
    await waitFor(async () => changes.length > 0, { description: 'evaluator caught up' });
    await createAudience('Signed Up Ever', "event('Signed Up').count() >= 1", { includeHistoricalData: true });
    await createAudience('Signed Up Since', "event('Signed Up').count() >= 1", { includeHistoricalData: false });
    const [backfilled] = await waitChanges('pro_hist', 'signed_up_ever', 1);
    expect([backfilled!.value, backfilled!.reason]).toEqual([true, 'backfill']);
    await send('pro_hist', { event: 'Viewed' });
    await send('pro_new', { event: 'Signed Up' });
    await waitChanges('pro_new', 'signed_up_since', 1);
    expect(changesOf('pro_hist', 'signed_up_since')).toEqual([]);
  });

  it('a merge combines state: the survivor enters, the merged profile exits', async () => {
    await createAudience('Two Orders', "event('Order Completed').count() >= 2");
    await waitFor(async () => (await api('GET', `/spaces/${spaceId}/audiences`)).data.audiences.every((a: any) => a.status === 'Live'), {
      description: 'Live',
    });
    await send('pro_m1', {});
    await send('pro_m2', {});
    await send('pro_m2', { event: 'Viewed' });
    await waitFor(() => changesOf('pro_m2', 'ordered_last_30_days').length >= 1, { description: 'both evaluated' });
    const merge: IdentityChange = {
      change_id: 'idc_merge_1',
      space_id: spaceId,
      kind: 'merge',
      profile_id: 'pro_m1',
      merged_profile_ids: ['pro_m2'],
      external_ids: [
        { type: 'user_id', id: 'u_m1' },
        { type: 'anonymous_id', id: 'anon-m2' },
      ],
      added_external_ids: [],
      account_id: null,
      occurred_at: Date.now(),
      emitted_at: Date.now(),
    };
    await producer.send({
      topic: topics.identityChanges.name,
      messages: [{ key: 'pro_m1', value: await codec.encode(valueSubject(topics.identityChanges.name), merge) }],
    });
    const [entered] = await waitChanges('pro_m1', 'two_orders', 1);
    expect(entered!.value).toBe(true);
    const [exited] = await waitChanges('pro_m2', 'ordered_last_30_days', 2);
    expect(changesOf('pro_m2', 'ordered_last_30_days').map((c) => c.value)).toEqual([true, false]);
    expect(exited).toBeDefined();
  });
});
