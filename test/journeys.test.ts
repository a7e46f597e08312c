// Journeys end to end (issue 20, CONTRACT.md section 9): the whole fleet as
// processes on real Kafka, schema registry and Redis; a journey made and
// published through the control plane (entry audience -> send -> wait 2 s ->
// split on a condition -> a send step on each branch), events sent to the
// ingest over HTTP, and a local receiver behind a webhook destination that
// must get exactly the calls of each send step. The batch scheduler is killed
// during a wait: nobody is lost and nothing is sent twice.
import { serviceEnv, startService, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';
import { Receiver, type Received } from './helpers/receiver';

const TOKEN = 'journeys-e2e-token';
const prefix = `${uniqueName('journeys')}.`;
const env = serviceEnv(prefix, {
  CONTROL_PLANE_TOKEN: TOKEN,
  DESTINATION_ID: '*',
  DESTINATION_ALLOWED_HOSTS: '127.0.0.0/8',
  JOURNEY_POLL_MS: '100',
});
let procs: ServiceProcess[] = [];
let scheduler: ServiceProcess;
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
  receiver = await new Receiver().start();
  const cp = startService('control-plane', env);
  base = `http://127.0.0.1:${await cp.port()}`;
  const others = ['ingest', 'identity-resolver', 'realtime-evaluator', 'dispatcher'].map((name) => startService(name, env));
  scheduler = startService('batch-scheduler', env);
  procs = [cp, ...others];
  ingest = `http://127.0.0.1:${await others[0]!.port()}`;
  await Promise.all([...others, scheduler].map((p) => p.port()));
}, 300_000);

afterAll(async () => {
  await Promise.all([...procs, scheduler].map((p) => p?.stop()));
  await receiver?.stop();
});

async function send(writeKey: string, batch: Array<Record<string, unknown>>): Promise<void> {
  const res = await fetch(`${ingest}/v1/batch`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ batch: batch.map((e) => ({ messageId: uniqueName('m'), timestamp: new Date().toISOString(), ...e })) }),
  });
  expect(res.status).toBe(200);
}

/** Each call once (a redelivery may repeat a call, always with the same messageId). */
const unique = (path: string) => [...new Map(receiver.ok(path).map((r) => [r.body.messageId as string, r])).values()];
const of = (path: string, userId: string, pred: (r: Received) => boolean = () => true) =>
  unique(path).filter((r) => r.body.userId === userId && pred(r));

it("walks users through entry, send, a 2 s wait and a split to each branch's send step, with exact payloads and across a scheduler kill", async () => {
  const space = (await api('POST', '/spaces', { name: 'Journeys' })).space;
  const source = (await api('POST', `/spaces/${space.id}/sources`, { name: 'Web' })).source;
  const signedUp = (
    await api('POST', `/spaces/${space.id}/audiences`, {
      name: 'Signed Up',
      definition: { query: "event('Signed Up').count() >= 1", type: 'users' },
    })
  ).audience;
  const hook = (
    await api('POST', `/spaces/${space.id}/destinations`, { name: 'Hook', type: 'webhook', settings: { url: `${receiver.url}/hook` } })
  ).destination;
  const to = [{ destinationId: hook.id, settings: { identify: true, track: true } }];
  const created = (
    await api('POST', `/spaces/${space.id}/journeys`, {
      name: 'First Purchase',
      key: 'first_purchase',
      entry: { audienceId: signedUp.id },
      reentry: 'never',
      includeExistingMembers: false,
      start: 'welcome',
      steps: [
        { id: 'welcome', type: 'send', name: 'Opened Email', destinations: to, next: 'wait' },
        { id: 'wait', type: 'wait', duration: '2 seconds', next: 'bought' },
        { id: 'bought', type: 'split', query: "event('Order Completed').count() >= 1", true: 'thanks', false: 'nudge' },
        { id: 'thanks', type: 'send', name: 'Thank You', destinations: to, next: 'exit' },
        { id: 'nudge', type: 'send', name: 'Come Back', destinations: to, next: 'exit' },
        { id: 'exit', type: 'exit' },
      ],
    })
  ).journey;
  expect(created.status).toBe('Draft');
  const keys = created.stepKeys as Record<string, string>;
  expect(keys.welcome).toMatch(/^j_o_first_purchase__opened_email_[a-z0-9]{6}$/);
  expect(keys.thanks).toMatch(/^j_o_first_purchase__thank_you_[a-z0-9]{6}$/);
  expect(keys.nudge).toMatch(/^j_o_first_purchase__come_back_[a-z0-9]{6}$/);
  const journey = (await api('POST', `/spaces/${space.id}/journeys/${created.id}/publish`)).journey;
  expect(journey.status).toBe('Live');
  // The split's condition is an audience the publish made: wait until the evaluator computes it.
  const condition = journey.versions[0].conditions.bought[0] as string;
  await waitFor(async () => (await api('GET', `/spaces/${space.id}/audiences/${condition}`)).audience.status === 'Live', {
    timeoutMs: 60_000,
    description: 'the split condition audience live',
  });

  // buyer: signs up and buys within the wait; browser: only signs up.
  await send(source.writeKey, [
    { type: 'identify', userId: 'j-buyer', traits: { email: 'buyer@journeys.test' } },
    { type: 'track', userId: 'j-buyer', event: 'Signed Up' },
    { type: 'identify', userId: 'j-browser', traits: { email: 'browser@journeys.test' } },
    { type: 'track', userId: 'j-browser', event: 'Signed Up' },
  ]);
  const key = (k: string) => (r: Received) => r.body.properties?.[k] === true || r.body.traits?.[k] === true;
  await waitFor(() => of('/hook', 'j-buyer', key(keys.welcome)).length === 2, { timeoutMs: 60_000, description: 'buyer welcome' });
  await send(source.writeKey, [{ type: 'track', userId: 'j-buyer', event: 'Order Completed' }]);

  await waitFor(() => of('/hook', 'j-buyer', key(keys.thanks)).length === 2 && of('/hook', 'j-browser', key(keys.nudge)).length === 2, {
    timeoutMs: 60_000,
    description: "each branch's send step",
  });

  const personas = (k: string) => ({
    computation_class: 'audience',
    computation_id: journey.id,
    computation_key: k,
    namespace: space.id,
    space_id: space.id,
  });
  const track = of('/hook', 'j-buyer', (r) => r.body.type === 'track' && key(keys.thanks)(r))[0]!.body;
  expect(track).toEqual({
    type: 'track',
    event: 'Audience Entered',
    userId: 'j-buyer',
    messageId: expect.any(String),
    timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    properties: expect.objectContaining({ [keys.thanks]: true }),
    context: { personas: personas(keys.thanks), traits: { email: 'buyer@journeys.test' } },
    integrations: { All: false, Hook: true },
  });
  const identify = of('/hook', 'j-browser', (r) => r.body.type === 'identify' && key(keys.nudge)(r))[0]!.body;
  expect(identify).toEqual({
    type: 'identify',
    userId: 'j-browser',
    messageId: expect.any(String),
    timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    traits: { [keys.nudge]: true, email: 'browser@journeys.test' },
    context: { personas: personas(keys.nudge) },
    integrations: { All: false, Hook: true },
  });
  // The wait held them its 2 s: the branch step was reached (the calls' timestamp) 2 s or more after the welcome.
  const at = (userId: string, k: string) => Date.parse(of('/hook', userId, key(k))[0]!.body.timestamp as string);
  expect(at('j-browser', keys.nudge) - at('j-browser', keys.welcome)).toBeGreaterThanOrEqual(2000);

  // A kill of the batch scheduler during a wait: the user moves on after the restart, once.
  await send(source.writeKey, [
    { type: 'identify', userId: 'j-waiter', traits: { email: 'waiter@journeys.test' } },
    { type: 'track', userId: 'j-waiter', event: 'Signed Up' },
  ]);
  await waitFor(() => of('/hook', 'j-waiter', key(keys.welcome)).length === 2, { timeoutMs: 60_000, description: 'waiter welcome' });
  await scheduler.stop('SIGKILL');
  scheduler = startService('batch-scheduler', env);
  await scheduler.port();
  await waitFor(() => of('/hook', 'j-waiter', key(keys.nudge)).length === 2, {
    timeoutMs: 90_000,
    description: 'waiter nudge after restart',
  });

  // Per step: how many passed, how many are in it now.
  const stats = await waitFor(
    async () => {
      const j = (await api('GET', `/spaces/${space.id}/journeys/${journey.id}`)).journey;
      const s = Object.fromEntries((j.stats as Array<{ id: string; entered: number; current: number }>).map((x) => [x.id, x]));
      return s.exit?.entered === 3 ? s : undefined;
    },
    { timeoutMs: 30_000, description: 'journey stats' },
  );
  expect(stats.welcome).toMatchObject({ entered: 3, current: 0 });
  expect(stats.wait).toMatchObject({ entered: 3, current: 0 });
  expect(stats.thanks).toMatchObject({ entered: 1 });
  expect(stats.nudge).toMatchObject({ entered: 2 });

  // Exactly these calls, each once: no exits, nothing twice after the kill. Quiet period first:
  // anything still to come (a second copy of a step) would arrive within it.
  const settled = receiver.ok('/hook').length;
  const quietFrom = Date.now();
  await waitFor(() => Date.now() - quietFrom >= 3000 && receiver.ok('/hook').length === settled, {
    timeoutMs: 20_000,
    description: 'quiet',
  });
  const summary = unique('/hook')
    .map(
      (r) =>
        `${r.body.userId} ${r.body.type} ${Object.keys(r.body.type === 'track' ? r.body.properties : r.body.traits).find((k) => k.startsWith('j_o_'))}`,
    )
    .sort();
  const expected = [
    ['j-buyer', keys.welcome],
    ['j-buyer', keys.thanks],
    ['j-browser', keys.welcome],
    ['j-browser', keys.nudge],
    ['j-waiter', keys.welcome],
    ['j-waiter', keys.nudge],
  ].flatMap(([u, k]) => [`${u} identify ${k}`, `${u} track ${k}`]);
  expect(summary).toEqual(expected.sort());
  expect(unique('/hook').some((r) => r.body.event === 'Audience Exited')).toBe(false);
}, 300_000);
