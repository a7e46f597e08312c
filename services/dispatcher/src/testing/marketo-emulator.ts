// A local emulator of Marketo's REST API (identity and leads) over real HTTP,
// enforcing its documented contract and keeping the leads so a test can read
// what Marketo holds. Faults queued by a test (606/607 in a 200, a 503 ...)
// answer the next requests first.
import type http from 'node:http';
import { Receiver, type Responder } from './receiver';
import type { Emulator } from './vendor-emulators';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = any;
type Answer = ReturnType<Responder>;

/** Marketo's answer to a refused call: HTTP 200, `success: false` and the error codes. */
export const marketoError = (code: string, message: string): Answer => ({
  status: 200,
  body: { requestId: `req#${code}`, success: false, errors: [{ code, message }] },
});

/**
 * Marketo's identity endpoint and the tokens it issued: POST
 * /identity/oauth/token (form grant_type=client_credentials, client_id,
 * client_secret) -> {access_token, token_type, expires_in}, HTTP 401
 * invalid_client for bad credentials; `Authorization: Bearer <token>` on every
 * other call, else 600 (none), 601 (unknown) or 602 (expired) in a 200.
 */
function marketoIdentity(opts: { clientId: string; clientSecret: string }) {
  const live = new Set<string>();
  const expired = new Set<string>();
  let issued = 0;
  return {
    expired,
    /** The token endpoint's answer, or undefined for another path. */
    token(method: string, path: string, body: Body): Answer | undefined {
      if (method !== 'POST' || path !== '/identity/oauth/token') return undefined;
      const form = new URLSearchParams(typeof body === 'string' ? body : '');
      if (form.get('grant_type') !== 'client_credentials')
        return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'grant_type must be client_credentials' } };
      if (form.get('client_id') !== opts.clientId || form.get('client_secret') !== opts.clientSecret)
        return { status: 401, body: { error: 'invalid_client', error_description: 'Bad client credentials' } };
      const token = `mkto-token-${++issued}`;
      live.add(token);
      return { status: 200, body: { access_token: token, token_type: 'bearer', expires_in: 3599, scope: 'api@acme.com' } };
    },
    /** Marketo's refusal of the call's Authorization header, or undefined when its token is live. */
    refusal(headers: http.IncomingHttpHeaders): Answer | undefined {
      const token = /^Bearer (.+)$/.exec(String(headers.authorization ?? ''))?.[1];
      if (!token) return marketoError('600', 'Access token not specified');
      if (expired.has(token)) return marketoError('602', 'Access token expired');
      if (!live.has(token)) return marketoError('601', 'Access token invalid');
      return undefined;
    },
  };
}

/**
 * Marketo REST API (developer.adobe.com/marketo-apis): POST
 * /identity/oauth/token (form grant_type=client_credentials, client_id,
 * client_secret) -> {access_token, token_type, expires_in}, HTTP 401
 * invalid_client for bad credentials. POST /rest/v1/leads.json
 * {action: createOnly | updateOnly | createOrUpdate | createDuplicate,
 * lookupField, input: [leads]} with `Authorization: Bearer <token>`: at most
 * 300 leads; every field must exist on the lead (1006); each lead gets
 * `{id, status: created | updated}` or `{status: 'skipped', reasons}` in
 * `result`, in the order given (skipped with 1007 when several leads have the
 * lookup value, as duplicates in a real instance do). Errors come as HTTP 200 with `success:
 * false`: 600 no token, 601 an unknown token, 602 an expired one, 1003 a bad
 * request, 1006 an unknown field; 606 (100 calls per 20 s) and 607 (daily
 * quota) come as queued faults.
 */
export async function marketoEmulator(opts: { clientId: string; clientSecret: string; fields: string[] }) {
  const identity = marketoIdentity(opts);
  const leads = new Map<string, Record<string, unknown>>();
  const fields = ['email', 'firstName', 'lastName', 'company', ...opts.fields];
  const faults: Answer[] = [];
  const receiver = await new Receiver((path, body, _nth, headers, method) => faults.shift() ?? check(method, path, body, headers)).start();

  function check(method: string, path: string, body: Body, headers: http.IncomingHttpHeaders): Answer {
    const token = identity.token(method, path, body);
    if (token) return token;
    if (method !== 'POST' || path !== '/rest/v1/leads.json') return { status: 404, body: { error: `no such endpoint ${method} ${path}` } };
    const refused = identity.refusal(headers);
    if (refused) return refused;
    if (!String(headers['content-type'] ?? '').includes('application/json')) return marketoError('612', 'Invalid Content Type');
    if (!['createOnly', 'updateOnly', 'createOrUpdate', 'createDuplicate'].includes(body?.action ?? 'createOrUpdate'))
      return marketoError('1003', `Invalid action '${body?.action}'`);
    const lookup = body?.lookupField ?? 'email';
    if (!fields.includes(lookup)) return marketoError('1006', `Field '${lookup}' not found`);
    const input = body?.input;
    if (!Array.isArray(input) || input.length === 0) return marketoError('1003', "'input' must be a non-empty array");
    if (input.length > 300) return marketoError('1003', `Max batch size is 300, got ${input.length}`);
    const unknown = input.flatMap((lead: Body) => Object.keys(lead ?? {})).find((f: string) => !fields.includes(f));
    if (unknown) return marketoError('1006', `Field '${unknown}' not found`);
    const result = input.map((lead: Body) => {
      const value = lead?.[lookup];
      if (typeof value !== 'string' || (lookup === 'email' && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value)))
        return { status: 'skipped', reasons: [{ code: '1003', message: `Invalid value for lookup field '${lookup}'` }] };
      const matches = [...leads.entries()].filter(([, l]) => l[lookup] === value);
      if (matches.length > 1)
        return { status: 'skipped', reasons: [{ code: '1007', message: 'Multiple leads match the lookup criteria' }] };
      const existing = matches[0];
      if (existing && body.action === 'createOnly')
        return { status: 'skipped', reasons: [{ code: '1005', message: 'Lead already exists' }] };
      if (!existing && body.action === 'updateOnly') return { status: 'skipped', reasons: [{ code: '1004', message: 'Lead not found' }] };
      const id = existing ? existing[0] : String(1000 + leads.size + 1);
      leads.set(id, { ...existing?.[1], ...lead });
      return { id: Number(id), status: existing ? 'updated' : 'created' };
    });
    return { status: 200, body: { requestId: 'req#1', success: true, result } };
  }

  const emulator: Emulator = { receiver, target: receiver.url.replace(/^http:\/\//, ''), faults };
  return {
    ...emulator,
    leads,
    /** Marketo's tokens expire after an hour: this one now gets 602. */
    expire: (token: string) => void identity.expired.add(token),
  };
}

/** The CSV file of a multipart/form-data body (Marketo's bulk import takes it as the `file` part), or undefined. */
function csvOfMultipart(contentType: string, body: string): string | undefined {
  const boundary = /boundary=([^;]+)/.exec(contentType)?.[1];
  if (!boundary) return undefined;
  for (const part of body.split(`--${boundary}`)) {
    const [head, ...rest] = part.split('\r\n\r\n');
    if (/name="file"/.test(head ?? '')) return rest.join('\r\n\r\n').replace(/\r\n$/, '');
  }
  return undefined;
}

/**
 * Marketo's static lists (developer.adobe.com/marketo-apis): the identity
 * endpoint as above; assets GET /rest/asset/v1/folder/byName.json?name=,
 * POST /rest/asset/v1/staticLists.json?folder=&name= (709 when the name is
 * taken), GET /rest/asset/v1/staticList/{id}.json; the bulk lead import POST
 * /bulk/v1/leads.json?format=csv&listId=&lookupField= with the CSV as the
 * multipart `file` part (at most 10 MB; leads upserted by the lookup field
 * and added to the list; 1013 for an unknown list, 1006 for an unknown
 * column); GET /rest/v1/leads.json?filterType=<field>&filterValues=a,b (at
 * most 300 values, only the leads found); DELETE
 * /rest/v1/lists/{id}/leads.json?id=1,2 (at most 300 ids, `skipped` 1004 for
 * a lead not in the list). Errors in a 200 with `success: false`, as for
 * leads; a limit (606 ...) and a gateway 429 come as queued faults.
 * NOTE: imports apply at once here; Marketo queues them (at most 10, else 1016).
 */
export async function marketoListsEmulator(opts: { clientId: string; clientSecret: string; folders: string[] }) {
  const identity = marketoIdentity(opts);
  const folders = new Map(opts.folders.map((name, i) => [name, 100 + i]));
  const lists = new Map<string, { name: string; folderId: number; members: Set<number> }>();
  const leads = new Map<number, Record<string, string>>();
  const fields = ['email', 'id', 'firstName', 'lastName', 'company'];
  const faults: Answer[] = [];
  const receiver = await new Receiver((path, body, _nth, headers, method) => faults.shift() ?? check(method, path, body, headers)).start();
  const ok = (result: unknown[]): Answer => ({ status: 200, body: { requestId: 'req#1', success: true, result } });

  function leadBy(field: string, value: string): number {
    for (const [id, lead] of leads) if (lead[field] === value) return id;
    const id = 5000 + leads.size + 1;
    leads.set(id, { [field]: value });
    return id;
  }

  function check(method: string, path: string, body: Body, headers: http.IncomingHttpHeaders): Answer {
    const token = identity.token(method, path, body);
    if (token) return token;
    const url = new URL(path, 'http://marketo');
    const q = (name: string) => url.searchParams.get(name) ?? '';
    const refused = identity.refusal(headers);
    if (refused) return refused;
    const route = `${method} ${url.pathname}`;
    if (route === 'GET /rest/asset/v1/folder/byName.json') {
      const id = folders.get(q('name'));
      return id === undefined
        ? { status: 200, body: { success: true, warnings: ['No assets found for the given search criteria.'], errors: [] } }
        : ok([{ id, name: q('name'), type: 'Folder', folderId: { id, type: 'Folder' } }]);
    }
    if (route === 'POST /rest/asset/v1/staticLists.json') {
      const folderId = Number(q('folder'));
      if (![...folders.values()].includes(folderId)) return marketoError('702', `Folder ${q('folder')} not found`);
      if (!q('name')) return marketoError('701', "'name' cannot be blank");
      if ([...lists.values()].some((l) => l.name === q('name'))) return marketoError('709', `Static list '${q('name')}' already exists`);
      const id = String(2000 + lists.size + 1);
      lists.set(id, { name: q('name'), folderId, members: new Set() });
      return ok([{ id: Number(id), name: q('name'), folder: { id: folderId, type: 'Folder' } }]);
    }
    const list = /^\/rest\/asset\/v1\/staticList\/(\d+)\.json$/.exec(url.pathname);
    if (method === 'GET' && list) {
      const found = lists.get(list[1]!);
      return found
        ? ok([{ id: Number(list[1]), name: found.name }])
        : { status: 200, body: { success: true, warnings: ['No assets found'] } };
    }
    if (route === 'POST /bulk/v1/leads.json') {
      if (q('format') !== 'csv') return marketoError('1003', `Invalid format '${q('format')}'`);
      const target = lists.get(q('listId'));
      if (!target) return marketoError('1013', `Static list ${q('listId')} not found`);
      const csv = csvOfMultipart(String(headers['content-type'] ?? ''), typeof body === 'string' ? body : '');
      if (csv === undefined) return marketoError('1003', "Multipart 'file' part is missing");
      if (Buffer.byteLength(csv) > 10_000_000) return marketoError('1003', 'File exceeds 10 MB');
      const [header, ...rows] = csv.split('\n');
      const columns = (header ?? '').split(',');
      const unknown = columns.find((c) => !fields.includes(c));
      if (unknown) return marketoError('1006', `Field '${unknown}' not found`);
      const lookup = q('lookupField') || 'email';
      if (!columns.includes(lookup)) return marketoError('1003', `Lookup field '${lookup}' is not a column`);
      for (const row of rows) {
        const values = Object.fromEntries(row.split(',').map((v, i) => [columns[i]!, v]));
        const value = values[lookup];
        if (!value) continue; // Marketo fails that row alone (the import's failures file)
        const id = leadBy(lookup, value);
        leads.set(id, { ...leads.get(id), ...values });
        target.members.add(id);
      }
      return ok([{ batchId: 3000 + receiver.requests.length, importId: String(3000 + receiver.requests.length), status: 'Queued' }]);
    }
    if (route === 'GET /rest/v1/leads.json') {
      const field = q('filterType');
      if (!fields.includes(field)) return marketoError('1003', `Invalid filterType '${field}'`);
      const values = q('filterValues').split(',').filter(Boolean);
      if (values.length === 0) return marketoError('1003', "'filterValues' cannot be blank");
      if (values.length > 300) return marketoError('1003', `At most 300 filterValues, got ${values.length}`);
      const found = [...leads].filter(([, l]) => values.includes(l[field] ?? '')).map(([id, l]) => ({ id, ...l }));
      return ok(found);
    }
    const members = /^\/rest\/v1\/lists\/(\d+)\/leads\.json$/.exec(url.pathname);
    if (method === 'DELETE' && members) {
      const target = lists.get(members[1]!);
      if (!target) return marketoError('1013', `Static list ${members[1]} not found`);
      const ids = q('id').split(',').filter(Boolean).map(Number);
      if (ids.length === 0 || ids.some((id) => !Number.isInteger(id))) return marketoError('1003', "'id' must be a list of lead ids");
      if (ids.length > 300) return marketoError('1003', `At most 300 ids, got ${ids.length}`);
      return ok(
        ids.map((id) =>
          target.members.delete(id)
            ? { id, status: 'removed' }
            : { id, status: 'skipped', reasons: [{ code: '1004', message: 'Lead not in list' }] },
        ),
      );
    }
    return { status: 404, body: { error: `no such endpoint ${method} ${url.pathname}` } };
  }

  const emulator: Emulator = { receiver, target: receiver.url.replace(/^http:\/\//, ''), faults };
  return {
    ...emulator,
    lists,
    leads,
    /** The list's members by email. */
    membersOf: (listId: string) => [...(lists.get(listId)?.members ?? [])].map((id) => leads.get(id)?.email),
    expire: (token: string) => void identity.expired.add(token),
  };
}
