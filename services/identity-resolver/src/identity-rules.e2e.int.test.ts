// Identity rules set through the control plane reach the resolver: both built
// services run as processes on fresh topics, as in production.
import { createKafka, createProducer, topicRegistry, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { SchemaCodec, valueSubject, type RawEvent, type ResolvedEvent } from '@engage/schemas';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';

const TOKEN = 'identity-rules-token';
const log = silentLogger();
const procs: ServiceProcess[] = [];
let producer: Producer | undefined;

interface ApiBody {
  data?: { space?: { id: string }; identityRules?: Record<string, unknown> };
  errors?: Array<{ type: string; message: string; field?: string }>;
}

afterAll(async () => {
  await producer?.disconnect();
  await Promise.all(procs.map((p) => p.stop()));
});

it('rules written with PUT /spaces/{id}/identity-rules are validated and applied by the resolver', async () => {
  const infra = testInfrastructure();
  const prefix = `${uniqueName('idr')}.`;
  const env = {
    KAFKA_BROKERS: infra.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl,
    REDIS_URL: infra.redisUrl,
    TOPIC_PREFIX: prefix,
    REDIS_KEY_PREFIX: prefix,
  };
  const cp = startService('control-plane', { ...env, CONTROL_PLANE_PORT: '0', CONTROL_PLANE_TOKEN: TOKEN });
  procs.push(cp);
  const base = `http://127.0.0.1:${await cp.port()}`;
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as ApiBody };
  };

  const spaceId = (await api('POST', '/spaces', { name: 'Identity' })).body.data!.space!.id as string;
  expect((await api('GET', `/spaces/${spaceId}/identity-rules`)).body.data?.identityRules).toEqual(
    expect.objectContaining({ spaceId, isDefault: true, limits: { user_id: { limit: 1, window: 'ever' } }, blockedPatterns: ['^[0-]*$'] }),
  );
  const bad = await api('PUT', `/spaces/${spaceId}/identity-rules`, { limits: { email: { limit: 0 } }, blockedPatterns: ['('] });
  expect(bad.status).toBe(422);
  expect(bad.body.errors?.map((e) => e.field)).toEqual(['limits.email.limit', 'blockedPatterns[0]']);
  const put = await api('PUT', `/spaces/${spaceId}/identity-rules`, {
    blockedPatterns: ['^qa-'],
    limits: { user_id: { limit: 1, window: 'ever' }, anonymous_id: { limit: 1, window: 'weekly' } },
  });
  expect(put.status).toBe(200);
  expect(put.body.data?.identityRules).toEqual(expect.objectContaining({ isDefault: false, blockedPatterns: ['^qa-'] }));

  // The resolver reads the config topic before it consumes events, so it starts with these rules.
  const resolver = startService('identity-resolver', { ...env, OPS_PORT: '0' });
  procs.push(resolver);
  await waitFor(() => resolver.logs.some((l) => l.msg === 'service_started'), { timeoutMs: 60000, description: 'resolver started' });

  const topics = topicRegistry(prefix);
  const kafka = createKafka({ brokers: infra.kafkaBrokers, clientId: 'identity-rules-e2e' }, { log });
  const codec = new SchemaCodec({ url: infra.schemaRegistryUrl });
  await codec.registerTopics([topics.eventsRaw, topics.eventsResolved]);
  producer = createProducer(kafka);
  await producer.connect();
  let n = 0;
  const raw = (over: Partial<RawEvent>): RawEvent => ({
    message_id: `e2e-${++n}`,
    type: 'track',
    space_id: spaceId,
    source_id: 'src_1',
    user_id: null,
    anonymous_id: null,
    group_id: null,
    previous_id: null,
    event: 'Viewed',
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
  });
  // Same (blocked) user id on two devices, then one user on two devices (anonymous_id limited to 1).
  const events = [
    raw({ user_id: 'qa-tester', anonymous_id: 'd1' }),
    raw({ user_id: 'qa-tester', anonymous_id: 'd2' }),
    raw({ user_id: 'real', anonymous_id: 'd3' }),
    raw({ user_id: 'real', anonymous_id: 'd4' }),
  ];
  await producer.send({
    topic: topics.eventsRaw.name,
    messages: await Promise.all(
      events.map(async (e) => ({ key: e.user_id, value: await codec.encode(valueSubject(topics.eventsRaw.name), e) })),
    ),
  });

  const resolved = new Map<string, string>();
  const reader = kafka.consumer({ groupId: uniqueName('reader') });
  await reader.connect();
  await reader.subscribe({ topic: topics.eventsResolved.name, fromBeginning: true });
  await reader.run({
    eachMessage: async ({ message }) =>
      void resolved.set(
        ...((r: ResolvedEvent) => [r.message_id, r.profile_id] as [string, string])(await codec.decode<ResolvedEvent>(message.value)),
      ),
  });
  await waitFor(() => resolved.size === events.length, { timeoutMs: 60000, description: 'all events resolved' });
  // Sent after the others are resolved: its key may hash to another partition.
  const later = raw({ anonymous_id: 'd4' });
  await producer.send({
    topic: topics.eventsRaw.name,
    messages: [{ key: 'd4', value: await codec.encode(valueSubject(topics.eventsRaw.name), later) }],
  });
  await waitFor(() => resolved.has(later.message_id), { timeoutMs: 60000, description: 'the later event resolved' });
  await reader.disconnect();

  const [a, b, c, d] = events.map((e) => resolved.get(e.message_id));
  expect(a).not.toBe(b); // 'qa-tester' is blocked: nothing links d1 and d2
  expect(c).toBe(d); // 'real' keeps its profile; d4 is dropped from the merge (limit 1), the event still lands on 'real'
  expect(resolved.get(later.message_id)).not.toBe(c); // so d4 alone is someone else (with the default limit of 5 it would be 'real')

  const metrics = await (await fetch(`http://127.0.0.1:${await resolver.port()}/metrics`)).text();
  expect(metrics).toMatch(/engage_identity_events_total\{outcome="resolved"[^}]*\} 5/);
  expect(metrics).toMatch(/engage_identity_ids_dropped_total\{type="anonymous_id"[^}]*\} 1/);
});
