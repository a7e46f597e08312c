// Oracle Responsys (Segment's responsys definition, its Send Audience action,
// issue 19): an audience entry and exit through the dispatch step to a merge
// into a Profile Extension Table over real HTTP to an emulator of Responsys's
// REST API, the token got from the username and password and kept by the
// runtime. Real Redis, an injected clock for the retry schedule.
import { actionsTestbed, actionsFixture, mappingOf, statusHash, withEmail } from './testing/actions-fixture';
import { AUDIENCE } from './testing/dispatch-fixture';
import { responsysEmulator, responsysError } from './testing/responsys-emulator';

const { redis, ctx, emulators, runtimes } = actionsTestbed();

const RESPONSYS = 'njp1q7u-api.responsys.ocs.oraclecloud.com';
const settings = {
  username: 'api-user',
  userPassword: 'api-password',
  baseUrl: `https://${RESPONSYS}`,
  profileListName: 'CONTACTS_LIST',
  profileExtensionTable: 'SEGMENT_AUDIENCES',
  insertOnNoMatch: true,
  matchColumnName1: 'EMAIL_ADDRESS',
  updateOnMatch: 'REPLACE_ALL',
  defaultPermissionStatus: 'OPTOUT',
};
const TOKEN = '/rest/api/v1.3/auth/token';
const MERGE = '/rest/asyncApi/v1.3/lists/CONTACTS_LIST/listExtensions/SEGMENT_AUDIENCES/members';
const VIP = AUDIENCE.key.toUpperCase();
// Send Audience on identify calls: the audience key (upper-cased) as a column of the table.
const mappings = mappingOf('responsys', 'sendAudience', 'type = "identify"');

async function setup(over: { password?: string; columns?: string[]; table?: string } = {}) {
  const responsys = await responsysEmulator({
    username: 'api-user',
    password: 'api-password',
    list: 'CONTACTS_LIST',
    tables: { SEGMENT_AUDIENCES: over.columns ?? ['EMAIL_ADDRESS_', 'CUSTOMER_ID_', VIP] },
  });
  emulators.push(responsys);
  const fx = actionsFixture(redis, {
    slug: 'responsys',
    hosts: { [RESPONSYS]: responsys },
    settings: {
      ...settings,
      ...(over.password ? { userPassword: over.password } : {}),
      ...(over.table ? { profileExtensionTable: over.table } : {}),
    },
    mappings,
  });
  runtimes.push(fx.actions);
  return { responsys, fx, rows: () => Object.fromEntries(responsys.tables.get('SEGMENT_AUDIENCES')!.rows) };
}
const merge = (records: unknown[][]) => ({
  recordData: { fieldNames: ['EMAIL_ADDRESS_', 'CUSTOMER_ID_', VIP], records, mapTemplateName: '' },
  insertOnNoMatch: true,
  updateOnMatch: 'REPLACE_ALL',
  matchColumnName1: 'EMAIL_ADDRESS',
  matchColumnName2: '',
});

describe('Responsys (Actions): audiences as a column of a Profile Extension Table, merged by email', () => {
  it('logs in once, then a chunk of entries is one merge and the exit another, with the token as the Authorization header', async () => {
    const { responsys, fx, rows } = await setup();
    expect(await fx.step.handle([fx.consumed(withEmail('r1', true), 0), fx.consumed(withEmail('r2', true), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(await fx.step.handle([fx.consumed(withEmail('r1', false), 2)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(responsys.receiver.requests.map((r) => [r.method, r.path, r.status, r.headers.authorization ?? null, r.headers.host])).toEqual([
      ['POST', TOKEN, 200, null, RESPONSYS],
      ['POST', MERGE, 200, 'rsys-token-1', RESPONSYS],
      // The exit starts with the kept token: no second login.
      ['POST', MERGE, 200, 'rsys-token-1', RESPONSYS],
    ]);
    expect(Object.fromEntries(new URLSearchParams(responsys.receiver.requests[0]!.body))).toEqual({
      user_name: 'api-user',
      password: 'api-password',
      auth_type: 'password',
    });
    expect(responsys.receiver.requests.slice(1).map((r) => r.body)).toEqual([
      merge([
        ['r1@example.com', 'u-r1', true],
        ['r2@example.com', 'u-r2', true],
      ]),
      merge([['r1@example.com', 'u-r1', false]]),
    ]);
    expect(rows()).toEqual({
      'r1@example.com': { EMAIL_ADDRESS_: 'r1@example.com', CUSTOMER_ID_: 'u-r1', [VIP]: false },
      'r2@example.com': { EMAIL_ADDRESS_: 'r2@example.com', CUSTOMER_ID_: 'u-r2', [VIP]: true },
    });
    expect(fx.letters).toEqual([]);
  });

  it('a 429 waits for its Retry-After; API_LIMIT_EXCEEDED (a 401), of a merge or of the login, is a rate limit, not refused credentials', async () => {
    const { responsys, fx, rows } = await setup();
    const merges = (from: number) =>
      responsys.receiver.requests.slice(from).map((r) => [r.path, r.status, r.headers.authorization ?? null]);
    expect(await fx.step.handle([fx.consumed(withEmail('r3', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);

    responsys.faults.push(responsysError(429, 'TOO_MANY_REQUESTS', 'Too many requests', { 'retry-after': '4' }));
    expect(await fx.step.handle([fx.consumed(withEmail('r4', true), 1)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(await fx.schedule.size()).toBe(1);
    fx.clock.now += 3999;
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    expect(await fx.drain()).toBe(1);
    expect(merges(2)).toEqual([
      [MERGE, 429, 'rsys-token-1'],
      [MERGE, 200, 'rsys-token-1'], // after 4 s
    ]);

    // Throttled merges: actions-core takes each 401 for a stale token, logs in again and tries again, a few times.
    responsys.throttleMerges(Infinity);
    expect(await fx.step.handle([fx.consumed(withEmail('r5', true), 2)], ctx)).toEqual([{ kind: 'ok' }]);
    const throttled = merges(4);
    expect(new Set(throttled.map(([path, status]) => `${path} ${status}`))).toEqual(new Set([`${MERGE} 401`, `${TOKEN} 200`]));
    // Still throttled after actions-core's attempts: a rate limit, retried after backoff (not refused credentials).
    expect(await fx.schedule.size()).toBe(1);
    responsys.throttleMerges(0);
    fx.clock.now += 60_000;
    expect(await fx.drain()).toBe(1);
    const token = () => responsys.receiver.requests[responsys.receiver.requests.length - 1]!.headers.authorization;
    const kept = token();
    expect(merges(4 + throttled.length)).toEqual([[MERGE, 200, kept]]);

    // The login throttled too.
    responsys.faults.push(
      responsysError(401, 'API_LIMIT_EXCEEDED', 'Throttling limit exceeded for mergeProfileExtensionRecords'),
      responsysError(401, 'API_LIMIT_EXCEEDED', 'Throttling limit exceeded for login'),
    );
    const before = responsys.receiver.requests.length;
    expect(await fx.step.handle([fx.consumed(withEmail('r6', true), 3)], ctx)).toEqual([{ kind: 'ok' }]);
    fx.clock.now += 120_000;
    expect(await fx.drain()).toBe(1);
    expect(merges(before)).toEqual([
      [MERGE, 401, kept],
      [TOKEN, 401, null], // retried after backoff
      [MERGE, 200, kept],
    ]);
    expect(await statusHash(redis, fx)).not.toHaveProperty('credentialsError');

    // An expired token (Responsys's last two hours) gets a new one.
    responsys.expire(String(kept));
    const last = responsys.receiver.requests.length;
    expect(await fx.step.handle([fx.consumed(withEmail('r7', true), 4)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(merges(last)).toEqual([
      [MERGE, 401, kept],
      [TOKEN, 200, null],
      [MERGE, 200, expect.not.stringMatching(String(kept))],
    ]);
    // Every attempt sent the same record.
    const sent = responsys.receiver.requests.filter((r) => r.path === MERGE).map((r) => r.body.recordData.records);
    expect(new Set(sent.map((records) => JSON.stringify(records))).size).toBe(5);
    expect(Object.keys(rows())).toEqual(['r3', 'r4', 'r5', 'r6', 'r7'].map((p) => `${p}@example.com`));
    expect(fx.letters).toEqual([]);
  });

  it('a refused password is dead-lettered and flagged; an unknown table or column is dead-lettered with the message', async () => {
    const revoked = await setup({ password: 'old-password' });
    expect(await revoked.fx.step.handle([revoked.fx.consumed(withEmail('r5', true), 0)], ctx)).toEqual([
      {
        kind: 'dlq',
        reason: expect.stringMatching(/^HTTP 401 \(credentials refused\): OAuth token refresh failed.*AUTHENTICATION_FAILED/),
        step: 'deliver',
      },
    ]);
    expect(await statusHash(redis, revoked.fx)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });

    const noTable = await setup({ table: 'NOPE' });
    expect(await noTable.fx.step.handle([noTable.fx.consumed(withEmail('r6', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 404: .*PROFILE_EXTENSION_NOT_FOUND/), step: 'deliver' },
    ]);
    const noColumn = await setup({ columns: ['EMAIL_ADDRESS_', 'CUSTOMER_ID_'] });
    expect(await noColumn.fx.step.handle([noColumn.fx.consumed(withEmail('r7', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: .*Field VIP is not a column of SEGMENT_AUDIENCES/), step: 'deliver' },
    ]);
    expect(await noColumn.fx.schedule.size()).toBe(0);
  });

  it('201 entries are two merges (200 records at most)', async () => {
    const { responsys, fx, rows } = await setup();
    const many = Array.from({ length: 201 }, (_, i) => fx.consumed(withEmail(`bulk${i}`, true), i));
    expect((await fx.step.handle(many, ctx)).filter((o) => o.kind !== 'ok')).toEqual([]);
    expect(responsys.receiver.requests.filter((r) => r.path === MERGE).map((r) => [r.status, r.body.recordData.records.length])).toEqual([
      [200, 200],
      [200, 1],
    ]);
    expect(Object.keys(rows())).toHaveLength(201);
  });
});
