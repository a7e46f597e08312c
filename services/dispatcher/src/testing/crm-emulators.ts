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

/**
 * Salesforce REST API v53.0 with OAuth (developer.salesforce.com/docs/atlas.en-us.api_rest):
 * `Authorization: Bearer <access token>` on the instance
 * (https://<domain>.my.salesforce.com); GET /services/data/v53.0/query/?q=<SOQL>
 * (here `SELECT Id FROM <object> WHERE <Field> = '<value>' [OR ...]`) ->
 * {totalSize, done, records}; POST .../sobjects/<object> -> 201 {id, success,
 * errors} (a Lead needs LastName and Company: 400 REQUIRED_FIELD_MISSING);
 * PATCH .../sobjects/<object>/<id> -> 204; fields must exist on the object
 * (400 INVALID_FIELD). Errors as `[{message, errorCode}]`: 401
 * INVALID_SESSION_ID for an unknown or expired token. POST
 * /services/oauth2/token on login.salesforce.com (form-encoded
 * grant_type=refresh_token with the client) issues a new access token; a
 * refused grant is 400 `{error: 'invalid_grant'}`. Over the org's API
 * request allocation (a rolling 24 h limit), every REST request is refused
 * with 403 REQUEST_LIMIT_EXCEEDED (not a 429), whatever the token.
 */
export async function salesforceEmulator(opts: {
  accessTokens: string[];
  refreshToken: string;
  client: { id: string; secret: string };
  /** The access token the next good refresh issues. */
  issues: string;
  /** Custom fields defined on Lead (API names, e.g. Vip__c). */
  customFields: string[];
  /** REST requests the org's API allocation has left (unlimited when absent); a test may raise it. */
  apiRequestsLeft?: number;
}) {
  const tokens = new Set(opts.accessTokens);
  const allocation = { left: opts.apiRequestsLeft ?? Infinity };
  const records = new Map<string, Record<string, unknown>>();
  const leadFields = [
    'LastName',
    'FirstName',
    'Company',
    'Email',
    'City',
    'PostalCode',
    'Country',
    'Street',
    'State',
    ...opts.customFields,
  ];
  const refuse = (status: number, errorCode: string, message: string): Answer => ({ status, body: [{ message, errorCode }] });
  const base = '/services/data/v53.0';
  const emulator = await emulate((method, path, body, headers) => {
    if (method === 'POST' && path === '/services/oauth2/token') {
      const form = new URLSearchParams(typeof body === 'string' ? body : '');
      if (
        form.get('grant_type') !== 'refresh_token' ||
        form.get('client_id') !== opts.client.id ||
        form.get('client_secret') !== opts.client.secret
      )
        return { status: 400, body: { error: 'invalid_client', error_description: 'invalid client credentials' } };
      if (form.get('refresh_token') !== opts.refreshToken)
        return { status: 400, body: { error: 'invalid_grant', error_description: 'expired access/refresh token' } };
      tokens.add(opts.issues);
      return {
        status: 200,
        body: { access_token: opts.issues, instance_url: 'https://acme.my.salesforce.com', token_type: 'Bearer', issued_at: '1' },
      };
    }
    if (allocation.left <= 0) return refuse(403, 'REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.');
    allocation.left--;
    const token = String(headers.authorization ?? '').replace(/^Bearer /, '');
    if (!tokens.has(token)) return refuse(401, 'INVALID_SESSION_ID', 'Session expired or invalid');
    const url = new URL(path, 'http://x');
    if (method === 'GET' && url.pathname === `${base}/query/`) {
      const m = /^SELECT Id FROM Lead WHERE (.+)$/.exec(url.searchParams.get('q') ?? '');
      const terms = m?.[1]!.split(' OR ').map((t) => /^(\w+) = '((?:[^'\\]|\\.)*)'$/.exec(t));
      if (!terms || terms.some((t) => !t)) return refuse(400, 'MALFORMED_QUERY', `unexpected query ${url.searchParams.get('q')}`);
      const found = [...records].filter(([, r]) => terms.some((t) => r[t![1]!] === t![2]));
      return {
        status: 200,
        body: { totalSize: found.length, done: true, records: found.map(([Id]) => ({ attributes: { type: 'Lead' }, Id })) },
      };
    }
    const m = new RegExp(`^${base}/sobjects/Lead(?:/([^/]+))?$`).exec(url.pathname);
    if (!m) return refuse(404, 'NOT_FOUND', `The requested resource does not exist: ${method} ${path}`);
    const unknown = Object.keys(body ?? {}).filter((f) => !leadFields.includes(f));
    if (unknown.length) return refuse(400, 'INVALID_FIELD', `No such column '${unknown[0]}' on sobject of type Lead`);
    if (method === 'POST' && !m[1]) {
      const missing = ['LastName', 'Company'].filter((f) => !body?.[f]);
      if (missing.length) return refuse(400, 'REQUIRED_FIELD_MISSING', `Required fields are missing: [${missing.join(', ')}]`);
      const id = `00Q${String(records.size + 1).padStart(12, '0')}`;
      records.set(id, { ...body });
      return { status: 201, body: { id, success: true, errors: [] } };
    }
    if (method === 'PATCH' && m[1]) {
      const record = records.get(m[1]);
      if (!record) return refuse(404, 'NOT_FOUND', 'The requested resource does not exist');
      Object.assign(record, body);
      return { status: 204 };
    }
    return refuse(405, 'METHOD_NOT_ALLOWED', `HTTP Method '${method}' not allowed`);
  });
  return { ...emulator, records, allocation };
}

/**
 * Account Engagement (Pardot) API v5 (developer.salesforce.com/docs/marketing/pardot/guide/prospect-v5.html):
 * `Authorization: Bearer <Salesforce access token>` and
 * `Pardot-Business-Unit-Id` on every request; POST
 * /api/v5/objects/prospects/do/upsertLatestByEmail {matchEmail, prospect,
 * secondaryDeletedSearch} -> 200 with the prospect (created or updated);
 * prospect fields must exist (custom ones by API name, `customFields`).
 * Errors as JSON `{code, message}`: 401 for an invalid token (code 184), 400
 * for an unknown business unit or field; tokens refreshed on
 * login.salesforce.com as for Salesforce (same OAuth app).
 */
export async function pardotEmulator(opts: {
  accessTokens: string[];
  refreshToken: string;
  client: { id: string; secret: string };
  issues: string;
  businessUnitId: string;
  customFields: string[];
}) {
  const tokens = new Set(opts.accessTokens);
  const prospects = new Map<string, Record<string, unknown>>();
  const standard = [
    'email',
    'firstName',
    'lastName',
    'salutation',
    'phone',
    'company',
    'jobTitle',
    'industry',
    'city',
    'state',
    'zip',
    'country',
    'website',
  ];
  const refuse = (status: number, code: number, message: string): Answer => ({ status, body: { code, message } });
  const emulator = await emulate((method, path, body, headers) => {
    if (method === 'POST' && path === '/services/oauth2/token') {
      const form = new URLSearchParams(typeof body === 'string' ? body : '');
      if (
        form.get('grant_type') !== 'refresh_token' ||
        form.get('client_id') !== opts.client.id ||
        form.get('client_secret') !== opts.client.secret
      )
        return { status: 400, body: { error: 'invalid_client', error_description: 'invalid client credentials' } };
      if (form.get('refresh_token') !== opts.refreshToken)
        return { status: 400, body: { error: 'invalid_grant', error_description: 'expired access/refresh token' } };
      tokens.add(opts.issues);
      return { status: 200, body: { access_token: opts.issues, token_type: 'Bearer', issued_at: '1' } };
    }
    if (!tokens.has(String(headers.authorization ?? '').replace(/^Bearer /, '')))
      return refuse(401, 184, 'access_token is invalid, unknown, or malformed: Inactive token.');
    if (headers['pardot-business-unit-id'] !== opts.businessUnitId) return refuse(400, 181, 'Invalid Pardot-Business-Unit-Id header');
    if (method !== 'POST' || path !== '/api/v5/objects/prospects/do/upsertLatestByEmail')
      return refuse(404, 404, `no such endpoint ${method} ${path}`);
    const email = body?.matchEmail;
    if (typeof email !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(email)) return refuse(400, 4, 'Invalid matchEmail');
    const prospect = body.prospect ?? {};
    if (prospect.email !== undefined && prospect.email !== email) return refuse(400, 4, 'prospect.email must match matchEmail');
    const unknown = Object.keys(prospect).filter((f) => !standard.includes(f) && !opts.customFields.includes(f));
    if (unknown.length) return refuse(400, 1, `Invalid field: ${unknown[0]}`);
    const record = { id: prospects.get(email)?.id ?? prospects.size + 1, ...prospects.get(email), ...prospect };
    prospects.set(email, record);
    return { status: 200, body: record };
  });
  return { ...emulator, prospects };
}
