// The operator's read side against the running fleet: raw events go through
// the identity resolver and the realtime evaluator (real Kafka, schema
// registry, Redis); the control plane answers the Profile API and streams the
// audience CSV in Segment's three formats.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createKafka, createProducer, ensureTopics, topicRegistry, type Producer } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { createRedis, type RedisClient } from '@engage/redis';
import { SchemaCodec, eventKey, valueSubject, type RawEvent } from '@engage/schemas';
import { serviceEnv, startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';

const TOKEN = 'read-side-test-token';
const MEMBERS = 10_000;
const prefix = `${uniqueName('read')}.`;
const topics = topicRegistry(prefix);
let procs: ServiceProcess[] = [];
let base: string;
let producer: Producer;
let codec: SchemaCodec;
let redis: RedisClient;
let spaceId: string;
let audience: { id: string; key: string };
let seq = 0;
// The formatted export's spool goes here: the test checks nothing is left behind.
const spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'read-side-spool-'));

const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return res.json() as Promise<any>;
};
const basic = `Basic ${Buffer.from(`${TOKEN}:`).toString('base64')}`;
const profileApi = (path: string, auth = basic) =>
  fetch(`${base}/v1/spaces/${spaceId}/collections/${path}`, { headers: { authorization: auth } });
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function raw(over: Partial<RawEvent>): RawEvent {
  return {
    message_id: `msg-${++seq}`,
    type: 'track',
    space_id: spaceId,
    source_id: 'src_read',
    user_id: null,
    anonymous_id: null,
    group_id: null,
    previous_id: null,
    event: 'Signed Up',
    name: null,
    timestamp: Date.now() - 60_000 + seq,
    sent_at: null,
    received_at: Date.now(),
    properties_json: '{}',
    traits_json: '{}',
    context_json: '{}',
    integrations_json: '{}',
    external_ids: [],
    ...over,
  };
}

async function sendRaw(events: RawEvent[]) {
  const subject = valueSubject(topics.eventsRaw.name);
  for (let i = 0; i < events.length; i += 1000) {
    const messages = await Promise.all(
      events.slice(i, i + 1000).map(async (e) => ({ key: e.user_id ?? e.anonymous_id, value: await codec.encode(subject, e) })),
    );
    await producer.send({ topic: topics.eventsRaw.name, messages });
  }
}

/** Parses a CSV body (RFC 4180, as the export writes it) into rows of fields. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  return rows;
}

/** Member i: user u<i>, email u<i>@read.test, every 10th also a second email. */
const emailsOf = (i: number) => (i % 10 === 0 ? [`u${i}@read.test`, `u${i}.alt@read.test`] : [`u${i}@read.test`]);

beforeAll(async () => {
  const infra = testInfrastructure();
  const env = serviceEnv(prefix, { CONTROL_PLANE_TOKEN: TOKEN, CSV_SPOOL_DIR: spoolDir });
  const kafka = createKafka({ brokers: infra.kafkaBrokers, clientId: 'read-side-test' }, { log: silentLogger() });
  await ensureTopics(kafka, Object.values(topics));
  codec = new SchemaCodec({ url: infra.schemaRegistryUrl });
  await codec.registerTopics(Object.values(topics));
  redis = createRedis({ url: infra.redisUrl });
  procs = ['control-plane', 'identity-resolver', 'realtime-evaluator'].map((name) => startService(name, env));
  base = `http://127.0.0.1:${await procs[0]!.port()}`;
  await Promise.all(procs.map((p) => p.port()));
  producer = createProducer(kafka);
  await producer.connect();
  spaceId = (await api('POST', '/spaces', { name: 'Read side' })).data.space.id;
  audience = (
    await api('POST', `/spaces/${spaceId}/audiences`, {
      name: 'Signed Up',
      definition: { query: "event('Signed Up').count() >= 1", type: 'users' },
    })
  ).data.audience;
  // The evaluator sees the audience through engage.config before any event arrives.
  await waitFor(async () => (await api('GET', `/spaces/${spaceId}/audiences/${audience.id}`)).data?.audience?.id === audience.id, {
    timeoutMs: 10000,
    description: 'audience visible',
  });
}, 180_000);

afterAll(async () => {
  // Warnings and errors of the services help whoever reads a failure of this suite.
  for (const p of procs)
    for (const l of p.logs.filter((l) => Number(l.level) >= 40 || l.level === 'warn' || l.level === 'error'))
      process.stderr.write(`[${p.name}] ${JSON.stringify(l)}\n`);
  await producer?.disconnect();
  redis?.disconnect();
  await Promise.all(procs.map((p) => p.stop()));
  fs.rmSync(spoolDir, { recursive: true, force: true });
});

describe('Profile API (Segment-compatible)', () => {
  it('finds a profile by email after anonymous browsing merged into an identified user, with its traits, ids, events and metadata', async () => {
    // Anonymous visitor gives an email, browses, then logs in: the two profiles merge.
    await sendRaw([
      raw({
        type: 'identify',
        event: null,
        anonymous_id: 'anon-ada',
        traits_json: JSON.stringify({ email: 'ada@read.test', plan: 'free' }),
      }),
      raw({ anonymous_id: 'anon-ada', event: 'Product Viewed', properties_json: '{"sku":"a1"}' }),
      raw({ user_id: 'ada', event: 'Signed Up' }),
      raw({
        type: 'identify',
        event: null,
        user_id: 'ada',
        anonymous_id: 'anon-ada',
        traits_json: JSON.stringify({ plan: 'pro', first_name: 'Ada' }),
      }),
    ]);
    await waitFor(
      async () => {
        const res = await profileApi('users/profiles/email:ada@read.test/traits');
        const body = (await res.json()) as any;
        if (!(res.status === 200 && body.traits.first_name === 'Ada' && body.traits[audience.key] === true)) return false;
        // The merge travels on engage.identity.changes, beside the events: wait until it is applied too.
        const events = (await (await profileApi('users/profiles/user_id:ada/events?include=Product%20Viewed')).json()) as any;
        return events.data?.length === 1;
      },
      { timeoutMs: 60000, description: 'merged profile with its traits, audience and the anonymous history' },
    );
    const byEmail = await profileApi('users/profiles/email:ada@read.test/traits');
    expect(byEmail.headers.get('request-id')).toMatch(/^[0-9a-f-]{36}$/);
    // NOTE: whether the anonymous profile's own traits (its email) survive the merge is the evaluator's
    // merge semantics (test/evaluation.test.ts); here: the email finds the survivor and its values.
    expect(await byEmail.json()).toMatchObject({
      traits: { first_name: 'Ada', plan: 'pro', [audience.key]: true },
      cursor: { url: '', has_more: false, next: '', limit: 10 },
    });
    // The same profile through every one of its ids.
    for (const id of ['user_id:ada', 'anonymous_id:anon-ada']) {
      expect((await (await profileApi(`users/profiles/${id}/traits?class=audience`)).json()) as any).toEqual({
        traits: { [audience.key]: true },
        cursor: { url: '', has_more: false, next: '', limit: 10 },
      });
    }
    const ids = (await (await profileApi('users/profiles/user_id:ada/external_ids')).json()) as any;
    expect(ids.data.map((x: any) => `${x.type}:${x.id}`).sort()).toEqual(['anonymous_id:anon-ada', 'email:ada@read.test', 'user_id:ada']);
    expect(ids.data[0]).toMatchObject({ collection: 'users', encoding: 'none' });

    const events = (await (await profileApi('users/profiles/user_id:ada/events?sort=asc&exclude=identify')).json()) as any;
    expect(events.data.map((e: any) => e.event)).toEqual(['Product Viewed', 'Signed Up']);
    expect(events.data[0]).toMatchObject({ type: 'track', source_id: 'src_read', properties: { sku: 'a1' } });

    const meta = (await (await profileApi('users/profiles/user_id:ada/metadata')).json()) as any;
    expect(Object.keys(meta.metadata).sort()).toEqual([
      'created_at',
      'expires_at',
      'first_message_id',
      'first_source_id',
      'last_message_id',
      'last_source_id',
      'updated_at',
    ]);
    expect(meta.metadata.first_source_id).toBe('src_read');
  });

  it('pages traits and events with Segment cursors', async () => {
    const traits = Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`t${i}`, i]));
    const history = Array.from({ length: 5 }, (_, i) =>
      raw({ user_id: 'pager', event: `Step ${i}`, timestamp: Date.UTC(2026, 0, 1, 0, i) }),
    );
    await sendRaw([raw({ type: 'identify', event: null, user_id: 'pager', traits_json: JSON.stringify(traits) }), ...history]);
    await waitFor(
      async () => ((await (await profileApi('users/profiles/user_id:pager/events?include=Step%204')).json()) as any).data?.length === 1,
      {
        timeoutMs: 60000,
        description: 'pager events',
      },
    );

    const seen: string[] = [];
    let next = '';
    for (let page = 0; page < 10; page++) {
      const body = (await (await profileApi(`users/profiles/user_id:pager/traits?limit=3${next ? `&next=${next}` : ''}`)).json()) as any;
      seen.push(...Object.keys(body.traits));
      if (!body.cursor.has_more) break;
      expect(body.cursor.url).toContain(`next=${encodeURIComponent(body.cursor.next)}`);
      next = encodeURIComponent(body.cursor.next);
    }
    // The audience is a trait too: false for a profile that is not (or no longer) a member, as Segment shows it.
    expect(seen).toEqual([audience.key, 't0', 't1', 't2', 't3', 't4', 't5', 't6']);

    const names: string[] = [];
    next = '';
    for (let page = 0; page < 10; page++) {
      const body = (await (
        await profileApi(`users/profiles/user_id:pager/events?limit=2&exclude=identify${next ? `&next=${next}` : ''}`)
      ).json()) as any;
      names.push(...body.data.map((e: any) => e.event));
      if (!body.cursor.has_more) break;
      next = encodeURIComponent(body.cursor.next);
    }
    expect(names).toEqual(['Step 4', 'Step 3', 'Step 2', 'Step 1', 'Step 0']); // newest first by default
  });

  it('lists the profiles merged into a profile, the whole chain, by any id or an old merged id (merges: ours, not Segment)', async () => {
    const json = async (path: string) => (await profileApi(path)).json() as Promise<any>;
    const found = (id: string) =>
      waitFor(async () => (await profileApi(`users/profiles/${id}/metadata`)).status === 200, {
        timeoutMs: 60000,
        description: `profile ${id}`,
      });
    // Three profiles: an anonymous visitor, a second device that gave an email, a user.
    await sendRaw([
      raw({ anonymous_id: 'g-a1', event: 'Product Viewed' }),
      raw({ type: 'identify', event: null, anonymous_id: 'g-a2', traits_json: JSON.stringify({ email: 'grace@read.test' }) }),
      // NOTE: not 'Signed Up': the CSV export's audience below counts exactly its own members.
      raw({ user_id: 'grace', event: 'Logged In' }),
    ]);
    for (const id of ['anonymous_id:g-a1', 'email:grace@read.test', 'user_id:grace']) await found(id);
    expect(await json('users/profiles/user_id:grace/merges')).toEqual({
      data: [],
      cursor: { url: '', has_more: false, next: '', limit: 25 },
    });

    // The visitor gives the email (A into B), then the user logs in with it (B into C).
    const first = raw({ type: 'identify', event: null, anonymous_id: 'g-a1', traits_json: JSON.stringify({ email: 'grace@read.test' }) });
    await sendRaw([first]);
    await waitFor(async () => (await json('users/profiles/email:grace@read.test/merges')).data?.length === 1, {
      timeoutMs: 60000,
      description: 'first merge listed',
    });
    const second = raw({ type: 'identify', event: null, user_id: 'grace', traits_json: JSON.stringify({ email: 'grace@read.test' }) });
    await sendRaw([second]);
    await waitFor(async () => (await json('users/profiles/user_id:grace/merges')).data?.length === 2, {
      timeoutMs: 60000,
      description: 'chain listed on the last survivor',
    });
    const chain = await json('users/profiles/user_id:grace/merges');
    expect(chain).toEqual({
      data: [
        { segment_id: expect.stringMatching(/^pro_/), merged_at: new Date(second.timestamp).toISOString(), event_key: eventKey(second) },
        { segment_id: expect.stringMatching(/^pro_/), merged_at: new Date(first.timestamp).toISOString(), event_key: eventKey(first) },
      ],
      cursor: { url: '', has_more: false, next: '', limit: 25 },
    });
    // Every id of the survivor, and each old merged profile id, reads the same list.
    for (const id of [
      'anonymous_id:g-a1',
      'anonymous_id:g-a2',
      'email:grace@read.test',
      ...chain.data.map((m: any) => `segment_id:${m.segment_id}`),
    ])
      expect(await json(`users/profiles/${id}/merges`)).toEqual(chain);
    // Paged like the other resources.
    const page = await json('users/profiles/user_id:grace/merges?limit=1');
    expect(page.data).toEqual([chain.data[0]]);
    expect(page.cursor).toMatchObject({ has_more: true, next: '1', limit: 1 });
    expect((await json(`users/profiles/user_id:grace/merges?limit=1&next=${page.cursor.next}`)).data).toEqual([chain.data[1]]);
    const unknown = await profileApi('users/profiles/user_id:nobody/merges');
    expect(unknown.status).toBe(404);
  });

  it("answers Segment's errors: 401 without the token, 404 for an unknown profile, 400 for a bad identifier or limit", async () => {
    const wrong = await profileApi('users/profiles/user_id:ada/traits', `Basic ${Buffer.from('nope:').toString('base64')}`);
    expect([wrong.status, ((await wrong.json()) as any).error.code]).toEqual([401, 'authentication_error']);
    const unknown = await profileApi('users/profiles/user_id:nobody/traits');
    expect([unknown.status, await unknown.json()]).toEqual([404, { error: { code: 'not_found', message: 'Profile was not found.' } }]);
    const bad = await profileApi('users/profiles/nocolon/traits');
    expect([bad.status, ((await bad.json()) as any).error.code]).toEqual([400, 'validation_error']);
    const limit = await profileApi('users/profiles/user_id:ada/events?limit=101');
    expect(((await limit.json()) as any).error.message).toContain('between 1 and 100');
  });

  it('rate-limits each space with 429 and Retry-After', async () => {
    const burst = await Promise.all(Array.from({ length: 400 }, () => profileApi('users/profiles/user_id:ada/metadata')));
    const limited = burst.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(Number(limited[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await limited[0]!.json()) as any).error.code).toBe('rate_limit_error');
  });
});

describe('audience CSV export', () => {
  beforeAll(async () => {
    const events: RawEvent[] = [];
    for (let i = 0; i < MEMBERS; i++) {
      const [email, alt] = emailsOf(i);
      events.push(raw({ user_id: `u${i}`, type: 'identify', event: null, traits_json: JSON.stringify({ email }) }));
      if (alt) events.push(raw({ user_id: `u${i}`, type: 'identify', event: null, traits_json: JSON.stringify({ email: alt }) }));
      events.push(raw({ user_id: `u${i}`, event: 'Signed Up' }));
    }
    await sendRaw(events);
    const membersKey = `${prefix}rt:members:{${audience.id}}`;
    // Ada is a member too (the pager never signed up).
    await waitFor(async () => (await redis.scard(membersKey)) >= MEMBERS + 1, {
      timeoutMs: 170_000,
      intervalMs: 500,
      description: `${MEMBERS} members evaluated`,
    });
  }, 180_000);

  const csv = async (query: string) => {
    const res = await fetch(`${base}/spaces/${spaceId}/audiences/${audience.id}/csv?${query}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    return parseCsv(await res.text());
  };
  const memberRows = (rows: string[][], userCol: (r: string[]) => string | undefined) =>
    new Map(rows.map((r) => [userCol(r), r]).filter(([u]) => typeof u === 'string' && /^u\d+$/.test(u)) as Array<[string, string[]]>);

  it('unformatted: every member once, with the JSON of its external ids', async () => {
    const rows = await csv('format=unformatted');
    expect(rows[0]).toEqual(['key', 'external_ids']);
    const byUser = memberRows(rows.slice(1), (r) => JSON.parse(r[1]!).user_id?.[0]);
    expect(byUser.size).toBe(MEMBERS);
    expect(rows.length).toBe(1 + MEMBERS + 1);
    for (let i = 0; i < MEMBERS; i++) {
      const row = byUser.get(`u${i}`)!;
      expect({ i, ids: JSON.parse(row[1]!) }).toEqual({ i, ids: { email: emailsOf(i).sort(), user_id: [`u${i}`] } });
      expect(row[0]).toMatch(/^\S+$/);
    }
  });

  it('formatted: a column per id type, with indexed email columns', async () => {
    const rows = await csv('format=formatted');
    expect(rows[0]).toEqual(['key', 'external_ids', 'anonymous_id', 'email', 'email_1', 'user_id']);
    const byUser = memberRows(rows.slice(1), (r) => r[5]);
    expect(byUser.size).toBe(MEMBERS);
    for (let i = 0; i < MEMBERS; i++) {
      const row = byUser.get(`u${i}`)!;
      const emails = emailsOf(i).sort();
      expect({ i, cols: row.slice(2) }).toEqual({ i, cols: ['', emails[0], emails[1] ?? '', `u${i}`] });
    }
    expect(fs.readdirSync(spoolDir)).toEqual([]); // the spool is removed once the export ends
  });

  it('single column: one row per email, SHA-256 by default and raw when asked', async () => {
    const hashed = await csv('format=single_column&idType=email');
    const rawRows = await csv('format=single_column&idType=email&hashed=false');
    expect([hashed[0], rawRows[0]]).toEqual([['email'], ['email']]);
    const expected: string[] = ['ada@read.test'];
    for (let i = 0; i < MEMBERS; i++) expected.push(...emailsOf(i));
    expect(
      rawRows
        .slice(1)
        .map((r) => r[0])
        .sort(),
    ).toEqual(expected.sort());
    expect(
      hashed
        .slice(1)
        .map((r) => r[0])
        .sort(),
    ).toEqual(expected.map(sha).sort());
  });

  it('previews a definition over the current profiles without creating it', async () => {
    const started = Date.now();
    const same = await api('POST', `/spaces/${spaceId}/audiences/preview`, {
      definition: { query: "event('Signed Up').count() >= 1", type: 'users' },
    });
    expect(same.data.size).toBe(MEMBERS + 1);
    expect(same.data.sample).toHaveLength(10);
    expect(Date.now() - started).toBeLessThan(60_000); // a sanity bound, not a benchmark
    const pro = await api('POST', `/spaces/${spaceId}/audiences/preview`, {
      definition: { query: `trait('plan') = 'pro' AND trait('${audience.key}') = true`, type: 'users' },
    });
    expect({ size: pro.data.size, users: pro.data.sample.map((p: any) => p.user_id) }).toEqual({ size: 1, users: ['ada'] });
    const bad = await fetch(`${base}/spaces/${spaceId}/audiences/preview`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ definition: { query: "event('Signed Up').count( >= 1" } }),
    });
    expect([bad.status, ((await bad.json()) as any).errors[0].field]).toEqual([422, 'definition.query']);
  });

  it('rejects an unknown format with the field named', async () => {
    const res = await fetch(`${base}/spaces/${spaceId}/audiences/${audience.id}/csv?format=xlsx`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect([res.status, ((await res.json()) as any).errors[0].field]).toEqual([400, 'format']);
  });
});
