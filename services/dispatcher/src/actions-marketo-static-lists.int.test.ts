// Marketo Static Lists (Segment's marketo-static-lists definition, issue 19):
// the audience as a static list made through the definition's createAudience,
// an entry a bulk CSV import into it, an exit a lead lookup and a removal,
// over real HTTP to an emulator of Marketo's REST and bulk APIs. The token
// comes from the client credentials and is kept by the runtime. Real Redis,
// an injected clock for the retry schedule.
import { createExternalAudience } from '@engage/actions';
import { actionsTestbed, actionsFixture, mappingOf, statusHash, withEmail } from './testing/actions-fixture';
import { AUDIENCE, SPACE } from './testing/dispatch-fixture';
import { marketoError, marketoListsEmulator } from './testing/marketo-emulator';

const { redis, ctx, emulators, runtimes } = actionsTestbed();

const MARKETO = '123-abc-456.mktorest.com';
const settings = {
  client_id: 'mkto-client',
  client_secret: 'mkto-secret',
  api_endpoint: `https://${MARKETO}/rest`,
  folder_name: 'Segment',
};
const audience = { id: AUDIENCE.id, key: AUDIENCE.key, name: 'VIP', spaceId: SPACE };
// The definition's presets are warehouse and journeys events: the two mappings its docs give for Engage audiences.
const mappings = [
  ...mappingOf('marketo-static-lists', 'addToList', 'type = "track" and event = "Audience Entered"'),
  ...mappingOf('marketo-static-lists', 'removeFromList', 'type = "track" and event = "Audience Exited"'),
];
const TOKEN = '/identity/oauth/token';
const importPath = (listId: string) => `/bulk/v1/leads.json?format=csv&listId=${listId}&lookupField=email`;
const csvOf = (body: string) => /filename="leads.csv"\r\nContent-Type: text\/csv\r\n\r\n([\s\S]*?)\r\n/.exec(body)?.[1];

async function setup(over: { clientSecret?: string; listId?: string } = {}) {
  const marketo = await marketoListsEmulator({ clientId: 'mkto-client', clientSecret: 'mkto-secret', folders: ['Segment'] });
  emulators.push(marketo);
  const listId = await createExternalAudience({ slug: 'marketo-static-lists', settings }, audience, { [MARKETO]: marketo.target });
  const fx = actionsFixture(redis, {
    slug: 'marketo-static-lists',
    hosts: { [MARKETO]: marketo },
    settings: { ...settings, ...(over.clientSecret ? { client_secret: over.clientSecret } : {}) },
    mappings,
    connection: { identify: false, track: true },
    externalAudienceId: over.listId ?? listId,
  });
  runtimes.push(fx.actions);
  // The list's creation is not the dispatcher's: its requests are left out of what a test reads.
  const created = marketo.receiver.requests.length;
  return { marketo, fx, listId, calls: () => marketo.receiver.requests.slice(created) };
}

describe('Marketo Static Lists (Actions audience destination): a static list per audience, leads imported and removed', () => {
  it('createAudience makes the list in the folder; a chunk of entries is one CSV import into it, the exit a lookup and a removal', async () => {
    const { marketo, fx, listId, calls } = await setup();
    expect(marketo.receiver.requests.map((r) => [r.method, r.path, r.headers.host])).toEqual([
      ['POST', TOKEN, MARKETO],
      ['GET', '/rest/asset/v1/folder/byName.json?name=Segment', MARKETO],
      ['POST', '/rest/asset/v1/staticLists.json?folder=100&name=VIP', MARKETO],
    ]);
    expect([...marketo.lists]).toEqual([[listId, { name: 'VIP', folderId: 100, members: new Set() }]]);

    expect(await fx.step.handle([fx.consumed(withEmail('s1', true), 0), fx.consumed(withEmail('s2', true), 1)], ctx)).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
    ]);
    expect(marketo.membersOf(listId)).toEqual(['s1@example.com', 's2@example.com']);
    expect(await fx.step.handle([fx.consumed(withEmail('s1', false), 2)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(calls().map((r) => [r.method, r.path, r.status, r.headers.authorization ?? null])).toEqual([
      ['POST', TOKEN, 200, null],
      ['POST', importPath(listId), 200, 'Bearer mkto-token-2'],
      // The exit starts with the kept token: no second token request.
      ['GET', '/rest/v1/leads.json?filterType=email&filterValues=s1%40example.com&fields=id%2Cemail', 200, 'Bearer mkto-token-2'],
      ['DELETE', `/rest/v1/lists/${listId}/leads.json?id=5001`, 200, 'Bearer mkto-token-2'],
    ]);
    expect(Object.fromEntries(new URLSearchParams(calls()[0]!.body))).toEqual({
      client_id: 'mkto-client',
      client_secret: 'mkto-secret',
      grant_type: 'client_credentials',
    });
    expect(calls()[1]!.headers['content-type']).toBe('multipart/form-data; boundary=--SEGMENT-DATA--');
    expect(csvOf(calls()[1]!.body)).toBe('email\ns1@example.com\ns2@example.com');
    expect(marketo.membersOf(listId)).toEqual(['s2@example.com']);
    expect(fx.letters).toEqual([]);
  });

  it('an expired token (602) gets a new one; 606 in a 200 is a rate limit, a 429 waits for its Retry-After; the same leads each time', async () => {
    const { marketo, fx, listId, calls } = await setup();
    expect(await fx.step.handle([fx.consumed(withEmail('s3', true), 0)], ctx)).toEqual([{ kind: 'ok' }]);
    marketo.expire('mkto-token-2');
    marketo.faults.push(
      {
        status: 429,
        headers: { 'retry-after': '3' },
        ...{ body: marketoError('606', "Max rate limit '100' exceeded with in '20' secs").body },
      },
      marketoError('606', "Max rate limit '100' exceeded with in '20' secs"),
    );
    expect(await fx.step.handle([fx.consumed(withEmail('s4', true), 1)], ctx)).toEqual([{ kind: 'ok' }]);
    expect(await fx.schedule.size()).toBe(1);
    fx.clock.now += 2999;
    expect(await fx.drain()).toBe(0);
    fx.clock.now += 1;
    expect(await fx.drain()).toBe(1);
    fx.clock.now += 60_000;
    expect(await fx.drain()).toBe(1);
    expect(calls().map((r) => [r.path, r.status, r.headers.authorization ?? null])).toEqual([
      [TOKEN, 200, null],
      [importPath(listId), 200, 'Bearer mkto-token-2'],
      [importPath(listId), 429, 'Bearer mkto-token-2'], // a gateway 429 with Retry-After: 3
      [importPath(listId), 200, 'Bearer mkto-token-2'], // 606 in a 200, after 3 s: retried after backoff
      [importPath(listId), 200, 'Bearer mkto-token-2'], // 602: expired
      [TOKEN, 200, null],
      [importPath(listId), 200, 'Bearer mkto-token-3'],
    ]);
    const s4 = calls()
      .slice(2)
      .filter((r) => r.path !== TOKEN);
    expect(s4.map((r) => csvOf(r.body))).toEqual(s4.map(() => 'email\ns4@example.com'));
    expect(marketo.membersOf(listId)).toEqual(['s3@example.com', 's4@example.com']);
    expect(fx.letters).toEqual([]);
  });

  it('refused client credentials are dead-lettered and flagged; a list Marketo does not have (1013) is dead-lettered with its message', async () => {
    const revoked = await setup({ clientSecret: 'old-secret' });
    expect(await revoked.fx.step.handle([revoked.fx.consumed(withEmail('s5', true), 0)], ctx)).toEqual([
      {
        kind: 'dlq',
        reason: expect.stringMatching(/^HTTP 401 \(credentials refused\): OAuth token refresh failed.*Bad client credentials/),
        step: 'deliver',
      },
    ]);
    expect(await statusHash(redis, revoked.fx)).toMatchObject({ credentialsError: expect.stringMatching(/^HTTP 401/) });

    const gone = await setup({ listId: '9999' });
    expect(await gone.fx.step.handle([gone.fx.consumed(withEmail('s6', true), 0)], ctx)).toEqual([
      { kind: 'dlq', reason: expect.stringMatching(/^HTTP 400: Static list 9999 not found/), step: 'deliver' },
    ]);
    expect(await gone.fx.schedule.size()).toBe(0);
  });

  it('an exit of someone Marketo has no lead for is done and does not fail the others of its batch (300 exits at most)', async () => {
    const { marketo, fx, listId, calls } = await setup();
    const entries = Array.from({ length: 301 }, (_, i) => fx.consumed(withEmail(`e${i}`, true), i));
    expect((await fx.step.handle(entries, ctx)).filter((o) => o.kind !== 'ok')).toEqual([]);
    expect(marketo.membersOf(listId)).toHaveLength(301);
    // s8 has no lead: the lookup answers the others only, in its own order. The mapping's batch_size (300) splits 302 exits.
    const exits = [
      fx.consumed(withEmail('s8', false), 400),
      ...Array.from({ length: 301 }, (_, i) => fx.consumed(withEmail(`e${i}`, false), 401 + i)),
    ];
    expect((await fx.step.handle(exits, ctx)).filter((o) => o.kind !== 'ok')).toEqual([]);
    expect(
      calls()
        .filter((r) => r.path.startsWith('/rest/v1/'))
        .map((r) => [
          r.method,
          r.status,
          new URL(r.path, 'http://m').searchParams.get('filterValues')?.split(',').length ??
            new URL(r.path, 'http://m').searchParams.get('id')!.split(',').length,
        ]),
    ).toEqual([
      ['GET', 200, 300],
      ['DELETE', 200, 299],
      ['GET', 200, 2],
      ['DELETE', 200, 2],
    ]);
    expect(marketo.membersOf(listId)).toEqual([]);
    expect(fx.letters).toEqual([]);
  });

  it('createAudience names what is wrong: a folder Marketo does not have, a list name taken', async () => {
    const marketo = await marketoListsEmulator({ clientId: 'mkto-client', clientSecret: 'mkto-secret', folders: ['Segment'] });
    emulators.push(marketo);
    const overrides = { [MARKETO]: marketo.target };
    await expect(
      createExternalAudience({ slug: 'marketo-static-lists', settings: { ...settings, folder_name: 'Nope' } }, audience, overrides),
    ).rejects.toThrow('A folder with the name Nope not found');
    await createExternalAudience({ slug: 'marketo-static-lists', settings }, audience, overrides);
    await expect(createExternalAudience({ slug: 'marketo-static-lists', settings }, audience, overrides)).rejects.toThrow(
      "Static list 'VIP' already exists",
    );
  });
});
