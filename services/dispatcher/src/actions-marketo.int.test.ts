// Marketo lead upsert, our own definition in actions-core's format (issue 19
// item 5): an audience entry and exit through the dispatch step to Marketo's
// leads.json over real HTTP to an emulator of its REST API, the access token
// got from the client credentials through actions-core's refresh and kept by
// the runtime. Real Redis, an injected clock for the retry schedule.
import { presetMappings } from '@engage/actions';
import { actionsTestbed, actionsFixture, statusHash, withEmail } from './testing/actions-fixture';
import { AUDIENCE } from './testing/dispatch-fixture';
import { marketoEmulator, marketoError } from './testing/marketo-emulator';

const { redis, ctx, emulators, runtimes } = actionsTestbed();

const MARKETO = '123-abc-456.mktorest.com';
const settings = { munchkinId: '123-ABC-456', clientId: 'mkto-client', clientSecret: 'mkto-secret' };
const TOKEN = '/identity/oauth/token';
const LEADS = '/rest/v1/leads.json';

async function setup(over: { clientSecret?: string; fields?: string[] } = {}) {
  const marketo = await marketoEmulator({ clientId: 'mkto-client', clientSecret: 'mkto-secret', fields: over.fields ?? [AUDIENCE.key] });
  emulators.push(marketo);
  // The definition's preset: identify calls, the audience key as the lead field.
  const mappings = presetMappings('marketo', () => 'map_marketo');
  const fx = actionsFixture(redis, {
    slug: 'marketo',
    hosts: { [MARKETO]: marketo },
    settings: { ...settings, ...(over.clientSecret ? { clientSecret: over.clientSecret } : {}) },
    mappings,
  });
  runtimes.push(fx.actions);
  return { marketo, fx };
}
const upsert = (input: unknown[]) => ({ action: 'createOrUpdate', lookupField: 'email', input });

describe('Marketo (our own definition): audiences as lead fields, leads upserted by email', () => {
  it('gets a token from the client credentials once, then a chunk of entries is one createOrUpdate and the exit another', async () => {
    const { marketo, fx } = await setup();
    expect(await fx.step.handle([fx.consumed(withEmail('m1', true), 0), fx.consumed(withEmail('m2', true), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(await fx.step.handle([fx.consumed(withEmail('m1', false), 2)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(marketo.receiver.requests.map((r) => [r.method, r.path, r.status, r.headers.authorization ?? null, r.headers.host])).toEqual([
      ['POST', TOKEN, 200, null, MARKETO],
      ['POST', LEADS, 200, 'Bearer mkto-token-1', MARKETO],
      // The next chunk starts with the kept token: no second token request.
      ['POST', LEADS, 200, 'Bearer mkto-token-1', MARKETO],
    ]);
    expect(Object.fromEntries(new URLSearchParams(marketo.receiver.requests[0]!.body))).toEqual({
      grant_type: 'client_credentials',
      client_id: 'mkto-client',
      client_secret: 'mkto-secret',
    });
    expect(marketo.receiver.requests.slice(1).map((r) => r.body)).toEqual([
      upsert([
        { email: 'm1@example.com', [AUDIENCE.key]: true },
        { email: 'm2@example.com', [AUDIENCE.key]: true },
      ]),
      upsert([{ email: 'm1@example.com', [AUDIENCE.key]: false }]),
    ]);
    expect([...marketo.leads.values()]).toEqual([
      { email: 'm1@example.com', [AUDIENCE.key]: false },
      { email: 'm2@example.com', [AUDIENCE.key]: true },
    ]);
    expect(fx.letters).toEqual([]);
  });

  it('an expired token (602) gets a new one and the call is delivered; 606 and 607 in a 200 are retried with the same leads', async () => {
    const { marketo, fx } = await setup();
    expect(await fx.step.handle([fx.consumed(withEmail('m3', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    marketo.expire('mkto-token-1');
    marketo.faults.push(
      marketoError('606', "Max rate limit '100' exceeded with in '20' secs"),
      marketoError('607', "Daily quota '50000' reached"),
    );
    expect(await fx.step.handle([fx.consumed(withEmail('m4', true), 1)], ctx)).toEqual([{ kind: 'ok' }]);
    fx.clock.now += 60_000;
    expect(await fx.drain()).toBe(1);
    fx.clock.now += 60_000;
    expect(await fx.drain()).toBe(1);
    expect(marketo.receiver.requests.map((r) => [r.path, r.headers.authorization ?? null])).toEqual([
      [TOKEN, null],
      [LEADS, 'Bearer mkto-token-1'],
      [LEADS, 'Bearer mkto-token-1'], // 606 (a fault)
      [LEADS, 'Bearer mkto-token-1'], // 607 (a fault), after backoff
      [LEADS, 'Bearer mkto-token-1'], // 602: expired
      [TOKEN, null],
      [LEADS, 'Bearer mkto-token-2'],
    ]);
    const m4 = marketo.receiver.requests.filter((r) => r.path === LEADS).slice(1);
    expect(m4.map((r) => r.body)).toEqual(m4.map(() => upsert([{ email: 'm4@example.com', [AUDIENCE.key]: true }])));
    expect([...marketo.leads.values()].map((l) => l.email)).toEqual(['m3@example.com', 'm4@example.com']);
    expect(fx.letters).toEqual([]);
  });

  it('refused client credentials are dead-lettered and flagged; an unknown field (1006) is dead-lettered with the message', async () => {
    const revoked = await setup({ clientSecret: 'old-secret' });
    expect(await revoked.fx.step.handle([revoked.fx.consumed(withEmail('m5', true), 0)], ctx)).toEqual([
      {
        kind: 'dlq',
        reason: expect.stringMatching(/^HTTP 401 \(credentials refused\): OAuth token refresh failed.*Bad client credentials/),
        step: 'deliver',
      },
    ]);
    expect(await statusHash(redis, revoked.fx)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });

    const noField = await setup({ fields: [] });
    expect(await noField.fx.step.handle([noField.fx.consumed(withEmail('m6', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: Marketo: 1006: Field 'vip' not found/), step: 'deliver' },
    ]);
    expect(await noField.fx.schedule.size()).toBe(0);
  });

  it('a lead Marketo skips, or an invalid email, is dead-lettered alone; 301 entries are two calls (300 leads at most)', async () => {
    const { marketo, fx } = await setup();
    // Two leads with one email (duplicates in the instance): Marketo skips that lead (1007).
    marketo.leads.set('900', { email: 'm7@example.com' }).set('901', { email: 'm7@example.com' });
    const bad = withEmail('m9', true, {
      external_ids: [
        { type: 'user_id', id: 'u-m9' },
        { type: 'email', id: 'not-an-email' },
      ],
    });
    const outcomes = await fx.step.handle(
      [fx.consumed(withEmail('m7', true), 0), fx.consumed(withEmail('m8', true), 1), fx.consumed(bad, 2)],
      ctx,
    );
    expect(outcomes).toEqual([
      {
        kind: 'dlq',
        reason: expect.stringMatching(/^HTTP 400: Marketo skipped the lead \(1007: Multiple leads match the lookup criteria\)/),
        step: 'deliver',
      },
      { kind: 'ok' },
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: Email must be a valid email address/), step: 'deliver' },
    ]);
    expect(marketo.receiver.requests.filter((r) => r.path === LEADS).map((r) => r.body.input)).toEqual([
      [
        { email: 'm7@example.com', [AUDIENCE.key]: true },
        { email: 'm8@example.com', [AUDIENCE.key]: true },
      ],
    ]);
    const many = Array.from({ length: 301 }, (_, i) => fx.consumed(withEmail(`bulk${i}`, true), 10 + i));
    expect((await fx.step.handle(many, ctx)).filter((o) => o.kind !== 'ok')).toEqual([]);
    const calls = marketo.receiver.requests.filter((r) => r.path === LEADS).slice(1);
    expect(calls.map((r) => [r.status, r.body.input.length])).toEqual([
      [200, 300],
      [200, 1],
    ]);
    expect(marketo.leads.size).toBe(2 + 1 + 301);
  });
});
