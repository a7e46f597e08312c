// Local emulators of CRM and messaging APIs that Actions destinations call
// (contacts, profiles, list membership), enforcing each vendor's documented
// contract (path, auth header, body shape, batch limits) over real HTTP and
// keeping what the vendor would hold. Faults (429 with Retry-After, 500, ...)
// queued by a test answer the next requests first.
import type http from 'node:http';
import { Receiver, type Responder } from './receiver';
import type { Emulator } from './vendor-emulators';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = any;
type Answer = ReturnType<Responder>;

async function emulate(check: (method: string, path: string, body: Body, headers: http.IncomingHttpHeaders) => Answer): Promise<Emulator> {
  const faults: Answer[] = [];
  const receiver = await new Receiver((path, body, _nth, headers, method) => faults.shift() ?? check(method, path, body, headers)).start();
  return { receiver, target: receiver.url.replace(/^http:\/\//, ''), faults };
}

/**
 * Intercom contacts (developers.intercom.com/docs/references/rest-api/api.intercom.io/contacts):
 * `Authorization: Bearer <access token>`; POST /contacts/search
 * {query: {field, operator, value}} -> {type: 'list', data, total_count};
 * POST /contacts {role: user|lead, external_id?, email?, ..., custom_attributes?}
 * (a user needs an external_id or an email; a lead takes no external_id; 409
 * when a contact with those details exists); PUT /contacts/{id}. Custom
 * attributes must be defined in the workspace (`attributes`). Errors as
 * `{type: 'error.list', errors: [{code, message}]}`: 401 unauthorized, 400, 404.
 */
export async function intercomEmulator(accessToken: string, attributes: string[]) {
  const contacts = new Map<string, Record<string, Body>>();
  const refuse = (status: number, code: string, message: string): Answer => ({
    status,
    body: { type: 'error.list', request_id: 'req-1', errors: [{ code, message }] },
  });
  const emulator = await emulate((method, path, body, headers) => {
    if (headers.authorization !== `Bearer ${accessToken}`) return refuse(401, 'unauthorized', 'Access Token Invalid');
    if (method === 'POST' && path === '/contacts/search') {
      const q = body?.query;
      if (!q || typeof q.field !== 'string' || typeof q.operator !== 'string') return refuse(400, 'parameter_invalid', 'query is invalid');
      if (q.operator !== '=') return refuse(400, 'parameter_invalid', 'this emulator searches with = only');
      const data = [...contacts.values()].filter((c) => c[q.field] === q.value);
      return { status: 200, body: { type: 'list', data, total_count: data.length, pages: { type: 'pages', page: 1, total_pages: 1 } } };
    }
    const update = /^\/contacts\/([^/]+)$/.exec(path);
    if ((method === 'POST' && path === '/contacts') || (method === 'PUT' && update)) {
      const existing = update ? contacts.get(update[1]!) : undefined;
      if (update && !existing) return refuse(404, 'not_found', 'User Not Found');
      if (!['user', 'lead'].includes(body?.role ?? existing?.role))
        return refuse(400, 'parameter_invalid', "role must be 'user' or 'lead'");
      if (body.role === 'lead' && body.external_id) return refuse(400, 'parameter_invalid', 'External IDs cannot be set for leads');
      if (!existing && body.role === 'user' && !body.external_id && !body.email)
        return refuse(400, 'parameter_not_found', 'a user needs an external_id or an email');
      const unknown = Object.keys(body.custom_attributes ?? {}).filter((a) => !attributes.includes(a));
      if (unknown.length) return refuse(400, 'parameter_not_found', `Custom attribute '${unknown[0]}' does not exist`);
      if (!existing) {
        const dup = [...contacts.values()].find(
          (c) => (body.external_id && c.external_id === body.external_id) || (body.email && c.email === body.email),
        );
        if (dup) return refuse(409, 'conflict', `A contact matching those details already exists with id=${dup.id}`);
      }
      const id = existing?.id ?? `contact-${contacts.size + 1}`;
      const contact = {
        type: 'contact',
        id,
        ...existing,
        ...body,
        custom_attributes: { ...existing?.custom_attributes, ...body.custom_attributes },
      };
      contacts.set(id, contact);
      return { status: 200, body: contact };
    }
    return refuse(404, 'not_found', `no such endpoint ${method} ${path}`);
  });
  return { ...emulator, contacts };
}

/**
 * Klaviyo JSON:API, revision 2025-01-15 (developers.klaviyo.com/en/reference/api_overview):
 * `Authorization: Klaviyo-API-Key <private key>` and a `revision` header on
 * every request. POST /api/lists/ {data: {type: 'list', attributes: {name}}} ->
 * 201; POST /api/profile-bulk-import-jobs/ {data: {type:
 * 'profile-bulk-import-job', attributes: {profiles: {data: [...]}},
 * relationships: {lists}}} (at most 10,000 profiles, each with an email,
 * phone_number or external_id) -> 202, the profiles upserted and added to the
 * list; GET /api/profiles/?filter=any(email,["a",...]) (at most 100 values);
 * DELETE /api/lists/{id}/relationships/profiles/ {data: [{type: 'profile', id}]}
 * (at most 1,000) -> 204. Errors as `{errors: [{status, code, title, detail}]}`:
 * 401 not_authenticated, 400 invalid, 404 for an unknown list.
 */
export async function klaviyoEmulator(apiKey: string, revision = '2025-01-15') {
  const lists = new Map<string, { name: string; members: Set<string> }>();
  const profiles = new Map<string, { id: string; attributes: Record<string, Body> }>();
  const refuse = (status: number, code: string, detail: string): Answer => ({
    status,
    body: { errors: [{ id: 'err-1', status, code, title: code.replace(/_/g, ' '), detail, source: { pointer: '/data/' } }] },
  });
  const emulator = await emulate((method, path, body, headers) => {
    if (headers.authorization !== `Klaviyo-API-Key ${apiKey}`)
      return refuse(401, 'not_authenticated', 'Incorrect authentication credentials.');
    if (headers.revision !== revision) return refuse(400, 'invalid', `revision header must be a supported revision (${revision})`);
    const url = new URL(path, 'http://x');
    if (method === 'POST' && url.pathname === '/api/lists') {
      const name = body?.data?.attributes?.name;
      if (body?.data?.type !== 'list' || typeof name !== 'string' || name === '') return refuse(400, 'invalid', 'a list needs a name');
      const id = `L${lists.size + 1}`;
      lists.set(id, { name, members: new Set() });
      return { status: 201, body: { data: { type: 'list', id, attributes: { name } } } };
    }
    if (method === 'POST' && url.pathname === '/api/profile-bulk-import-jobs/') {
      if (body?.data?.type !== 'profile-bulk-import-job') return refuse(400, 'invalid', "data.type must be 'profile-bulk-import-job'");
      const data: Body[] = body.data.attributes?.profiles?.data;
      if (!Array.isArray(data) || data.length === 0) return refuse(400, 'invalid', 'profiles.data must be a non-empty array');
      if (data.length > 10_000) return refuse(400, 'invalid', `${data.length} profiles, more than 10,000`);
      const listIds: string[] = (body.data.relationships?.lists?.data ?? []).map((l: Body) => l.id);
      const unknown = listIds.filter((id) => !lists.has(id));
      if (unknown.length) return refuse(404, 'not_found', `list ${unknown[0]} does not exist`);
      for (const p of data) {
        const a = p?.attributes ?? {};
        if (p?.type !== 'profile' || (!a.email && !a.phone_number && !a.external_id))
          return refuse(400, 'invalid', 'each profile needs an email, phone_number or external_id');
      }
      for (const p of data) {
        const a = p.attributes;
        const found = [...profiles.values()].find(
          (x) => (a.email && x.attributes.email === a.email) || (a.external_id && x.attributes.external_id === a.external_id),
        );
        const profile = found ?? { id: `P${profiles.size + 1}`, attributes: {} };
        Object.assign(profile.attributes, a);
        profiles.set(profile.id, profile);
        for (const id of listIds) lists.get(id)!.members.add(profile.id);
      }
      return {
        status: 202,
        body: {
          data: { type: 'profile-bulk-import-job', id: `job-${profiles.size}`, attributes: { status: 'queued', total_count: data.length } },
        },
      };
    }
    if (method === 'GET' && url.pathname === '/api/profiles/') {
      const m = /^any\((email|external_id|phone_number),\[((?:"[^"]*",?)+)\]\)$/.exec(url.searchParams.get('filter') ?? '');
      if (!m) return refuse(400, 'invalid', `invalid filter ${url.searchParams.get('filter')}`);
      const values = JSON.parse(`[${m[2]}]`) as string[];
      if (values.length > 100) return refuse(400, 'invalid', 'any() takes at most 100 values');
      const data = [...profiles.values()].filter((p) => values.includes(p.attributes[m[1]!])).map((p) => ({ type: 'profile', ...p }));
      return { status: 200, body: { data, links: {} } };
    }
    const rel = /^\/api\/lists\/([^/]+)\/relationships\/profiles\/$/.exec(url.pathname);
    if (method === 'DELETE' && rel) {
      const list = lists.get(rel[1]!);
      if (!list) return refuse(404, 'not_found', `list ${rel[1]} does not exist`);
      const data: Body[] = body?.data;
      if (!Array.isArray(data) || data.length === 0 || data.some((d) => d?.type !== 'profile' || typeof d.id !== 'string'))
        return refuse(400, 'invalid', "data must be [{type: 'profile', id}]");
      if (data.length > 1000) return refuse(400, 'invalid', `${data.length} profiles, more than 1,000`);
      for (const d of data) list.members.delete(d.id);
      return { status: 204 };
    }
    return refuse(404, 'not_found', `no such endpoint ${method} ${path}`);
  });
  return { ...emulator, lists, profiles };
}
