// Delivery through real Kafka, Redis and HTTP: dispatchers (one process per
// destination) read engage.computations.changes and call local receivers
// that enforce status codes and Retry-After like destination APIs do.
import { createKafka, createProducer, DLQ_HEADERS, ensureTopics, topicRegistry, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { SchemaCodec, valueSubject, type ComputationChange } from '@engage/schemas';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';
import { maxInWindow, Receiver } from './helpers/receiver';

const TOKEN = 'delivery-test-token';
const prefix = `${uniqueName('dlv')}.`;
const topics = topicRegistry(prefix);
const log = silentLogger();
const infra = () => testInfrastructure();
const procs: ServiceProcess[] = [];
let api: (method: string, path: string, body?: unknown) => Promise<any>;
let producer: Producer;
let codec: SchemaCodec;
let spaceId: string;
let audience: { id: string; key: string };
let trait: { id: string; key: string };
let seq = 0;

function env(extra: Record<string, string> = {}) {
  return {
    KAFKA_BROKERS: infra().kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: infra().schemaRegistryUrl, REDIS_URL: infra().redisUrl,
    TOPIC_PREFIX: prefix, REDIS_KEY_PREFIX: prefix, CONTROL_PLANE_PORT: '0', CONTROL_PLANE_TOKEN: TOKEN, OPS_PORT: '0',
    DISPATCH_INITIAL_BACKOFF_MS: '200', DISPATCH_MAX_BACKOFF_MS: '1000', ...extra,
  };
}

beforeAll(async () => {
  const kafka = createKafka({ brokers: infra().kafkaBrokers, clientId: 'delivery-test' }, { log });
  await ensureTopics(kafka, Object.values(topics));
  codec = new SchemaCodec({ url: infra().schemaRegistryUrl });
  await codec.registerTopics(Object.values(topics));
  producer = createProducer(kafka);
  await producer.connect();
  const cp = startService('control-plane', env());
  procs.push(cp);
  const base = `http://127.0.0.1:${await cp.port()}`;
  api = async (method, path, body) => {
    const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return res.json();
  };
  spaceId = (await api('POST', '/spaces', { name: 'Delivery' })).data.space.id;
  audience = (await api('POST', `/spaces/${spaceId}/audiences`, { name: 'Order Completed Last 30 Days', definition: { query: "event('Order Completed').within(30 days).count() >= 1", type: 'users' } })).data.audience;
  trait = (await api('POST', `/spaces/${spaceId}/computed-traits`, { name: 'Lifetime Value', definition: { query: "event('Order Completed').sum(property('revenue'))", type: 'users' } })).data.computedTrait;
});
afterAll(async () => {
  await producer?.disconnect();
  await Promise.all(procs.map((p) => p.stop()));
});

async function destination(name: string, url: string, connection: Record<string, unknown>, extra: Record<string, unknown> = {}, computation: { id: string; key: string } = audience) {
  const dst = (await api('POST', `/spaces/${spaceId}/destinations`, { name, type: 'webhook', settings: { url }, ...extra })).data.destination;
  const path = computation.id.startsWith('aud_') ? 'audiences' : 'computed-traits';
  const con = await api('POST', `/spaces/${spaceId}/${path}/${computation.id}/destinations`, { destinationId: dst.id, settings: connection });
  if (!con.data) throw new Error(JSON.stringify(con));
  return dst.id as string;
}

function startDispatcher(destinationId: string) {
  const p = startService('dispatcher', env({ DESTINATION_ID: destinationId }));
  procs.push(p);
  return p;
}

/** Each test connects its own audience, so no destination sees another test's changes. */
async function newAudience(name: string): Promise<{ id: string; key: string }> {
  return (await api('POST', `/spaces/${spaceId}/audiences`, { name, definition: { query: "event('Order Completed').count() >= 1", type: 'users' } })).data.audience;
}

function change(over: Partial<ComputationChange>, computation = audience): ComputationChange {
  return {
    change_id: `chg_${++seq}_${Date.now()}`, space_id: spaceId, computation_id: computation.id, computation_key: computation.key, computation_class: 'audience', level: 'user',
    profile_id: `pro_${seq}`, value: true, previous: false, value_is_json: false, reason: 'realtime', occurred_at: Date.now(), emitted_at: Date.parse('2026-11-22T10:00:00Z'),
    external_ids: [{ type: 'user_id', id: `u${seq}` }], user_id: `u${seq}`, anonymous_id: null, traits_json: '{}', ...over,
  };
}

async function publish(changes: ComputationChange[]) {
  const subject = valueSubject(topics.computationsChanges.name);
  await producer.send({ topic: topics.computationsChanges.name, messages: await Promise.all(changes.map(async (c) => ({ key: c.profile_id, value: await codec.encode(subject, c) }))) });
}

describe('dispatcher', () => {
  it('sends exactly the identify and track calls of CONTRACT.md section 5: entered, exited, several emails, trait only on change', async () => {
    const receiver = await new Receiver().start();
    const dst = await destination('Exact Hook', `${receiver.url}/hook`, { identify: true, track: true, identifierTypes: ['user_id', 'email'] });
    const dstTrait = await destination('Trait Hook', `${receiver.url}/traits`, { identify: true, track: true }, {}, trait);
    const personas = { computation_class: 'audience', computation_id: audience.id, computation_key: audience.key, namespace: spaceId, space_id: spaceId };
    const entered = change({ user_id: 'u123', external_ids: [{ type: 'user_id', id: 'u123' }, { type: 'email', id: 'a@b.co' }, { type: 'email', id: 'c@d.co' }] });
    const exited = change({ user_id: 'u123', value: false, previous: true, external_ids: [{ type: 'user_id', id: 'u123' }] });
    const traitChange = change({ computation_id: trait.id, computation_key: trait.key, computation_class: 'trait', value: 42.5, previous: null, user_id: null, anonymous_id: 'anon-9' });
    startDispatcher(dst);
    startDispatcher(dstTrait);
    await publish([entered, exited, traitChange]);
    await waitFor(() => receiver.ok('/hook').length === 6 && receiver.ok('/traits').length === 2, { timeoutMs: 60000, description: '6 audience calls and 2 trait calls' });

    const bodies = receiver.ok('/hook').map((r) => r.body);
    const integrations = { All: false, 'Exact Hook': true };
    expect(bodies.filter((b) => b.type === 'identify' && b.traits[audience.key] === true)).toEqual([
      { type: 'identify', userId: 'u123', messageId: expect.stringMatching(/^personas_/), timestamp: '2026-11-22T10:00:00.000Z', traits: { [audience.key]: true, email: 'a@b.co' }, context: { personas }, integrations },
      { type: 'identify', userId: 'u123', messageId: expect.stringMatching(/^personas_/), timestamp: '2026-11-22T10:00:00.000Z', traits: { [audience.key]: true, email: 'c@d.co' }, context: { personas }, integrations },
    ]);
    expect(bodies.filter((b) => b.type === 'track' && b.event === 'Audience Entered').map((b) => [b.properties, b.context.traits])).toEqual([
      [{ audience_key: audience.key, [audience.key]: true }, { email: 'a@b.co' }],
      [{ audience_key: audience.key, [audience.key]: true }, { email: 'c@d.co' }],
    ]);
    expect(bodies.filter((b) => b.event === 'Audience Exited' || b.traits?.[audience.key] === false).map((b) => [b.type, b.userId, b.properties ?? b.traits])).toEqual([
      ['identify', 'u123', { [audience.key]: false }],
      ['track', 'u123', { audience_key: audience.key, [audience.key]: false }],
    ]);
    expect(new Set(bodies.map((b) => b.messageId)).size).toBe(6);
    expect(receiver.ok('/traits').map((r) => [r.body.type, r.body.anonymousId, r.body.event, r.body.traits ?? r.body.properties, r.body.context.personas.computation_class])).toEqual([
      ['identify', 'anon-9', undefined, { [trait.key]: 42.5 }, 'trait'],
      ['track', 'anon-9', 'Trait Computed', { trait_key: trait.key, [trait.key]: 42.5 }, 'trait'],
    ]);
    await receiver.stop();
  });

  it('honours 429 Retry-After, retries 500s and delivers once, dead-letters a 400 with its reason', async () => {
    const receiver = await new Receiver((path, _body, nth) => {
      if (path === '/busy' && nth === 1) return { status: 429, headers: { 'retry-after': '1' } };
      if (path === '/flaky' && nth <= 2) return { status: 503 };
      if (path === '/bad') return { status: 400 };
      return { status: 200 };
    }).start();
    const own = await newAudience('Retry Audience');
    const busy = await destination('Busy', `${receiver.url}/busy`, { identify: true, track: false }, {}, own);
    const flaky = await destination('Flaky', `${receiver.url}/flaky`, { identify: true, track: false }, {}, own);
    const bad = await destination('Bad', `${receiver.url}/bad`, { identify: true, track: false }, {}, own);
    for (const d of [busy, flaky, bad]) startDispatcher(d);
    const c = change({}, own);
    await publish([c]);
    await waitFor(() => receiver.ok('/busy').length === 1 && receiver.ok('/flaky').length === 1 && receiver.requests.some((r) => r.path === '/bad'), { timeoutMs: 20000, description: 'deliveries' });

    const busyCalls = receiver.requests.filter((r) => r.path === '/busy');
    expect(busyCalls.map((r) => r.status)).toEqual([429, 200]);
    expect(busyCalls[1]!.at - busyCalls[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(receiver.requests.filter((r) => r.path === '/flaky').map((r) => r.status)).toEqual([503, 503, 200]);
    expect(new Set(receiver.requests.filter((r) => r.path === '/flaky').map((r) => r.body.messageId)).size).toBe(1);

    const kafka = createKafka({ brokers: infra().kafkaBrokers, clientId: 'dlq-reader' }, { log });
    const reader = kafka.consumer({ groupId: uniqueName('dlq') });
    const letters: Array<{ reason: string; value: ComputationChange }> = [];
    await reader.connect();
    await reader.subscribe({ topic: topics.dispatchDlq.name, fromBeginning: true });
    await reader.run({ eachMessage: async ({ message }) => void letters.push({ reason: String(message.headers?.[DLQ_HEADERS.reason]), value: await codec.decode(message.value) }) });
    await waitFor(() => letters.length >= 1, { description: 'a dead letter' });
    await reader.disconnect();
    expect(letters.map((l) => [l.reason, l.value.change_id])).toEqual([['HTTP 400 from Bad (not retriable)', c.change_id]]);
    await receiver.stop();
  });

  it('never exceeds 5 requests in any second while a backlog of 200 drains at close to that rate', async () => {
    const receiver = await new Receiver().start();
    const own = await newAudience('Limited Audience');
    const limited = await destination('Limited', `${receiver.url}/limited`, { identify: true, track: false }, { rateLimit: { requestsPerSecond: 5 } }, own);
    await publish(Array.from({ length: 200 }, () => change({}, own)));
    startDispatcher(limited);
    await waitFor(() => receiver.ok('/limited').length === 200, { timeoutMs: 90000, intervalMs: 500, description: '200 deliveries' });
    const times = receiver.ok('/limited').map((r) => r.at);
    expect(maxInWindow(times, 1000)).toBeLessThanOrEqual(5);
    const achieved = (times.length - 1) / ((Math.max(...times) - Math.min(...times)) / 1000);
    expect(achieved).toBeGreaterThanOrEqual(0.95 * 5);
    await receiver.stop();
  });

  it('loses no change when a dispatcher is killed mid-flight; duplicates carry the same messageId', async () => {
    const receiver = await new Receiver().start();
    const own = await newAudience('Killed Audience');
    const dst = await destination('Killed', `${receiver.url}/killed`, { identify: true, track: false }, { rateLimit: { requestsPerSecond: 50 } }, own);
    const changes = Array.from({ length: 150 }, () => change({}, own));
    await publish(changes);
    const first = startDispatcher(dst);
    await waitFor(() => receiver.ok('/killed').length >= 30, { timeoutMs: 60000, description: 'some deliveries' });
    await first.stop('SIGKILL');
    startDispatcher(dst);
    const expected = new Set(changes.map((c) => c.user_id));
    await waitFor(() => new Set(receiver.ok('/killed').map((r) => r.body.userId)).size === expected.size, { timeoutMs: 90000, intervalMs: 500, description: 'every change delivered' });
    const byUser = new Map<string, Set<string>>();
    for (const r of receiver.ok('/killed')) byUser.set(r.body.userId, (byUser.get(r.body.userId) ?? new Set()).add(r.body.messageId));
    expect([...byUser.values()].every((ids) => ids.size === 1)).toBe(true);
    await receiver.stop();
  });
});
