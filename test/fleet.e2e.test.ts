// The whole fleet, end to end: @segment/analytics-node sends to the ingest;
// the identity resolver, the realtime evaluator and a dispatcher run as
// processes on real Kafka, schema registry and Redis; an audience and a
// computed trait are created through the control plane and connected to a
// webhook destination, whose receiver must get exactly the calls of
// CONTRACT.md section 5, the exit included.
import { Analytics } from '@segment/analytics-node';
import { serviceEnv, startService, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';
import { Receiver, type Received } from './helpers/receiver';

const TOKEN = 'fleet-e2e-token';
const prefix = `${uniqueName('fleet')}.`;
let procs: ServiceProcess[] = [];
let base: string;
let ingest: string;
let receiver: Receiver;

const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as any;
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json.data;
};

beforeAll(async () => {
  // One dispatcher process serving every destination, as `npm start` runs it.
  // The receiver listens on 127.0.0.1: loopback is allowed as `npm start` allows it.
  const env = serviceEnv(prefix, { CONTROL_PLANE_TOKEN: TOKEN, DESTINATION_ID: '*', DESTINATION_ALLOWED_HOSTS: '127.0.0.0/8' });
  receiver = await new Receiver().start();
  // The control plane first: it creates the topics the others subscribe to.
  const cp = startService('control-plane', env);
  base = `http://127.0.0.1:${await cp.port()}`;
  const others = ['ingest', 'identity-resolver', 'realtime-evaluator', 'batch-scheduler', 'dispatcher'].map((name) =>
    startService(name, env),
  );
  procs = [cp, ...others];
  ingest = `http://127.0.0.1:${await others[0]!.port()}`;
  await Promise.all(others.map((p) => p.port()));
}, 300_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await receiver?.stop();
});

const calls = (pred: (r: Received) => boolean) => receiver.ok('/hook').filter(pred);
/** For waitFor: the matching calls once there is one, else undefined (an empty array would count as done). */
const some = (pred: (r: Received) => boolean) => {
  const found = calls(pred);
  return found.length > 0 ? found : undefined;
};

it('delivers the identify and track calls of CONTRACT.md section 5 for an audience entry, a trait change and the exit', async () => {
  const space = (await api('POST', '/spaces', { name: 'Fleet' })).space;
  const source = (await api('POST', `/spaces/${space.id}/sources`, { name: 'Web' })).source;
  const audience = (
    await api('POST', `/spaces/${space.id}/audiences`, {
      name: 'Pro Buyers',
      definition: { query: "trait('plan') = 'pro' AND event('Order Completed').count() >= 1", type: 'users' },
    })
  ).audience;
  const trait = (
    await api('POST', `/spaces/${space.id}/computed-traits`, {
      name: 'Orders Count',
      definition: { query: "event('Order Completed').count()", type: 'users' },
    })
  ).computedTrait;
  const destination = (
    await api('POST', `/spaces/${space.id}/destinations`, { name: 'Hook', type: 'webhook', settings: { url: `${receiver.url}/hook` } })
  ).destination;
  for (const [path, id] of [
    ['audiences', audience.id],
    ['computed-traits', trait.id],
  ]) {
    await api('POST', `/spaces/${space.id}/${path}/${id}/destinations`, {
      destinationId: destination.id,
      settings: { identify: true, track: true },
    });
  }

  const analytics = new Analytics({ writeKey: source.writeKey, host: ingest, flushAt: 1, flushInterval: 100, maxRetries: 3 });
  const flushed = (fn: (done: (err?: unknown) => void) => void) =>
    new Promise<void>((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
  await flushed((done) => analytics.identify({ userId: 'fleet-u1', traits: { plan: 'pro', email: 'Fleet@E2E.test' } }, done));
  await flushed((done) => analytics.track({ userId: 'fleet-u1', event: 'Order Completed', properties: { revenue: 42 } }, done));
  const entered = await waitFor(() => some((r) => r.body.event === 'Audience Entered'), {
    timeoutMs: 90_000,
    description: 'Audience Entered',
  });
  await waitFor(() => calls((r) => r.body.type === 'identify' && r.body.traits?.[audience.key] === true).length > 0, {
    timeoutMs: 30_000,
    description: 'identify of the entry',
  });
  await waitFor(() => calls((r) => r.body.event === 'Trait Computed').length > 0, { timeoutMs: 30_000, description: 'Trait Computed' });

  const personas = (c: { id: string; key: string }, computationClass: string) => ({
    computation_class: computationClass,
    computation_id: c.id,
    computation_key: c.key,
    namespace: space.id,
    space_id: space.id,
  });
  const integrations = { All: false, Hook: true };
  const identifyEntry = calls((r) => r.body.type === 'identify' && r.body.traits?.[audience.key] === true)[0]!.body;
  expect(identifyEntry).toEqual({
    type: 'identify',
    userId: 'fleet-u1',
    messageId: expect.any(String),
    timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    traits: { [audience.key]: true, email: 'fleet@e2e.test' },
    context: { personas: personas(audience, 'audience') },
    integrations,
  });
  // The exact Track call of CONTRACT.md section 5 for an entry (true) or exit (false).
  const audienceTrack = (event: string, member: boolean) => ({
    type: 'track',
    event,
    userId: 'fleet-u1',
    messageId: expect.any(String),
    timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    properties: { audience_key: audience.key, [audience.key]: member },
    context: { personas: personas(audience, 'audience'), traits: { email: 'fleet@e2e.test' } },
    integrations,
  });
  expect(entered[0]!.body).toEqual(audienceTrack('Audience Entered', true));
  // The identify made the profile: its count is 0 until the order arrives.
  const traitTrack = (
    await waitFor(() => some((r) => r.body.event === 'Trait Computed' && r.body.properties[trait.key] === 1), {
      timeoutMs: 30_000,
      description: 'trait 1',
    })
  )[0]!.body;
  expect(traitTrack).toMatchObject({
    type: 'track',
    userId: 'fleet-u1',
    properties: { trait_key: trait.key, [trait.key]: 1 },
    context: { personas: personas(trait, 'trait') },
    integrations,
  });

  // The condition stops holding: the plan changes, the user exits.
  await flushed((done) => analytics.identify({ userId: 'fleet-u1', traits: { plan: 'free' } }, done));
  const exited = await waitFor(() => some((r) => r.body.event === 'Audience Exited'), {
    timeoutMs: 60_000,
    description: 'Audience Exited',
  });
  expect(exited[0]!.body).toMatchObject({
    type: 'track',
    userId: 'fleet-u1',
    properties: { audience_key: audience.key, [audience.key]: false },
  });
  await waitFor(() => calls((r) => r.body.type === 'identify' && r.body.traits?.[audience.key] === false).length > 0, {
    timeoutMs: 30_000,
    description: 'identify of the exit',
  });

  // A trait is sent only when it changes: a page view changes nothing, a second order makes it 2.
  await flushed((done) => analytics.page({ userId: 'fleet-u1', name: 'Home' }, done));
  await flushed((done) => analytics.track({ userId: 'fleet-u1', event: 'Order Completed' }, done));
  await waitFor(() => calls((r) => r.body.event === 'Trait Computed' && r.body.properties[trait.key] === 2).length > 0, {
    timeoutMs: 60_000,
    description: 'trait 2',
  });
  // Exactly these calls, each once (a redelivery may repeat a call, with the same messageId):
  // the trait at 0 (the identify made the profile), 1 and 2, the entry and the exit; nothing for the page view.
  const unique = () => [...new Map(receiver.ok('/hook').map((r) => [r.body.messageId as string, r.body])).values()];
  await waitFor(() => unique().length >= 10, { timeoutMs: 30_000, description: 'all 10 calls' });
  const email = 'fleet@e2e.test';
  const summary = (b: any) =>
    b.type === 'identify' ? ['identify', b.userId, b.traits] : ['track', b.userId, b.event, b.properties, b.context.traits];
  const order = (a: unknown, b: unknown) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1);
  expect(unique().map(summary).sort(order)).toEqual(
    [
      ['identify', 'fleet-u1', { [trait.key]: 0, email }],
      ['identify', 'fleet-u1', { [trait.key]: 1, email }],
      ['identify', 'fleet-u1', { [trait.key]: 2, email }],
      ['identify', 'fleet-u1', { [audience.key]: true, email }],
      ['identify', 'fleet-u1', { [audience.key]: false, email }],
      ['track', 'fleet-u1', 'Trait Computed', { trait_key: trait.key, [trait.key]: 0 }, { email }],
      ['track', 'fleet-u1', 'Trait Computed', { trait_key: trait.key, [trait.key]: 1 }, { email }],
      ['track', 'fleet-u1', 'Trait Computed', { trait_key: trait.key, [trait.key]: 2 }, { email }],
      ['track', 'fleet-u1', 'Audience Entered', { audience_key: audience.key, [audience.key]: true }, { email }],
      ['track', 'fleet-u1', 'Audience Exited', { audience_key: audience.key, [audience.key]: false }, { email }],
    ].sort(order),
  );
  expect(exited[0]!.body).toEqual(audienceTrack('Audience Exited', false));
  // Redelivery may repeat a call, never with another messageId.
  const byMessage = new Map<string, string>();
  for (const r of receiver.ok('/hook')) {
    const fingerprint = JSON.stringify({ ...r.body, timestamp: undefined });
    expect(byMessage.get(r.body.messageId) ?? fingerprint).toBe(fingerprint);
    byMessage.set(r.body.messageId, fingerprint);
  }
  await analytics.closeAndFlush();
}, 300_000);
