// Local emulators of the audience APIs that Actions audience destinations
// call (cohorts, lists), enforcing each vendor's documented contract (path,
// credentials, body shape, batch limits) over real HTTP, and keeping the
// audience's members so a test can read what the vendor holds. Faults (429
// with Retry-After, 500, ...) queued by a test answer the next requests first.
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
 * Braze cohort import for technology partners
 * (braze.com/docs/partners/isv_partners/cohort_import): credentials in the
 * JSON body, no Authorization header: the partner's `partner_api_key` and the
 * customer's data import key `client_secret`. POST
 * /partners/segment/cohorts {cohort_id, name, created_at} creates the cohort or
 * renames it; POST /partners/segment/cohorts/users {cohort_id, cohort_changes:
 * [{user_ids?, device_ids?, aliases?, should_remove?}]} adds or removes users
 * of a known cohort, at most 1,000 ids per request. 201 on success, 401 for
 * unknown keys, 400 for a bad body or an unknown cohort, 429 when rate limited.
 */
export async function brazeCohortsEmulator(partnerApiKey: string, clientSecret: string) {
  const cohorts = new Map<string, { name: string; members: Set<string> }>();
  const refuse = (status: number, message: string): Answer => ({ status, body: { message } });
  const emulator = await emulate((method, path, body, headers) => {
    if (method !== 'POST' || !['/partners/segment/cohorts', '/partners/segment/cohorts/users'].includes(path))
      return refuse(404, `no such endpoint ${method} ${path}`);
    if (!String(headers['content-type'] ?? '').includes('application/json')) return refuse(400, 'Content-Type must be application/json');
    if (body?.partner_api_key !== partnerApiKey) return refuse(401, 'Invalid partner_api_key');
    if (body?.client_secret !== clientSecret) return refuse(401, 'Invalid client_secret');
    if (typeof body.cohort_id !== 'string' || body.cohort_id === '') return refuse(400, "'cohort_id' is required");
    if (path === '/partners/segment/cohorts') {
      if (typeof body.name !== 'string' || body.name === '') return refuse(400, "'name' is required");
      if (typeof body.created_at !== 'string' || Number.isNaN(Date.parse(body.created_at)))
        return refuse(400, "'created_at' must be an ISO 8601 time");
      const cohort = cohorts.get(body.cohort_id) ?? { name: body.name, members: new Set<string>() };
      cohort.name = body.name;
      cohorts.set(body.cohort_id, cohort);
      return { status: 201, body: { message: 'success' } };
    }
    const cohort = cohorts.get(body.cohort_id);
    if (!cohort) return refuse(400, `cohort ${body.cohort_id} does not exist: create it first`);
    const changes = body.cohort_changes;
    if (!Array.isArray(changes) || changes.length === 0) return refuse(400, "'cohort_changes' must be a non-empty array");
    let ids = 0;
    for (const change of changes as Body[]) {
      const n = (change?.user_ids?.length ?? 0) + (change?.device_ids?.length ?? 0) + (change?.aliases?.length ?? 0);
      if (n === 0) return refuse(400, 'each cohort change needs user_ids, device_ids or aliases');
      ids += n;
    }
    if (ids > 1000) return refuse(400, `${ids} ids in one request, more than 1000`);
    for (const change of changes as Body[]) {
      const who = [
        ...(change.user_ids ?? []).map((id: string) => `user:${id}`),
        ...(change.device_ids ?? []).map((id: string) => `device:${id}`),
        ...(change.aliases ?? []).map((a: Body) => `alias:${a.alias_label}:${a.alias_name}`),
      ];
      for (const id of who) {
        if (change.should_remove === true) cohort.members.delete(id);
        else cohort.members.add(id);
      }
    }
    return { status: 201, body: { message: 'success' } };
  });
  return { ...emulator, cohorts };
}

/**
 * SendGrid Marketing Campaigns lists and contacts (docs.sendgrid.com/api-reference/lists,
 * .../contacts): `Authorization: Bearer <API key>`. GET /v3/marketing/lists
 * `{result: [{id, name, contact_count}]}`; POST /v3/marketing/lists {name} ->
 * 201 {id, name}; PUT /v3/marketing/contacts {list_ids, contacts} (at most
 * 30,000 contacts, each with email, phone_number_id, external_id or
 * anonymous_id; list ids must exist) -> 202 {job_id}; POST
 * /v3/marketing/contacts/search {query} (SGQL, here `<identifier> IN ('a',...)`
 * joined by OR) -> {result, contact_count}; DELETE
 * /v3/marketing/lists/{id}/contacts?contact_ids=a,b -> 202 {job_id}.
 * 401 `authorization required`, 404 for an unknown list, 429 when rate limited.
 */
export async function sendgridListsEmulator(apiKey: string) {
  const lists = new Map<string, { name: string; members: Set<string> }>();
  const contacts = new Map<string, Record<string, unknown>>();
  const refuse = (status: number, message: string, field: string | null = null): Answer => ({
    status,
    body: { errors: [{ field, message }] },
  });
  const ids = ['email', 'phone_number_id', 'external_id', 'anonymous_id'] as const;
  const emulator = await emulate((method, path, body, headers) => {
    if (headers.authorization !== `Bearer ${apiKey}`) return refuse(401, 'authorization required');
    const url = new URL(path, 'http://x');
    if (url.pathname === '/v3/marketing/lists' && method === 'GET')
      return { status: 200, body: { result: [...lists].map(([id, l]) => ({ id, name: l.name, contact_count: l.members.size })) } };
    if (url.pathname === '/v3/marketing/lists' && method === 'POST') {
      if (typeof body?.name !== 'string' || body.name === '') return refuse(400, 'name is required', 'name');
      if ([...lists.values()].some((l) => l.name === body.name)) return refuse(400, 'This list name is already in use', 'name');
      const id = `list-${lists.size + 1}`;
      lists.set(id, { name: body.name, members: new Set() });
      return { status: 201, body: { id, name: body.name, contact_count: 0 } };
    }
    if (url.pathname === '/v3/marketing/contacts' && method === 'PUT') {
      const list: Body[] = body?.contacts;
      if (!Array.isArray(list) || list.length === 0) return refuse(400, "'contacts' must be a non-empty array", 'contacts');
      if (list.length > 30_000) return refuse(400, 'at most 30,000 contacts per request', 'contacts');
      const listIds: string[] = body.list_ids ?? [];
      const unknown = listIds.filter((id) => !lists.has(id));
      if (unknown.length) return refuse(404, `list_ids ${unknown.join(', ')} do not exist`, 'list_ids');
      for (const [i, c] of list.entries())
        if (!ids.some((k) => c?.[k]))
          return refuse(400, 'a contact needs an email, phone_number_id, external_id or anonymous_id', `contacts[${i}]`);
      for (const c of list) {
        const id = [...contacts].find(([, x]) => ids.some((k) => c[k] && x[k] === c[k]))?.[0] ?? `ct-${contacts.size + 1}`;
        contacts.set(id, { ...contacts.get(id), ...c, id });
        for (const listId of listIds) lists.get(listId)!.members.add(id);
      }
      return { status: 202, body: { job_id: `job-${contacts.size}` } };
    }
    if (url.pathname === '/v3/marketing/contacts/search' && method === 'POST') {
      const parts = String(body?.query ?? '').split(' OR ');
      const wanted: Array<[string, string[]]> = [];
      for (const part of parts) {
        const m = /^(email|phone_number_id|external_id|anonymous_id) IN \(((?:'[^']*',?)+)\)$/.exec(part.trim());
        if (!m) return refuse(400, `invalid query: ${part}`, 'query');
        wanted.push([m[1]!, m[2]!.split(',').map((v) => v.slice(1, -1))]);
      }
      const result = [...contacts.values()].filter((c) => wanted.some(([k, vs]) => vs.includes(String(c[k]))));
      return { status: 200, body: { result, contact_count: result.length } };
    }
    const remove = /^\/v3\/marketing\/lists\/([^/]+)\/contacts$/.exec(url.pathname);
    if (remove && method === 'DELETE') {
      const list = lists.get(remove[1]!);
      if (!list) return refuse(404, `list ${remove[1]} not found`);
      const contactIds = (url.searchParams.get('contact_ids') ?? '').split(',').filter(Boolean);
      if (contactIds.length === 0) return refuse(400, 'contact_ids is required', 'contact_ids');
      for (const id of contactIds) list.members.delete(id);
      return { status: 202, body: { job_id: `job-rm-${contactIds.length}` } };
    }
    return refuse(404, `no such endpoint ${method} ${path}`);
  });
  return { ...emulator, lists, contacts };
}

/**
 * Snap Marketing API audience segments (marketingapi.snapchat.com/docs/#audience-segments):
 * `Authorization: Bearer <access token>`; POST
 * /v1/adaccounts/{ad_account_id}/segments {segments: [{name, source_type:
 * 'FIRST_PARTY', ad_account_id, retention_in_days}]} creates a segment; POST
 * (add) and DELETE (remove) /v1/segments/{id}/users {users: [{schema:
 * ['EMAIL_SHA256' | 'PHONE_SHA256' | 'MOBILE_AD_ID_SHA256'], data: [[hash], ...]}]},
 * each identifier a SHA-256 hex digest, at most 100,000 per request.
 * `{request_status: 'ERROR', debug_message}` with 401 for a bad token, 400
 * for a bad body, 404 for an unknown segment. Tokens refreshed at
 * accounts.snapchat.com/login/oauth2/access_token (form, grant_type=refresh_token).
 */
export async function snapEmulator(opts: {
  accessTokens: string[];
  adAccountId: string;
  refresh: { token: string; clientId: string; clientSecret: string; issues: string };
}) {
  const tokens = new Set(opts.accessTokens);
  const segments = new Map<string, { name: string; members: Map<string, Set<string>> }>();
  const refuse = (status: number, message: string): Answer => ({
    status,
    body: { request_status: 'ERROR', request_id: 'req-1', debug_message: message, display_message: message },
  });
  const emulator = await emulate((method, path, body, headers) => {
    if (method === 'POST' && path === '/login/oauth2/access_token') {
      const form = new URLSearchParams(typeof body === 'string' ? body : '');
      const r = opts.refresh;
      if (
        form.get('grant_type') !== 'refresh_token' ||
        form.get('client_id') !== r.clientId ||
        form.get('client_secret') !== r.clientSecret
      )
        return { status: 401, body: { error: 'invalid_client' } };
      if (form.get('refresh_token') !== r.token)
        return { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid refresh token' } };
      tokens.add(r.issues);
      return { status: 200, body: { access_token: r.issues, token_type: 'Bearer', expires_in: 1800, refresh_token: r.token } };
    }
    if (!tokens.has(String(headers.authorization ?? '').replace(/^Bearer /, '')))
      return refuse(401, 'Unauthorized: invalid or expired access token');
    const create = /^\/v1\/adaccounts\/([^/]+)\/segments$/.exec(path);
    if (create && method === 'POST') {
      if (create[1] !== opts.adAccountId) return refuse(403, `no access to ad account ${create[1]}`);
      const s = body?.segments?.[0];
      if (!s || typeof s.name !== 'string' || s.source_type !== 'FIRST_PARTY' || s.ad_account_id !== opts.adAccountId)
        return refuse(400, 'segments[0] needs a name, source_type FIRST_PARTY and the ad_account_id');
      const id = String(4000000000 + segments.size + 1);
      segments.set(id, { name: s.name, members: new Map() });
      return {
        status: 200,
        body: {
          request_status: 'SUCCESS',
          segments: [{ sub_request_status: 'SUCCESS', segment: { id, name: s.name, ad_account_id: opts.adAccountId } }],
        },
      };
    }
    const users = /^\/v1\/segments\/([^/]+)\/users$/.exec(path);
    if (!users || !['POST', 'DELETE'].includes(method)) return refuse(404, `no such endpoint ${method} ${path}`);
    const segment = segments.get(users[1]!);
    if (!segment) return refuse(404, `segment ${users[1]} not found`);
    const list = body?.users;
    if (!Array.isArray(list) || list.length === 0) return refuse(400, "'users' must be a non-empty array");
    let n = 0;
    for (const u of list as Body[]) {
      const schema = u?.schema?.[0];
      if (!['EMAIL_SHA256', 'PHONE_SHA256', 'MOBILE_AD_ID_SHA256'].includes(schema) || u.schema.length !== 1)
        return refuse(400, 'schema must be one of EMAIL_SHA256, PHONE_SHA256, MOBILE_AD_ID_SHA256');
      if (!Array.isArray(u.data) || u.data.some((row: Body) => !Array.isArray(row) || !/^[0-9a-f]{64}$/.test(String(row[0]))))
        return refuse(400, 'data must be rows of SHA-256 hex digests');
      n += u.data.length;
    }
    if (n > 100_000) return refuse(400, `${n} identifiers, more than 100,000`);
    for (const u of list as Body[]) {
      const members = segment.members.get(u.schema[0]) ?? new Set<string>();
      segment.members.set(u.schema[0], members);
      for (const [hash] of u.data) {
        if (method === 'POST') members.add(hash);
        else members.delete(hash);
      }
    }
    return {
      status: 200,
      body: { request_status: 'SUCCESS', users: [{ sub_request_status: 'SUCCESS', user: { number_uploaded_users: n } }] },
    };
  });
  return { ...emulator, segments };
}

/**
 * LinkedIn Marketing API DMP segments (learn.microsoft.com/linkedin/marketing/matched-audiences):
 * `Authorization: Bearer <access token>` and a `LinkedIn-Version` (YYYYMM,
 * 426 when missing); GET /rest/dmpSegments?q=account&account=urn:li:sponsoredAccount:{id}
 * &sourceSegmentId=..&sourcePlatform=.. finds a segment; POST /rest/dmpSegments
 * {name, sourcePlatform, sourceSegmentId, account, type: 'USER', destinations}
 * creates one (201, its id in `x-linkedin-id`); POST
 * /rest/dmpSegments/{id}/users with `X-RestLi-Method: BATCH_CREATE`
 * {elements: [{action: ADD | REMOVE, userIds: [{idType: SHA256_EMAIL, idValue}]}]},
 * at most 5,000 elements, emails as SHA-256 hex -> 200 with a status per
 * element. 401 INVALID_ACCESS_TOKEN; tokens refreshed at
 * www.linkedin.com/oauth/v2/accessToken (form, grant_type=refresh_token).
 */
export async function linkedinEmulator(opts: {
  accessTokens: string[];
  adAccountId: string;
  refresh: { token: string; clientId: string; clientSecret: string; issues: string };
}) {
  const tokens = new Set(opts.accessTokens);
  const segments = new Map<string, { name: string; sourceSegmentId: string; members: Set<string> }>();
  const refuse = (status: number, code: string, message: string): Answer => ({ status, body: { status, code, message } });
  const account = `urn:li:sponsoredAccount:${opts.adAccountId}`;
  const emulator = await emulate((method, path, body, headers) => {
    const url = new URL(path, 'http://x');
    if (method === 'POST' && url.pathname === '/oauth/v2/accessToken') {
      const form = new URLSearchParams(typeof body === 'string' ? body : '');
      const r = opts.refresh;
      if (
        form.get('grant_type') !== 'refresh_token' ||
        form.get('client_id') !== r.clientId ||
        form.get('client_secret') !== r.clientSecret
      )
        return { status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed' } };
      if (form.get('refresh_token') !== r.token)
        return { status: 400, body: { error: 'invalid_grant', error_description: 'The provided authorization grant is invalid' } };
      tokens.add(r.issues);
      return { status: 200, body: { access_token: r.issues, expires_in: 5183999 } };
    }
    if (!tokens.has(String(headers.authorization ?? '').replace(/^Bearer /, '')))
      return refuse(401, 'INVALID_ACCESS_TOKEN', 'Invalid access token');
    if (!/^\d{6}$/.test(String(headers['linkedin-version'] ?? ''))) return refuse(426, 'VERSION_MISSING', 'A version must be present');
    if (method === 'GET' && url.pathname === '/rest/dmpSegments') {
      const q = url.searchParams;
      if (q.get('q') !== 'account' || q.get('account') !== account) return refuse(403, 'ACCESS_DENIED', `no access to ${q.get('account')}`);
      const elements = [...segments]
        .filter(([, s]) => s.sourceSegmentId === q.get('sourceSegmentId'))
        .map(([id, s]) => ({ id: Number(id), name: s.name, account, sourceSegmentId: s.sourceSegmentId }));
      return { status: 200, body: { elements, paging: { start: 0, count: 10, total: elements.length } } };
    }
    if (method === 'POST' && url.pathname === '/rest/dmpSegments') {
      if (body?.account !== account) return refuse(403, 'ACCESS_DENIED', `no access to ${body?.account}`);
      if (typeof body.name !== 'string' || body.type !== 'USER' || !body.sourcePlatform || !Array.isArray(body.destinations))
        return refuse(400, 'INVALID_PARAMS', 'name, type USER, sourcePlatform and destinations are required');
      const id = String(9000 + segments.size + 1);
      segments.set(id, { name: body.name, sourceSegmentId: body.sourceSegmentId, members: new Set() });
      return { status: 201, headers: { 'x-linkedin-id': id, 'x-restli-id': id } };
    }
    const users = /^\/rest\/dmpSegments\/([^/]+)\/users$/.exec(url.pathname);
    if (method !== 'POST' || !users) return refuse(404, 'NOT_FOUND', `no such endpoint ${method} ${path}`);
    const segment = segments.get(users[1]!);
    if (!segment) return refuse(404, 'NOT_FOUND', `dmpSegment ${users[1]} not found`);
    if (headers['x-restli-method'] !== 'BATCH_CREATE') return refuse(400, 'INVALID_METHOD', 'X-RestLi-Method must be BATCH_CREATE');
    const elements = body?.elements;
    if (!Array.isArray(elements) || elements.length === 0 || elements.length > 5000)
      return refuse(400, 'INVALID_PARAMS', "'elements' must hold 1 to 5,000 users");
    for (const e of elements as Body[]) {
      if (!['ADD', 'REMOVE'].includes(e?.action)) return refuse(400, 'INVALID_PARAMS', 'action must be ADD or REMOVE');
      if (!Array.isArray(e.userIds) || e.userIds.length === 0) return refuse(400, 'INVALID_PARAMS', 'userIds is required');
      if (e.userIds.some((u: Body) => u.idType === 'SHA256_EMAIL' && !/^[0-9a-f]{64}$/.test(u.idValue)))
        return refuse(400, 'INVALID_PARAMS', 'SHA256_EMAIL must be a SHA-256 hex digest');
    }
    for (const e of elements as Body[])
      for (const u of e.userIds) {
        if (e.action === 'ADD') segment.members.add(`${u.idType}:${u.idValue}`);
        else segment.members.delete(`${u.idType}:${u.idValue}`);
      }
    return { status: 200, body: { elements: elements.map(() => ({ status: 201 })) } };
  });
  return { ...emulator, segments };
}

/**
 * TikTok Marketing API v1.3 audience segments (business-api.tiktok.com/portal/docs, "Audience segment"):
 * the `Access-Token` header on every request. POST /open_api/v1.3/segment/audience/
 * {custom_audience_name, advertiser_id, action: 'create'} creates a segment;
 * POST /open_api/v1.3/segment/mapping/ {advertiser_ids, action: 'add' |
 * 'delete', id_schema: ['EMAIL_SHA256' | 'PHONE_SHA256' | 'IDFA_SHA256' ...],
 * batch_data: [[{id, audience_ids}, ...], ...]} adds or removes users, one row
 * per user with one entry per id_schema type (`{}` where the user has none),
 * each id a SHA-256 hex digest, at most 10,000 rows per request. Every answer
 * is HTTP 200 `{code, message, request_id, data}`: code 0 'OK'; 40105 for a
 * bad token, 40001 for an advertiser the token cannot reach, 40002 for a bad
 * body, 40100 when rate limited. (Its gateway's HTTP 429 with Retry-After
 * comes as a queued fault.)
 */
export async function tiktokEmulator(opts: { accessToken: string; advertiserIds: string[] }) {
  const segments = new Map<string, { name: string; advertiserId: string; members: Map<string, Set<string>> }>();
  const answer = (code: number, message: string, data: Body = {}): Answer => ({
    status: 200,
    body: { code, message, request_id: `req-${code}`, data },
  });
  const SCHEMAS = ['EMAIL_SHA256', 'PHONE_SHA256', 'IDFA_SHA256', 'GAID_SHA256', 'IDFA_MD5', 'GAID_MD5'];
  const emulator = await emulate((method, path, body, headers) => {
    if (headers['access-token'] !== opts.accessToken) return answer(40105, 'Access token is incorrect or has been revoked.');
    if (!String(headers['content-type'] ?? '').includes('application/json')) return answer(40002, 'Content-Type must be application/json');
    if (method === 'POST' && path === '/open_api/v1.3/segment/audience/') {
      if (body?.action !== 'create') return answer(40002, "action: must be 'create'");
      if (!opts.advertiserIds.includes(body.advertiser_id))
        return answer(40001, `No permission to operate advertiser ${body.advertiser_id}`);
      if (typeof body.custom_audience_name !== 'string' || body.custom_audience_name === '')
        return answer(40002, 'custom_audience_name: is required');
      const id = String(7000000 + segments.size + 1);
      segments.set(id, { name: body.custom_audience_name, advertiserId: body.advertiser_id, members: new Map() });
      return answer(0, 'OK', { audience_id: id });
    }
    if (method !== 'POST' || path !== '/open_api/v1.3/segment/mapping/') return answer(40002, `no such endpoint ${method} ${path}`);
    const advertisers = body?.advertiser_ids;
    if (!Array.isArray(advertisers) || advertisers.length === 0) return answer(40002, 'advertiser_ids: must be a non-empty list');
    const denied = advertisers.find((a: unknown) => !opts.advertiserIds.includes(String(a)));
    if (denied !== undefined) return answer(40001, `No permission to operate advertiser ${denied}`);
    if (!['add', 'delete'].includes(body.action)) return answer(40002, "action: must be 'add' or 'delete'");
    const schema = body.id_schema;
    if (!Array.isArray(schema) || schema.length === 0 || schema.some((s: unknown) => !SCHEMAS.includes(String(s))))
      return answer(40002, `id_schema: must be a non-empty list of ${SCHEMAS.join(', ')}`);
    const rows = body.batch_data;
    if (!Array.isArray(rows) || rows.length === 0) return answer(40002, 'batch_data: must be a non-empty list');
    if (rows.length > 10_000) return answer(40002, `batch_data: ${rows.length} rows, more than 10000`);
    for (const row of rows) {
      if (!Array.isArray(row) || row.length !== schema.length)
        return answer(40002, 'batch_data: each row needs one entry per id_schema type');
      for (const entry of row as Body[]) {
        if (entry === null || typeof entry !== 'object') return answer(40002, 'batch_data: entries must be objects');
        if (entry.id === undefined) continue; // the user has no id of this type
        if (!/^[0-9a-f]{64}$/.test(String(entry.id))) return answer(40002, `batch_data: id ${entry.id} is not a SHA-256 hex digest`);
        if (!Array.isArray(entry.audience_ids) || entry.audience_ids.some((a: unknown) => !segments.has(String(a))))
          return answer(40002, `batch_data: unknown audience_ids ${JSON.stringify(entry.audience_ids)}`);
      }
    }
    for (const row of rows as Body[][]) {
      row.forEach((entry, i) => {
        if (entry.id === undefined) return;
        for (const audienceId of entry.audience_ids as string[]) {
          const members = segments.get(audienceId)!.members;
          const of = members.get(schema[i]) ?? new Set<string>();
          if (body.action === 'add') of.add(entry.id);
          else of.delete(entry.id);
          members.set(schema[i], of);
        }
      });
    }
    return answer(0, 'OK');
  });
  return { ...emulator, segments };
}

/**
 * Facebook Marketing API custom audiences (developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences):
 * the access token as `Authorization: Bearer` or the `access_token`
 * parameter; POST /{version}/act_{ad_account_id}/customaudiences {name,
 * subtype: 'CUSTOM', customer_file_source, description?} -> {id}; GET
 * /{version}/{audience_id}?fields=id,name; POST (add) and DELETE (remove)
 * /{version}/{audience_id}/users {payload: {schema: [keys], data: [[values
 * in schema order], ...]}} (multi-key matching: EXTERN_ID and MADID as they
 * are, every other key SHA-256 hex, '' where the user has none), at most
 * 10,000 rows per request -> {audience_id, session_id, num_received,
 * num_invalid_entries}. Errors as `{error: {message, type, code, fbtrace_id}}`
 * with HTTP 400 (developers.facebook.com/docs/graph-api/guides/error-handling):
 * 190 OAuthException for a bad token, 200 for an ad account the token cannot
 * reach, 100 for a bad parameter; throttling is 80003 with is_transient
 * (`throttle(n)`: the next n requests get it).
 */
export async function facebookEmulator(opts: { accessToken: string; adAccountIds: string[] }) {
  const audiences = new Map<string, { name: string; adAccountId: string; description?: string; members: Map<string, Set<string>> }>();
  const KEYS = ['EXTERN_ID', 'EMAIL', 'PHONE', 'GEN', 'DOBY', 'DOBM', 'DOBD', 'LN', 'FN', 'FI', 'CT', 'ST', 'ZIP', 'MADID', 'COUNTRY'];
  const UNHASHED = ['EXTERN_ID', 'MADID'];
  let trace = 0;
  const fail = (code: number, message: string, type = 'GraphMethodException', extra: Body = {}): Answer => ({
    status: 400,
    ...(code === 190 ? { headers: { 'www-authenticate': `OAuth "Facebook Platform" "invalid_token" "${message}"` } } : {}),
    body: { error: { message, type, code, fbtrace_id: `trace-${++trace}`, ...extra } },
  });
  const emulator = await emulate((method, path, body, headers) => {
    const url = new URL(path, 'http://x');
    const token = /^Bearer (.+)$/.exec(String(headers.authorization ?? ''))?.[1] ?? url.searchParams.get('access_token');
    if (token !== opts.accessToken) return fail(190, 'Invalid OAuth access token - Cannot parse access token', 'OAuthException');
    const [version, node, edge, ...rest] = url.pathname.split('/').filter(Boolean);
    if (!/^v\d+\.\d+$/.test(version ?? '') || !node || rest.length) return fail(100, `Unknown path components: ${url.pathname}`);
    const account = /^act_(\d+)$/.exec(node)?.[1];
    if (account !== undefined && edge === 'customaudiences' && method === 'POST') {
      if (!opts.adAccountIds.includes(account))
        return fail(200, `(#200) The user does not have permission to access ad account ${account}`, 'OAuthException');
      if (typeof body?.name !== 'string' || body.name === '') return fail(100, '(#100) The parameter name is required');
      if (body.subtype !== 'CUSTOM') return fail(100, '(#100) subtype must be one of CUSTOM, WEBSITE, APP, ...');
      if (!['USER_PROVIDED_ONLY', 'PARTNER_PROVIDED_ONLY', 'BOTH_USER_AND_PARTNER_PROVIDED'].includes(body.customer_file_source))
        return fail(100, '(#100) customer_file_source must be USER_PROVIDED_ONLY, PARTNER_PROVIDED_ONLY or BOTH_USER_AND_PARTNER_PROVIDED');
      const id = String(23850000000000 + audiences.size + 1);
      audiences.set(id, { name: body.name, adAccountId: account, description: body.description, members: new Map() });
      return { status: 200, body: { id } };
    }
    const audience = audiences.get(node);
    if (!audience) return fail(100, `Unsupported ${method.toLowerCase()} request. Object with ID '${node}' does not exist`);
    if (method === 'GET' && edge === undefined) return { status: 200, body: { id: node, name: audience.name } };
    if (edge !== 'users' || !['POST', 'DELETE'].includes(method)) return fail(100, `Unsupported ${method} ${url.pathname}`);
    const payload = typeof body?.payload === 'string' ? JSON.parse(body.payload) : body?.payload;
    const schema = payload?.schema;
    if (!Array.isArray(schema) || schema.length === 0 || schema.some((k: unknown) => !KEYS.includes(String(k))))
      return fail(100, `(#100) Invalid schema ${JSON.stringify(schema)}: keys among ${KEYS.join(', ')}`);
    const rows = payload.data;
    if (!Array.isArray(rows) || rows.length === 0) return fail(100, '(#100) payload.data must be a non-empty array');
    if (rows.length > 10_000) return fail(100, `(#100) payload.data has ${rows.length} entries, more than the limit of 10000`);
    for (const row of rows as Body[]) {
      if (!Array.isArray(row) || row.length !== schema.length)
        return fail(100, '(#100) each payload.data row needs one value per schema key');
      for (const [i, value] of (row as Body[]).entries()) {
        if (typeof value !== 'string') return fail(100, `(#100) ${schema[i]} values must be strings`);
        if (value !== '' && !UNHASHED.includes(schema[i]) && !/^[0-9a-f]{64}$/.test(value))
          return fail(100, `(#100) ${schema[i]} must be a SHA-256 hex digest (normalised, then hashed)`);
      }
      if ((row as string[]).every((v) => v === '')) return fail(100, '(#100) a payload.data row has no identifier');
    }
    for (const row of rows as string[][])
      row.forEach((value, i) => {
        if (value === '') return;
        const of = audience.members.get(schema[i]) ?? new Set<string>();
        if (method === 'POST') of.add(value);
        else of.delete(value);
        audience.members.set(schema[i], of);
      });
    return {
      status: 200,
      body: {
        audience_id: node,
        session_id: String(++trace),
        num_received: rows.length,
        num_invalid_entries: 0,
        invalid_entry_samples: {},
      },
    };
  });
  /** The next `n` requests are throttled as Facebook throttles an ad account's custom audience calls. */
  const throttle = (n = 1) => {
    for (let i = 0; i < n; i++)
      emulator.faults.push(
        fail(80003, 'There have been too many calls to this ad-account. Wait a bit and try again.', 'OAuthException', {
          is_transient: true,
        }),
      );
  };
  return { ...emulator, audiences, throttle };
}
