// DESTINATION_ID=* (what `npm start` runs): one dispatcher process serves
// every destination, and still each under its own consumer groups, so a
// destination that keeps answering 429 only lags itself (DESIGN.md: "a slow
// destination only builds lag in its own consumer group, never blocks the
// others"). Its own file: a `*` dispatcher serves every destination under its
// topic prefix, which would disturb the other delivery tests.
import { createKafka, createProducer, ensureTopics, topicRegistry, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { SchemaCodec, type ComputationChange } from '@engage/schemas';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';
import { controlPlaneApi, deliveryEnv, publishChanges, type Api } from './helpers/delivery-harness';
import { Receiver } from './helpers/receiver';

const TOKEN = 'all-destinations-test-token';
const prefix = `${uniqueName('dall')}.`;
const topics = topicRegistry(prefix);
const log = silentLogger();
const infra = () => testInfrastructure();
const procs: ServiceProcess[] = [];
const receivers: Receiver[] = [];
let api: Api;
let producer: Producer;
let codec: SchemaCodec;
let spaceId: string;
let seq = 0;

const env = (extra: Record<string, string> = {}) => deliveryEnv(prefix, TOKEN, extra);

beforeAll(async () => {
  const kafka = createKafka({ brokers: infra().kafkaBrokers, clientId: 'all-destinations-test' }, { log });
  await ensureTopics(kafka, Object.values(topics));
  codec = new SchemaCodec({ url: infra().schemaRegistryUrl });
  await codec.registerTopics(Object.values(topics));
  producer = createProducer(kafka);
  await producer.connect();
  const cp = startService('control-plane', env());
  procs.push(cp);
  api = controlPlaneApi(`http://127.0.0.1:${await cp.port()}`, TOKEN);
  spaceId = (await api('POST', '/spaces', { name: 'All Destinations' })).data.space.id;
});
afterAll(async () => {
  await producer?.disconnect();
  await Promise.all(procs.map((p) => p.stop()));
  await Promise.all(receivers.map((r) => r.stop()));
});

/** A webhook destination connected (identify calls) to an audience of its own. */
async function hookedAudience(name: string, url: string): Promise<{ id: string; key: string; destinationId: string }> {
  const audience = (
    await api('POST', `/spaces/${spaceId}/audiences`, {
      name,
      definition: { query: "event('Order Completed').count() >= 1", type: 'users' },
    })
  ).data.audience;
  const dst = (await api('POST', `/spaces/${spaceId}/destinations`, { name: `${name} Hook`, type: 'webhook', settings: { url } })).data
    .destination;
  const con = await api('POST', `/spaces/${spaceId}/audiences/${audience.id}/destinations`, {
    destinationId: dst.id,
    settings: { identify: true },
  });
  if (!con.data) throw new Error(JSON.stringify(con));
  return { id: audience.id, key: audience.key, destinationId: dst.id };
}

function entered(audience: { id: string; key: string }, userId: string): ComputationChange {
  return {
    change_id: `chg_all_${++seq}_${Date.now()}`,
    space_id: spaceId,
    computation_id: audience.id,
    computation_key: audience.key,
    computation_class: 'audience',
    level: 'user',
    profile_id: `pro_${userId}`,
    value: true,
    previous: false,
    value_is_json: false,
    reason: 'realtime',
    occurred_at: Date.now(),
    emitted_at: Date.now(),
    external_ids: [{ type: 'user_id', id: userId }],
    user_id: userId,
    anonymous_id: null,
    traits_json: '{}',
  };
}

const publish = (changes: ComputationChange[]) => publishChanges(producer, codec, topics.computationsChanges.name, changes);

const userIdsAt = (receiver: Receiver) => receiver.ok().map((r) => r.body.userId as string);

describe('dispatcher serving every destination (DESTINATION_ID=*)', () => {
  it('delivers to a healthy destination while another answers only 429 with a long Retry-After, and picks up a destination created later', async () => {
    // Every call refused for a minute at a time: its changes sit in retries for the whole test.
    const stuck = await new Receiver(() => ({ status: 429, headers: { 'retry-after': '60' } })).start();
    const healthy = await new Receiver().start();
    receivers.push(stuck, healthy);
    const stuckAudience = await hookedAudience('Stuck', `${stuck.url}/hook`);
    const healthyAudience = await hookedAudience('Healthy', `${healthy.url}/hook`);
    procs.push(startService('dispatcher', env({ DESTINATION_ID: '*' })));

    // Every partition gets a change for the stuck destination, interleaved with the healthy one's.
    const first = Array.from({ length: 12 }, (_, i) => [entered(stuckAudience, `s${i}`), entered(healthyAudience, `h${i}`)]).flat();
    await publish(first);
    await waitFor(() => stuck.requests.length >= 1 && healthy.ok().length === 12, {
      timeoutMs: 60000,
      description: 'the stuck destination refusing, the healthy one receiving its 12 calls',
    });
    // Published after: with one group for every destination these would queue behind the stuck retries.
    await publish(Array.from({ length: 12 }, (_, i) => entered(healthyAudience, `later${i}`)));
    await waitFor(() => healthy.ok().length === 24, { timeoutMs: 30000, description: 'the 12 later calls of the healthy destination' });
    expect(userIdsAt(healthy).sort()).toEqual(
      [
        ...first.filter((c) => c.computation_id === healthyAudience.id).map((c) => c.user_id),
        ...Array.from({ length: 12 }, (_, i) => `later${i}`),
      ].sort(),
    );
    expect(stuck.ok()).toEqual([]);

    // A destination created while the dispatcher runs gets its own pipeline.
    const late = await new Receiver().start();
    receivers.push(late);
    const lateAudience = await hookedAudience('Late', `${late.url}/hook`);
    // Published right away: the new pipeline's groups start from the beginning of the topic, like a new dedicated dispatcher's.
    await publish([entered(lateAudience, 'late-user')]);
    await waitFor(() => late.ok().length === 1, { timeoutMs: 60000, description: 'the call at the destination created while running' });
    expect(late.ok()[0]!.body).toMatchObject({ type: 'identify', userId: 'late-user', traits: { [lateAudience.key]: true } });
  });
});
