// Salesforce Marketing Cloud (Segment's salesforce-marketing-cloud
// definition, its Send Contact to Data Extension action, issue 19): an
// audience entry and exit through the dispatch step to a row upsert into a
// data extension over real HTTP to an emulator of the tenant's auth and REST
// hosts, the token got from the client credentials for the subdomain and kept
// by the runtime. Real Redis, an injected clock for the retry schedule.
import { actionsTestbed, actionsFixture, mappingOf, statusHash, withEmail } from './testing/actions-fixture';
import { AUDIENCE } from './testing/dispatch-fixture';
import { sfmcEmulator, sfmcError } from './testing/sfmc-emulator';

const { redis, ctx, emulators, runtimes } = actionsTestbed();

const SUBDOMAIN = 'mc563885gzs27c5t9-63k636ttgm';
const settings = { subdomain: SUBDOMAIN, account_id: '514000123', client_id: 'sfmc-client', client_secret: 'sfmc-secret' };
const ROWSET = '/hub/v1/dataevents/key:SEGMENT_AUDIENCES/rowset';
// Send Contact to Data Extension on identify calls: the contact key and the email, the audience key as a column.
const mappings = mappingOf('salesforce-marketing-cloud', 'contactDataExtension', 'type = "identify"', {
  key: 'SEGMENT_AUDIENCES',
  values: { EmailAddress: { '@path': '$.traits.email' }, [AUDIENCE.key]: { '@path': `$.traits.${AUDIENCE.key}` } },
  enable_batching: true,
  batch_size: 50,
});

async function setup(over: { clientSecret?: string; key?: string; columns?: string[] } = {}) {
  const sfmc = await sfmcEmulator({
    subdomain: SUBDOMAIN,
    clientId: 'sfmc-client',
    clientSecret: 'sfmc-secret',
    accountId: '514000123',
    dataExtensions: {
      SEGMENT_AUDIENCES: { primaryKey: 'contactKey', columns: over.columns ?? ['contactKey', 'EmailAddress', AUDIENCE.key] },
    },
  });
  emulators.push(sfmc);
  const fx = actionsFixture(redis, {
    slug: 'salesforce-marketing-cloud',
    // The tenant's two hosts, one emulator.
    hosts: { [sfmc.hosts.auth]: sfmc, [sfmc.hosts.rest]: sfmc },
    settings: { ...settings, ...(over.clientSecret ? { client_secret: over.clientSecret } : {}) },
    mappings: over.key ? [{ ...mappings[0]!, mapping: { ...mappings[0]!.mapping, key: over.key } }] : mappings,
  });
  runtimes.push(fx.actions);
  const calls = (from = 0) =>
    sfmc.receiver.requests.slice(from).map((r) => [r.headers.host, r.path, r.status, r.headers.authorization ?? null]);
  return { sfmc, fx, calls, rows: () => Object.fromEntries(sfmc.rows.get('SEGMENT_AUDIENCES')!) };
}
const row = (profile: string, value: boolean) => ({
  keys: { contactKey: `u-${profile}` },
  values: { EmailAddress: `${profile}@example.com`, [AUDIENCE.key]: value },
});

describe('Salesforce Marketing Cloud (Actions): audiences as a column of a data extension, rows upserted by contact key', () => {
  it('gets a token for the subdomain once, then a chunk of entries is one rowset upsert and the exit another', async () => {
    const { sfmc, fx, calls, rows } = await setup();
    expect(await fx.step.handle([fx.consumed(withEmail('m1', true), 0), fx.consumed(withEmail('m2', true), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(await fx.step.handle([fx.consumed(withEmail('m1', false), 2)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(calls()).toEqual([
      [sfmc.hosts.auth, '/v2/token', 200, null],
      [sfmc.hosts.rest, ROWSET, 200, 'Bearer sfmc-token-1'],
      // The exit starts with the kept token.
      [sfmc.hosts.rest, ROWSET, 200, 'Bearer sfmc-token-1'],
    ]);
    expect(Object.fromEntries(new URLSearchParams(sfmc.receiver.requests[0]!.body))).toEqual({
      account_id: '514000123',
      client_id: 'sfmc-client',
      client_secret: 'sfmc-secret',
      grant_type: 'client_credentials',
    });
    expect(sfmc.receiver.requests.slice(1).map((r) => r.body)).toEqual([[row('m1', true), row('m2', true)], [row('m1', false)]]);
    expect(rows()).toEqual({
      'u-m1': { contactKey: 'u-m1', EmailAddress: 'm1@example.com', [AUDIENCE.key]: false },
      'u-m2': { contactKey: 'u-m2', EmailAddress: 'm2@example.com', [AUDIENCE.key]: true },
    });
    expect(fx.letters).toEqual([]);
  });

  it("a 429 waits for its Retry-After; SFMC's row save failure (10006) is retried; an expired token gets a new one", async () => {
    const { sfmc, fx, calls, rows } = await setup();
    expect(await fx.step.handle([fx.consumed(withEmail('m3', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    sfmc.faults.push(
      { status: 429, headers: { 'retry-after': '5' }, body: { message: 'Too Many Requests', errorcode: 429 } },
      sfmcError(400, 10006, 'Unable to save rows for data extension ID 5f0c3a6e-ab12'),
    );
    expect(await fx.step.handle([fx.consumed(withEmail('m4', true), 1)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(await fx.schedule.size()).toBe(1);
    fx.clock.now += 4999;
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    expect(await fx.drain()).toBe(1);
    fx.clock.now += 60_000;
    expect(await fx.drain()).toBe(1);
    sfmc.expire('sfmc-token-1');
    expect(await fx.step.handle([fx.consumed(withEmail('m5', true), 2)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(calls(2)).toEqual([
      [sfmc.hosts.rest, ROWSET, 429, 'Bearer sfmc-token-1'],
      [sfmc.hosts.rest, ROWSET, 400, 'Bearer sfmc-token-1'], // after 5 s: 10006, retried after backoff
      [sfmc.hosts.rest, ROWSET, 200, 'Bearer sfmc-token-1'],
      [sfmc.hosts.rest, ROWSET, 401, 'Bearer sfmc-token-1'], // m5: expired
      [sfmc.hosts.auth, '/v2/token', 200, null],
      [sfmc.hosts.rest, ROWSET, 200, 'Bearer sfmc-token-2'],
    ]);
    const m4 = sfmc.receiver.requests.slice(2, 5);
    expect(m4.map((r) => r.body)).toEqual(m4.map(() => [row('m4', true)]));
    expect(Object.keys(rows())).toEqual(['u-m3', 'u-m4', 'u-m5']);
    expect(fx.letters).toEqual([]);
  });

  it('refused client credentials are dead-lettered and flagged; an unknown data extension or column is dead-lettered with the message', async () => {
    const revoked = await setup({ clientSecret: 'old-secret' });
    expect(await revoked.fx.step.handle([revoked.fx.consumed(withEmail('m6', true), 0)], ctx)).toEqual([
      {
        kind: 'dlq',
        reason: expect.stringMatching(/^HTTP 401 \(credentials refused\): OAuth token refresh failed.*Client authentication failed/),
        step: 'deliver',
      },
    ]);
    expect(await statusHash(redis, revoked.fx)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });

    const noDe = await setup({ key: 'NOPE' });
    expect(await noDe.fx.step.handle([noDe.fx.consumed(withEmail('m7', true), 0)], ctx)).toEqual([
      {
        kind: 'dlq',
        reason: expect.stringMatching(/^HTTP 400: Unable to find the data extension with external key NOPE/),
        step: 'deliver',
      },
    ]);
    const noColumn = await setup({ columns: ['contactKey', 'EmailAddress'] });
    expect(await noColumn.fx.step.handle([noColumn.fx.consumed(withEmail('m8', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: The field vip is not a column of the data extension/), step: 'deliver' },
    ]);
    expect(await noColumn.fx.schedule.size()).toBe(0);
  });

  it("51 entries are two upserts (the mapping's batch_size, 50: SFMC's recommended rows a call)", async () => {
    const { sfmc, fx, rows } = await setup();
    const many = Array.from({ length: 51 }, (_, i) => fx.consumed(withEmail(`bulk${i}`, true), i));
    expect((await fx.step.handle(many, ctx)).filter((o) => o.kind !== 'ok')).toEqual([]);
    expect(sfmc.receiver.requests.filter((r) => r.path === ROWSET).map((r) => [r.status, r.body.length])).toEqual([
      [200, 50],
      [200, 1],
    ]);
    expect(Object.keys(rows())).toHaveLength(51);
  });
});
