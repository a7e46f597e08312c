// What a write key must not be able to do (issue "Trust", CONTRACT.md section
// 7), end to end through the ingest: the ingest, identity resolver, realtime
// evaluator, batch scheduler and control plane run as processes on real Kafka, schema registry
// and Redis; the test sends Segment calls over HTTP and reads the Profile API.
import { serviceEnv, startService, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';

const TOKEN = 'trust-test-token';
const prefix = `${uniqueName('trust')}.`;
let procs: ServiceProcess[] = [];
let base: string;
let ingest: string;

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
const profileApi = async (spaceId: string, path: string) => {
  const res = await fetch(`${base}/v1/spaces/${spaceId}/collections/users/profiles/${path}`, {
    headers: { authorization: `Basic ${Buffer.from(`${TOKEN}:`).toString('base64')}` },
  });
  return { status: res.status, body: (await res.json()) as any };
};
const send = async (writeKey: string, call: string, body: Record<string, unknown>) => {
  const res = await fetch(`${ingest}/v1/${call}`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
};
/** The profile's external ids as `type:id`, sorted; undefined while the profile is unknown. */
const idsOf = async (spaceId: string, who: string) => {
  const r = await profileApi(spaceId, `${who}/external_ids`);
  return r.status === 200 ? (r.body.data as any[]).map((x) => `${x.type}:${x.id}`).sort() : undefined;
};
const traitsOf = async (spaceId: string, who: string) => {
  const r = await profileApi(spaceId, `${who}/traits?class=computed_trait`);
  return r.status === 200 ? (r.body.traits as Record<string, unknown>) : undefined;
};

beforeAll(async () => {
  // A one-second dedupe window, so "the same source after the window" happens within the test.
  const env = serviceEnv(prefix, { CONTROL_PLANE_TOKEN: TOKEN, INGEST_DEDUPE_TTL_SECONDS: '1', INGEST_DEDUPE_WAIT_MS: '500' });
  const cp = startService('control-plane', env);
  base = `http://127.0.0.1:${await cp.port()}`;
  const others = ['ingest', 'identity-resolver', 'realtime-evaluator', 'batch-scheduler'].map((name) => startService(name, env));
  procs = [cp, ...others];
  ingest = `http://127.0.0.1:${await others[0]!.port()}`;
  await Promise.all(others.map((p) => p.port()));
}, 300_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
});

describe('a reused messageId never joins two people', () => {
  it('from two sources, and from one source after its dedupe window: two profiles, each event counted once on its own', async () => {
    const space = (await api('POST', '/spaces', { name: 'Trust ids' })).space;
    const a = (await api('POST', `/spaces/${space.id}/sources`, { name: 'A' })).source;
    const b = (await api('POST', `/spaces/${space.id}/sources`, { name: 'B' })).source;
    const trait = (
      await api('POST', `/spaces/${space.id}/computed-traits`, {
        name: 'Signups',
        definition: { query: "event('Signed Up').count()", type: 'users' },
      })
    ).computedTrait;
    await waitFor(async () => (await api('GET', `/spaces/${space.id}/computed-traits/${trait.id}`)).computedTrait.status === 'Live', {
      description: 'trait Live',
    });

    const track = (userId: string, email: string) => ({
      userId,
      messageId: 'm1',
      event: 'Signed Up',
      context: { traits: { email } },
    });
    expect((await send(a.writeKey, 'track', track('alice', 'alice@trust.test'))).status).toBe(200);
    expect((await send(b.writeKey, 'track', track('bob', 'bob@trust.test'))).status).toBe(200);

    await waitFor(async () => (await traitsOf(space.id, 'user_id:alice'))?.signups === 1 || undefined, { description: 'alice counted' });
    await waitFor(async () => (await traitsOf(space.id, 'user_id:bob'))?.signups === 1 || undefined, { description: 'bob counted' });
    expect(await idsOf(space.id, 'user_id:alice')).toEqual(['email:alice@trust.test', 'user_id:alice']);
    expect(await idsOf(space.id, 'user_id:bob')).toEqual(['email:bob@trust.test', 'user_id:bob']);

    // Source A again, with the same messageId for a third person: dropped within the window,
    // a new event after it (resent until the window has passed and it is accepted).
    await waitFor(
      async () => {
        await send(a.writeKey, 'track', track('carol', 'carol@trust.test'));
        return (await traitsOf(space.id, 'user_id:carol'))?.signups === 1 || undefined;
      },
      { description: 'carol counted after the dedupe window', intervalMs: 500 },
    );
    expect(await idsOf(space.id, 'user_id:carol')).toEqual(['email:carol@trust.test', 'user_id:carol']);
    expect(await idsOf(space.id, 'user_id:alice')).toEqual(['email:alice@trust.test', 'user_id:alice']);
    expect((await traitsOf(space.id, 'user_id:alice'))?.signups).toBe(1);
  });
});

describe('one big profile never halts evaluation', () => {
  it('40 identifies of 30 x 1 KB traits for one user, then events of 60 others: every one is evaluated, the big profile within its limits', async () => {
    const space = (await api('POST', '/spaces', { name: 'Trust size' })).space;
    const source = (await api('POST', `/spaces/${space.id}/sources`, { name: 'Web' })).source;
    const trait = (
      await api('POST', `/spaces/${space.id}/computed-traits`, {
        name: 'Visits',
        definition: { query: "event('Visited').count()", type: 'users' },
      })
    ).computedTrait;
    await waitFor(async () => (await api('GET', `/spaces/${space.id}/computed-traits/${trait.id}`)).computedTrait.status === 'Live', {
      description: 'trait Live',
    });
    for (let call = 0; call < 40; call++) {
      const traits = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`t_${call}_${i}`, 'v'.repeat(1000)]));
      expect((await send(source.writeKey, 'identify', { userId: 'whale', traits })).status).toBe(200);
    }
    expect((await send(source.writeKey, 'track', { userId: 'whale', event: 'Visited' })).status).toBe(200);
    const others = Array.from({ length: 60 }, (_, i) => `minnow-${i}`);
    const batch = others.map((userId) => ({ type: 'track', userId, event: 'Visited' }));
    expect((await send(source.writeKey, 'batch', { batch })).status).toBe(200);

    await waitFor(async () => (await traitsOf(space.id, 'user_id:whale'))?.visits === 1 || undefined, {
      timeoutMs: 60000,
      description: 'the big profile evaluated',
    });
    const pending = new Set(others);
    await waitFor(
      async () => {
        for (const userId of [...pending]) if ((await traitsOf(space.id, `user_id:${userId}`))?.visits === 1) pending.delete(userId);
        return pending.size === 0;
      },
      { timeoutMs: 60000, description: `every other user evaluated (${pending.size} left)` },
    );
  });
});
