// The evaluation fleet for end-to-end tests: control plane, realtime evaluator
// and batch scheduler as processes on fresh topics and Redis keys; the test
// writes resolved events / identity changes and reads engage.computations.changes.
import { createKafka, createProducer, ensureTopics, topicRegistry, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { SchemaCodec, valueSubject, type ComputationChange, type IdentityChange, type ResolvedEvent } from '@engage/schemas';
import { serviceEnv, startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';
import type { Consumer } from 'kafkajs';

const TOKEN = 'evaluation-test-token';

export interface Fleet {
  prefix: string;
  env: Record<string, string>;
  procs: ServiceProcess[];
  changes: ComputationChange[];
  spaceId: string;
  api(method: string, path: string, body?: unknown): Promise<any>;
  /** Builds (and, unless `send` is false, sends) a resolved event. */
  event(profileId: string, over?: Partial<ResolvedEvent>): ResolvedEvent;
  send(events: ResolvedEvent[]): Promise<void>;
  identity(change: Partial<IdentityChange> & Pick<IdentityChange, 'kind' | 'profile_id'>): Promise<void>;
  changesOf(profileId: string, key: string): ComputationChange[];
  waitChanges(profileId: string, key: string, n: number, timeoutMs?: number): Promise<ComputationChange[]>;
  create(
    kind: 'audiences' | 'computed-traits',
    name: string,
    query: string,
    options?: Record<string, unknown>,
    type?: 'users' | 'accounts',
  ): Promise<any>;
  waitLive(): Promise<void>;
  start(name: string, extraEnv?: Record<string, string>): ServiceProcess;
  stop(): Promise<void>;
}

export async function startFleet(name: string, opts: { env?: Record<string, string>; services?: string[] } = {}): Promise<Fleet> {
  const infra = testInfrastructure();
  const prefix = `${uniqueName(name)}.`;
  const topics = topicRegistry(prefix);
  const log = silentLogger();
  const env = serviceEnv(prefix, { CONTROL_PLANE_TOKEN: TOKEN, SCHEDULER_TICK_MS: '200', ...opts.env });
  const kafka = createKafka({ brokers: infra.kafkaBrokers, clientId: name }, { log });
  await ensureTopics(kafka, Object.values(topics));
  const codec = new SchemaCodec({ url: infra.schemaRegistryUrl });
  await codec.registerTopics(Object.values(topics));
  const procs = (opts.services ?? ['control-plane', 'realtime-evaluator', 'batch-scheduler']).map((s) => startService(s, env));
  const base = `http://127.0.0.1:${await procs[0]!.port()}`;
  await Promise.all(procs.map((p) => p.port()));
  const api = async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return res.status === 204 ? {} : res.json();
  };
  const producer: Producer = createProducer(kafka);
  await producer.connect();
  const changes: ComputationChange[] = [];
  const reader: Consumer = kafka.consumer({ groupId: uniqueName('changes-reader') });
  await reader.connect();
  await reader.subscribe({ topic: topics.computationsChanges.name, fromBeginning: true });
  await reader.run({ eachMessage: async ({ message }) => void changes.push(await codec.decode<ComputationChange>(message.value)) });
  const spaceId: string = (await api('POST', '/spaces', { name })).data.space.id;
  let seq = 0;
  const changesOf = (profileId: string, key: string) => changes.filter((c) => c.profile_id === profileId && c.computation_key === key);

  const fleet: Fleet = {
    prefix,
    env,
    procs,
    changes,
    spaceId,
    api,
    event: (profileId, over = {}) => ({
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
    }),
    send: async (events) => {
      const subject = valueSubject(topics.eventsResolved.name);
      const messages = await Promise.all(events.map(async (e) => ({ key: e.profile_id, value: await codec.encode(subject, e) })));
      for (let i = 0; i < messages.length; i += 1000)
        await producer.send({ topic: topics.eventsResolved.name, messages: messages.slice(i, i + 1000) });
    },
    identity: async (c) => {
      const change: IdentityChange = {
        change_id: `idc_${++seq}`,
        space_id: spaceId,
        merged_profile_ids: [],
        external_ids: [],
        added_external_ids: [],
        account_id: null,
        occurred_at: Date.now(),
        emitted_at: Date.now(),
        ...c,
      };
      await producer.send({
        topic: topics.identityChanges.name,
        messages: [{ key: change.profile_id, value: await codec.encode(valueSubject(topics.identityChanges.name), change) }],
      });
    },
    changesOf,
    waitChanges: async (profileId, key, n, timeoutMs = 30000) => {
      await waitFor(() => changesOf(profileId, key).length >= n, {
        timeoutMs,
        description: `${n} change(s) of ${key} for ${profileId} (have ${JSON.stringify(changesOf(profileId, key).map((c) => c.value))})`,
      });
      return changesOf(profileId, key);
    },
    create: async (kind, name, query, options = {}, type = 'users') => {
      const res = await api('POST', `/spaces/${spaceId}/${kind}`, { name, definition: { query, type }, options });
      if (!res.data) throw new Error(JSON.stringify(res));
      return res.data.audience ?? res.data.computedTrait ?? res.data.computed_trait ?? Object.values(res.data)[0];
    },
    waitLive: async () => {
      await waitFor(
        async () => {
          const [a, t] = await Promise.all([api('GET', `/spaces/${spaceId}/audiences`), api('GET', `/spaces/${spaceId}/computed-traits`)]);
          const all = [...a.data.audiences, ...(Object.values(t.data).find(Array.isArray) as any[])];
          return all.every((x: any) => x.status === 'Live' || x.status === 'Disabled');
        },
        { description: 'computations Live' },
      );
    },
    start: (service, extraEnv = {}) => {
      const p = startService(service, { ...env, ...extraEnv });
      procs.push(p);
      return p;
    },
    stop: async () => {
      await reader.disconnect();
      await producer.disconnect();
      await Promise.all(procs.map((p) => p.stop()));
    },
  };
  return fleet;
}
