// A local emulator of Oracle Responsys's REST API (login and the async merge
// into a Profile Extension Table) over real HTTP, enforcing its documented
// contract and keeping each table's records so a test can read what
// Responsys holds. Faults queued by a test answer the next requests first.
import type http from 'node:http';
import { Receiver, type Responder } from './receiver';
import type { Emulator } from './vendor-emulators';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = any;
type Answer = ReturnType<Responder>;

/** Responsys's request-level error: `{type, title, errorCode, detail, errorDetails}`. */
export const responsysError = (status: number, errorCode: string, detail: string, headers?: Record<string, string>): Answer => ({
  status,
  ...(headers ? { headers } : {}),
  body: { type: '', title: errorCode.replace(/_/g, ' ').toLowerCase(), errorCode, detail, errorDetails: [] },
});

/** Records a merge takes at most (Responsys's limit for a PET merge). */
export const MAX_RECORDS = 200;

/**
 * Responsys REST API v1.3 (docs.oracle.com/en/cloud/saas/marketing/responsys-rest-api):
 * POST /rest/api/v1.3/auth/token (form user_name, password,
 * auth_type=password) -> {authToken, issuedAt, endPoint}, 401
 * AUTHENTICATION_FAILED otherwise. POST
 * /rest/asyncApi/v1.3/lists/{list}/listExtensions/{pet}/members with
 * `Authorization: <authToken>` (no scheme) and a JSON body {recordData:
 * {fieldNames, records, mapTemplateName}, insertOnNoMatch, updateOnMatch,
 * matchColumnName1}: at most 200 records, every field a column of the table,
 * the match column among the fields -> {requestId}. 401 TOKEN_EXPIRED /
 * INVALID_TOKEN for a bad token, 404 for an unknown list or table, 400
 * INVALID_PARAMETER for a bad body; throttling (401 API_LIMIT_EXCEEDED, a
 * gateway 429) comes as queued faults.
 */
export async function responsysEmulator(opts: { username: string; password: string; list: string; tables: Record<string, string[]> }) {
  const live = new Set<string>();
  const expired = new Set<string>();
  let issued = 0;
  let throttled = 0;
  const tables = new Map(
    Object.entries(opts.tables).map(([name, columns]) => [name, { columns, rows: new Map<string, Record<string, unknown>>() }]),
  );
  const faults: Answer[] = [];
  const receiver = await new Receiver((path, body, _nth, headers, method) => faults.shift() ?? check(method, path, body, headers)).start();

  function check(method: string, path: string, body: Body, headers: http.IncomingHttpHeaders): Answer {
    if (method === 'POST' && path === '/rest/api/v1.3/auth/token') {
      const form = new URLSearchParams(typeof body === 'string' ? body : '');
      if (form.get('auth_type') !== 'password') return responsysError(400, 'INVALID_PARAMETER', 'auth_type must be password');
      if (form.get('user_name') !== opts.username || form.get('password') !== opts.password)
        return responsysError(401, 'AUTHENTICATION_FAILED', 'Invalid user name or password');
      const authToken = `rsys-token-${++issued}`;
      live.add(authToken);
      return {
        status: 200,
        body: { authToken, issuedAt: 1_700_000_000_000, endPoint: 'https://njp1q7u-api.responsys.ocs.oraclecloud.com' },
      };
    }
    const merge = /^\/rest\/asyncApi\/v1\.3\/lists\/([^/]+)\/listExtensions\/([^/]+)\/members$/.exec(path);
    if (method !== 'POST' || !merge) return responsysError(404, 'NOT_FOUND', `no such endpoint ${method} ${path}`);
    if (throttled > 0 && throttled--)
      return responsysError(401, 'API_LIMIT_EXCEEDED', 'Throttling limit exceeded for mergeProfileExtensionRecords');
    const token = String(headers.authorization ?? '');
    if (expired.has(token)) return responsysError(401, 'TOKEN_EXPIRED', 'Authentication token expired');
    if (!live.has(token)) return responsysError(401, 'INVALID_TOKEN', 'Not a valid authentication token');
    if (!String(headers['content-type'] ?? '').includes('application/json'))
      return responsysError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json');
    if (decodeURIComponent(merge[1]!) !== opts.list) return responsysError(404, 'LIST_NOT_FOUND', `List ${merge[1]} not found`);
    const table = tables.get(decodeURIComponent(merge[2]!));
    if (!table) return responsysError(404, 'PROFILE_EXTENSION_NOT_FOUND', `Profile extension table ${merge[2]} not found`);
    const { fieldNames, records } = body?.recordData ?? {};
    if (!Array.isArray(fieldNames) || !Array.isArray(records) || records.length === 0)
      return responsysError(400, 'INVALID_PARAMETER', 'recordData needs fieldNames and records');
    if (records.length > MAX_RECORDS)
      return responsysError(400, 'INVALID_PARAMETER', `Record count ${records.length} exceeds the limit of ${MAX_RECORDS}`);
    const unknown = fieldNames.find((f: string) => !table.columns.includes(f));
    if (unknown) return responsysError(400, 'INVALID_FIELD_NAME', `Field ${unknown} is not a column of ${merge[2]}`);
    const match = `${String(body.matchColumnName1 ?? '').replace(/_$/, '')}_`;
    if (!fieldNames.includes(match))
      return responsysError(400, 'INVALID_PARAMETER', `Match column ${body.matchColumnName1} is not among the fields`);
    for (const record of records) {
      const row = Object.fromEntries(fieldNames.map((f: string, i: number) => [f, record[i]]));
      const key = String(row[match] ?? '');
      if (!key) continue; // Responsys rejects that record alone (the async request's results)
      const existing = table.rows.get(key);
      if (existing && body.updateOnMatch === 'NO_UPDATE') continue;
      if (!existing && body.insertOnNoMatch === false) continue;
      table.rows.set(key, { ...existing, ...row });
    }
    return { status: 200, body: { requestId: `req-${receiver.requests.length + 1}` } };
  }

  const emulator: Emulator = { receiver, target: receiver.url.replace(/^http:\/\//, ''), faults };
  return {
    ...emulator,
    tables,
    /** The next `n` merges are over Responsys's throttling limit (its 401 API_LIMIT_EXCEEDED); logins go through. */
    throttleMerges: (n: number) => void (throttled = n),
    /** Responsys's tokens expire (two hours after login): this one now gets 401 TOKEN_EXPIRED. */
    expire: (token: string) => void expired.add(token),
  };
}
