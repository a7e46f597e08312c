// The journeys API (CONTRACT.md section 9) on the built control plane against
// real Kafka, schema registry and Redis; engage.config read back by an
// independent ConfigStore, as the evaluator, scheduler and dispatchers read it.
import { ConfigStore, type ConnectionConfig } from '@engage/config-store';
import { createKafka, topicRegistry } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec } from '@engage/schemas';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';

const TOKEN = 'journeys-test-token';
let proc: ServiceProcess;
let base: string;
let prefix: string;
let reader: ConfigStore;
let redis: RedisClient;

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  const infra = testInfrastructure();
  prefix = `${uniqueName('cpj')}.`;
  proc = startService('control-plane', {
    KAFKA_BROKERS: infra.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl,
    REDIS_URL: infra.redisUrl,
    TOPIC_PREFIX: prefix,
    REDIS_KEY_PREFIX: prefix,
    CONTROL_PLANE_PORT: '0',
    CONTROL_PLANE_TOKEN: TOKEN,
    DESTINATION_ALLOWED_HOSTS: '127.0.0.0/8',
  });
  base = `http://127.0.0.1:${await proc.port()}`;
  const log = silentLogger();
  reader = new ConfigStore(
    { topic: topicRegistry(prefix).config.name, groupPrefix: 'test' },
    {
      kafka: createKafka({ brokers: infra.kafkaBrokers, clientId: 'cpj-test' }, { log }),
      codec: new SchemaCodec({ url: infra.schemaRegistryUrl }),
      log,
    },
  );
  redis = createRedis({ url: infra.redisUrl });
  await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { description: 'control plane ready' });
  await reader.start();
});
afterAll(async () => {
  await reader?.stop();
  await proc?.stop();
  redis?.disconnect();
});

const KEY = /^j_o_first_purchase__opened_email_[a-z0-9]{6}$/;

describe('journeys API', () => {
  let spaceId: string;
  let dst: string;
  let dst2: string;
  let buyers: string;
  let journeyId: string;
  let v1Keys: Record<string, string>;

  const definition = () => ({
    name: 'First Purchase',
    key: 'first_purchase',
    entry: { audienceId: buyers },
    reentry: 'never',
    includeExistingMembers: false,
    steps: [
      {
        id: 'welcome',
        type: 'send',
        name: 'Opened Email',
        destinations: [{ destinationId: dst, settings: { identify: true, track: true } }],
        next: 'wait',
      },
      { id: 'wait', type: 'wait', duration: '3 seconds', next: 'bought' },
      { id: 'bought', type: 'split', query: "event('Order Completed').count() >= 1", true: 'thanks', false: 'exit' },
      {
        id: 'thanks',
        type: 'send',
        name: 'Thank You',
        destinations: [{ destinationId: dst, settings: { identify: false, track: true } }],
        next: 'exit',
      },
      { id: 'exit', type: 'exit' },
    ],
    start: 'welcome',
  });
  const journeyConnections = (id: string) =>
    reader
      .list('connection', spaceId)
      .filter((c): c is ConnectionConfig => c.computationClass === 'journey_step' && c.computationId === id);

  beforeAll(async () => {
    spaceId = (await api('POST', '/spaces', { name: 'Journeys' })).body.data.space.id;
    dst = (
      await api('POST', `/spaces/${spaceId}/destinations`, { name: 'Hook', type: 'webhook', settings: { url: 'http://127.0.0.1:9/a' } })
    ).body.data.destination.id;
    dst2 = (
      await api('POST', `/spaces/${spaceId}/destinations`, { name: 'Hook 2', type: 'webhook', settings: { url: 'http://127.0.0.1:9/b' } })
    ).body.data.destination.id;
    buyers = (
      await api('POST', `/spaces/${spaceId}/audiences`, { name: 'Signed Up', definition: { query: "event('Signed Up').count() >= 1" } })
    ).body.data.audience.id;
  });

  it('creates a Draft journey with a key for each send step', async () => {
    const created = await api('POST', `/spaces/${spaceId}/journeys`, definition());
    expect(created.status).toBe(201);
    const j = created.body.data.journey;
    expect(j).toEqual({
      ...definition(),
      steps: definition().steps,
      id: expect.stringMatching(/^jou_[0-9A-Za-z]{27}$/),
      spaceId,
      status: 'Draft',
      stepKeys: { welcome: expect.stringMatching(KEY), thanks: expect.stringMatching(/^j_o_first_purchase__thank_you_[a-z0-9]{6}$/) },
      versions: [],
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      draftChanged: true,
      stats: [
        { id: 'welcome', type: 'send', key: j.stepKeys.welcome, current: 0, entered: 0 },
        { id: 'wait', type: 'wait', current: 0, entered: 0 },
        { id: 'bought', type: 'split', current: 0, entered: 0 },
        { id: 'thanks', type: 'send', key: j.stepKeys.thanks, current: 0, entered: 0 },
        { id: 'exit', type: 'exit', current: 0, entered: 0 },
      ],
    });
    journeyId = j.id;
    expect((await api('GET', `/spaces/${spaceId}/journeys/${journeyId}`)).body.data.journey.stepKeys).toEqual(j.stepKeys);
    const list = await api('GET', `/spaces/${spaceId}/journeys`);
    expect(list.body.data.journeys.map((x: any) => x.id)).toEqual([journeyId]);
    const again = await api('POST', `/spaces/${spaceId}/journeys`, definition());
    expect(again.status).toBe(409);
    expect(again.body.errors[0]).toEqual(expect.objectContaining({ type: 'conflict', field: 'key' }));
  });

  it('answers 400 naming the field for a body of the wrong shape', async () => {
    const { start: _start, ...noStart } = definition();
    void _start;
    const res = await api('POST', `/spaces/${spaceId}/journeys`, { ...noStart, key: 'no_start' });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([expect.objectContaining({ field: 'start' })]);
    const badKey = await api('POST', `/spaces/${spaceId}/journeys`, { ...definition(), key: 'Bad Key' });
    expect([badKey.status, badKey.body.errors[0].field]).toEqual([400, 'key']);
  });

  it('answers 422 naming the step for graph problems, unknown destinations and audiences, and invalid queries', async () => {
    const d = definition();
    const graph = await api('POST', `/spaces/${spaceId}/journeys`, {
      ...d,
      key: 'broken',
      steps: d.steps.map((s) => (s.id === 'wait' ? { ...s, duration: 'soon' } : s.id === 'thanks' ? { ...s, next: 'nowhere' } : s)),
    });
    expect(graph.status).toBe(422);
    expect(graph.body.errors).toEqual([
      {
        type: 'validation',
        field: 'steps.wait.duration',
        message: expect.stringMatching(/^steps\.wait\.duration: "soon" is not a duration/),
      },
      { type: 'validation', field: 'steps.thanks', message: 'steps.thanks: leads to "nowhere", which is not a step' },
    ]);
    const cycle = await api('POST', `/spaces/${spaceId}/journeys`, {
      ...d,
      key: 'cycle',
      steps: d.steps.map((s) => (s.id === 'thanks' ? { ...s, next: 'welcome' } : s)),
    });
    expect(cycle.status).toBe(422);
    expect(cycle.body.errors[0].message).toMatch(/cycle welcome -> wait -> bought -> thanks -> welcome/);
    const unknown = await api('POST', `/spaces/${spaceId}/journeys`, {
      ...d,
      key: 'unknown_refs',
      entry: { audienceId: 'aud_nope' },
      steps: d.steps.map((s) =>
        s.id === 'welcome'
          ? { ...s, destinations: [{ destinationId: 'dst_nope' }] }
          : s.id === 'bought'
            ? { ...s, query: "event('A').count() >=" }
            : s,
      ),
    });
    expect(unknown.status).toBe(422);
    expect(unknown.body.errors.map((e: any) => e.field)).toEqual([
      'entry.audienceId',
      'steps.welcome.destinations.0.destinationId',
      'steps.bought.query',
    ]);
    expect(unknown.body.errors[2].message).toMatch(/^steps\.bought\.query: \d+:\d+: /);
    // Nothing was created by refused requests.
    expect((await api('GET', `/spaces/${spaceId}/journeys`)).body.data.journeys).toHaveLength(1);
  });

  it('publishes version 1: Live, condition audiences owned by the journey, one connection per send step and destination, no initial sync', async () => {
    const res = await api('POST', `/spaces/${spaceId}/journeys/${journeyId}/publish`);
    expect(res.status).toBe(200);
    const j = res.body.data.journey;
    v1Keys = j.stepKeys;
    expect(j.status).toBe('Live');
    expect(j.draftChanged).toBe(false);
    expect(j.versions).toEqual([
      {
        version: 1,
        publishedAt: expect.any(String),
        entryComputationId: buyers,
        start: 'welcome',
        steps: definition().steps,
        conditions: { bought: [expect.stringMatching(/^aud_/)] },
        stepKeys: v1Keys,
      },
    ]);
    const conditionId = j.versions[0].conditions.bought[0];
    const audience = (await api('GET', `/spaces/${spaceId}/audiences/${conditionId}`)).body.data.audience;
    expect(audience).toEqual(
      expect.objectContaining({
        key: 'j_first_purchase_v1_bought',
        journeyId,
        enabled: true,
        definition: { query: "event('Order Completed').count() >= 1", type: 'users' },
        options: { includeHistoricalData: true, computeMode: 'realtime' },
      }),
    );
    const listed = (await api('GET', `/spaces/${spaceId}/audiences`)).body.data.audiences.map((a: any) => a.id);
    expect(listed).toEqual([buyers]);
    const patch = await api('PATCH', `/spaces/${spaceId}/audiences/${conditionId}`, { name: 'mine now' });
    expect(patch.status).toBe(409);
    expect(patch.body.errors[0].message).toContain(`belongs to journey ${journeyId} ('first_purchase')`);
    expect((await api('DELETE', `/spaces/${spaceId}/audiences/${conditionId}`)).status).toBe(409);

    // What the evaluator and the dispatchers read.
    await waitFor(() => reader.get('journey', journeyId)?.status === 'Live', { description: 'journey read back' });
    expect(reader.get('audience', conditionId)?.journeyId).toBe(journeyId);
    const connections = journeyConnections(journeyId);
    expect(
      connections
        .map((c) => ({ key: c.computationKey, dst: c.destinationId, settings: c.settings, enabled: c.enabled }))
        .sort((a, b) => a.key!.localeCompare(b.key!)),
    ).toEqual(
      [
        { key: v1Keys.thanks, dst, settings: { identify: false, track: true }, enabled: true },
        { key: v1Keys.welcome, dst, settings: { identify: true, track: true }, enabled: true },
      ].sort((a, b) => a.key!.localeCompare(b.key!)),
    );
    // No initial sync: computationClass journey_step is what the dispatchers settle with nothing sent
    // (isSettledByDesign in services/dispatcher dispatch.step.ts), and the control plane asks for no sync.
    expect(connections.map((c) => [c.computationClass, c.computationId])).toEqual([
      ['journey_step', journeyId],
      ['journey_step', journeyId],
    ]);
    expect(await redis.exists(`${prefix}dispatch:list:syncnow:${dst}`)).toBe(0);
    // Connections of journeys are not the audiences' connections.
    expect((await api('GET', `/spaces/${spaceId}/audiences/${buyers}/destinations`)).body.data.connections).toEqual([]);
  });

  it('publishes an edit as version 2: same key for the same step, new keys for new steps, connections kept, not duplicated', async () => {
    const d = definition();
    const steps = [
      { ...d.steps[0], destinations: [...d.steps[0]!.destinations!, { destinationId: dst2, settings: { identify: true, track: false } }] },
      { ...d.steps[1], duration: '2 hours' },
      { ...d.steps[2], true: 'thanks', false: 'nudge' },
      d.steps[3],
      { id: 'nudge', type: 'send', name: 'Opened Email', destinations: [{ destinationId: dst }], next: 'exit' },
      d.steps[4],
    ];
    const patched = await api('PATCH', `/spaces/${spaceId}/journeys/${journeyId}`, { steps });
    expect(patched.status).toBe(200);
    const draft = patched.body.data.journey;
    expect(draft.status).toBe('Live');
    expect(draft.draftChanged).toBe(true);
    expect(draft.versions).toHaveLength(1);
    expect(draft.stepKeys.welcome).toBe(v1Keys.welcome);
    expect(draft.stepKeys.nudge).toMatch(KEY);
    expect(draft.stepKeys.nudge).not.toBe(v1Keys.welcome);

    const published = (await api('POST', `/spaces/${spaceId}/journeys/${journeyId}/publish`)).body.data.journey;
    expect(published.versions.map((v: any) => v.version)).toEqual([1, 2]);
    const v2 = published.versions[1];
    expect(v2.stepKeys).toEqual({ welcome: v1Keys.welcome, thanks: v1Keys.thanks, nudge: draft.stepKeys.nudge });
    expect(v2.conditions.bought[0]).not.toBe(published.versions[0].conditions.bought[0]);
    expect((await api('GET', `/spaces/${spaceId}/audiences/${v2.conditions.bought[0]}`)).body.data.audience.key).toBe(
      'j_first_purchase_v2_bought',
    );
    await waitFor(() => reader.get('journey', journeyId)?.versions.length === 2, { description: 'version 2 read back' });
    const byKeyAndDst = journeyConnections(journeyId)
      .map((c) => `${c.computationKey} ${c.destinationId}`)
      .sort();
    expect(byKeyAndDst).toEqual(
      [`${v1Keys.welcome} ${dst}`, `${v1Keys.welcome} ${dst2}`, `${v1Keys.thanks} ${dst}`, `${draft.stepKeys.nudge} ${dst}`].sort(),
    );
  });

  it('makes audiences of an entry query and of each branch', async () => {
    const created = await api('POST', `/spaces/${spaceId}/journeys`, {
      name: 'Win Back',
      key: 'win_back',
      entry: { query: "event('Cart Abandoned').count() >= 1" },
      steps: [
        {
          id: 'pick-one',
          type: 'branch',
          branches: [
            { name: 'vip', query: "trait('plan') = 'vip'", next: 'vip' },
            { query: "event('Order Completed').count() >= 3", next: 'vip' },
          ],
          else: 'done',
        },
        { id: 'vip', type: 'send', name: 'VIP Offer', destinations: [{ destinationId: dst }], next: 'done' },
        { id: 'done', type: 'exit' },
      ],
      start: 'pick-one',
    });
    expect(created.status).toBe(201);
    const j = (await api('POST', `/spaces/${spaceId}/journeys/${created.body.data.journey.id}/publish`)).body.data.journey;
    const v1 = j.versions[0];
    const keyOf = async (id: string) => (await api('GET', `/spaces/${spaceId}/audiences/${id}`)).body.data.audience;
    expect((await keyOf(v1.entryComputationId)).key).toBe('j_win_back_v1_entry');
    expect((await keyOf(v1.entryComputationId)).journeyId).toBe(j.id);
    expect(await Promise.all(v1.conditions['pick-one'].map(async (id: string) => (await keyOf(id)).key))).toEqual([
      'j_win_back_v1_pick_one_1',
      'j_win_back_v1_pick_one_2',
    ]);
    expect(j.draftChanged).toBe(false);
  });

  it('shows per-step stats from the journey runner hash', async () => {
    await redis.hset(`${prefix}jrn:stats:{${journeyId}}`, {
      'welcome:entered': '12',
      'welcome:current': '0',
      'wait:entered': '12',
      'wait:current': '7',
      'nudge:entered': '3',
    });
    const j = (await api('GET', `/spaces/${spaceId}/journeys/${journeyId}`)).body.data.journey;
    expect(j.stats).toEqual([
      { id: 'welcome', type: 'send', key: v1Keys.welcome, current: 0, entered: 12 },
      { id: 'wait', type: 'wait', current: 7, entered: 12 },
      { id: 'bought', type: 'split', current: 0, entered: 0 },
      { id: 'thanks', type: 'send', key: v1Keys.thanks, current: 0, entered: 0 },
      { id: 'nudge', type: 'send', key: j.stepKeys.nudge, current: 0, entered: 3 },
      { id: 'exit', type: 'exit', current: 0, entered: 0 },
    ]);
  });

  it('pauses, resumes and archives; refuses transitions from the wrong state with 409', async () => {
    const path = `/spaces/${spaceId}/journeys/${journeyId}`;
    const draft = (await api('POST', `/spaces/${spaceId}/journeys`, { ...definition(), key: 'never_published' })).body.data.journey;
    const draftPause = await api('POST', `/spaces/${spaceId}/journeys/${draft.id}/pause`);
    expect([draftPause.status, draftPause.body.errors[0].message]).toEqual([
      409,
      "journey 'never_published' is Draft: only a Live journey can be paused",
    ]);

    expect((await api('POST', `${path}/resume`)).status).toBe(409);
    expect((await api('POST', `${path}/pause`)).body.data.journey.status).toBe('Paused');
    expect((await api('POST', `${path}/pause`)).status).toBe(409);
    expect((await api('POST', `${path}/resume`)).body.data.journey.status).toBe('Live');
    const conditionIds: string[] = (await api('GET', path)).body.data.journey.versions.map((v: any) => v.conditions.bought[0]);
    expect((await api('POST', `${path}/archive`)).body.data.journey.status).toBe('Archived');
    for (const [method, action] of [
      ['POST', 'archive'],
      ['POST', 'publish'],
      ['POST', 'pause'],
      ['POST', 'resume'],
    ] as const) {
      const res = await api(method, `${path}/${action}`);
      expect([action, res.status]).toEqual([action, 409]);
    }
    const edit = await api('PATCH', path, { name: 'again' });
    expect([edit.status, edit.body.errors[0].message]).toEqual([409, "journey 'first_purchase' is archived: it cannot be edited"]);
    expect((await api('DELETE', path)).body.data).toEqual({ status: 'SUCCESS', journey: { id: journeyId, key: 'first_purchase' } });
    // Archived: its audiences and connections are gone, its key stays taken.
    for (const id of conditionIds) expect((await api('GET', `/spaces/${spaceId}/audiences/${id}`)).status).toBe(404);
    await waitFor(() => journeyConnections(journeyId).length === 0, { description: 'journey connections deleted' });
    expect((await api('POST', `/spaces/${spaceId}/journeys`, definition())).status).toBe(409);
  });
});
