// A local emulator of Salesforce Marketing Cloud's REST API (a tenant's auth
// and rest hosts: token and data extension rows) over real HTTP, enforcing
// its documented contract and keeping each data extension's rows so a test
// can read what SFMC holds. Faults queued by a test answer the next requests first.
import type http from 'node:http';
import { Receiver, type Responder } from './receiver';
import type { Emulator } from './vendor-emulators';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = any;
type Answer = ReturnType<Responder>;

/** SFMC's REST error: `{message, errorcode, documentation}` (with additionalErrors for row errors). */
export const sfmcError = (status: number, errorcode: number, message: string, extra: Record<string, unknown> = {}): Answer => ({
  status,
  body: { message, errorcode, documentation: '', ...extra },
});

/** The rowset's payload limit (5 MB). */
const MAX_PAYLOAD = 5 * 1024 * 1024;

/**
 * SFMC (developer.salesforce.com/docs/marketing/marketing-cloud): POST
 * https://{subdomain}.auth.marketingcloudapis.com/v2/token (grant_type
 * client_credentials, client_id, client_secret, account_id = the MID) ->
 * {access_token, token_type, expires_in, rest_instance_url, ...}, 401
 * invalid_client otherwise. POST
 * https://{subdomain}.rest.marketingcloudapis.com/hub/v1/dataevents/key:{key}/rowset
 * with `Authorization: Bearer <token>` and `[{keys, values}]` (at most 5 MB):
 * every row names the data extension's primary key in `keys`, every field
 * is a column (400 errorcode 10000 with additionalErrors naming it), an
 * unknown data extension is a 400 too; the rows are upserted and echoed.
 * 401 "Not Authorized" for a bad or expired token. A row save failure (400
 * errorcode 10006) and a gateway 429 come as queued faults.
 */
export async function sfmcEmulator(opts: {
  subdomain: string;
  clientId: string;
  clientSecret: string;
  accountId: string;
  dataExtensions: Record<string, { primaryKey: string; columns: string[] }>;
}) {
  const live = new Set<string>();
  const expired = new Set<string>();
  let issued = 0;
  const rows = new Map(Object.keys(opts.dataExtensions).map((key) => [key, new Map<string, Record<string, unknown>>()]));
  const faults: Answer[] = [];
  const receiver = await new Receiver((path, body, _nth, headers, method) => faults.shift() ?? check(method, path, body, headers)).start();
  const auth = `${opts.subdomain}.auth.marketingcloudapis.com`;
  const rest = `${opts.subdomain}.rest.marketingcloudapis.com`;

  function check(method: string, path: string, body: Body, headers: http.IncomingHttpHeaders): Answer {
    if (headers.host === auth && method === 'POST' && path === '/v2/token') {
      const form = typeof body === 'string' ? Object.fromEntries(new URLSearchParams(body)) : (body ?? {});
      if (form.grant_type !== 'client_credentials')
        return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'Use client_credentials.' } };
      if (form.client_id !== opts.clientId || form.client_secret !== opts.clientSecret)
        return { status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed.' } };
      if (form.account_id !== undefined && form.account_id !== opts.accountId)
        return { status: 401, body: { error: 'unauthorized_client', error_description: `No access to MID ${form.account_id}.` } };
      const token = `sfmc-token-${++issued}`;
      live.add(token);
      return {
        status: 200,
        body: {
          access_token: token,
          token_type: 'Bearer',
          expires_in: 1079,
          scope: 'data_extensions_write',
          rest_instance_url: `https://${rest}/`,
        },
      };
    }
    const rowset = /^\/hub\/v1\/dataevents\/key:([^/]+)\/rowset$/.exec(path);
    if (headers.host !== rest || method !== 'POST' || !rowset)
      return sfmcError(404, 404, `no such endpoint ${method} ${headers.host}${path}`);
    const token = /^Bearer (.+)$/.exec(String(headers.authorization ?? ''))?.[1];
    if (!token || expired.has(token) || !live.has(token)) return sfmcError(401, 0, 'Not Authorized');
    if (!String(headers['content-type'] ?? '').includes('application/json'))
      return sfmcError(400, 10000, 'Content-Type must be application/json');
    if (Buffer.byteLength(JSON.stringify(body)) > MAX_PAYLOAD) return sfmcError(413, 10000, 'The payload exceeds 5 MB');
    const key = decodeURIComponent(rowset[1]!);
    const de = opts.dataExtensions[key];
    if (!de) return sfmcError(400, 10000, `Unable to find the data extension with external key ${key}`);
    if (!Array.isArray(body) || body.length === 0) return sfmcError(400, 10000, 'The request body must be a non-empty array of rows');
    for (const row of body) {
      if (row?.keys?.[de.primaryKey] === undefined || row.keys[de.primaryKey] === null || row.keys[de.primaryKey] === '')
        return sfmcError(400, 10000, `Unable to save rows for data extension ID ${key}`, {
          additionalErrors: [{ message: `The primary key ${de.primaryKey} is missing from a row`, errorcode: 10001 }],
        });
      const unknown = Object.keys({ ...row.keys, ...row.values }).find((c) => !de.columns.includes(c));
      if (unknown)
        return sfmcError(400, 10000, `Unable to save rows for data extension ID ${key}`, {
          additionalErrors: [{ message: `The field ${unknown} is not a column of the data extension`, errorcode: 10000 }],
        });
    }
    const table = rows.get(key)!;
    for (const row of body) {
      const id = String(row.keys[de.primaryKey]);
      table.set(id, { ...table.get(id), ...row.keys, ...row.values });
    }
    return { status: 200, body };
  }

  const emulator: Emulator = { receiver, target: receiver.url.replace(/^http:\/\//, ''), faults };
  return {
    ...emulator,
    hosts: { auth, rest },
    rows,
    /** SFMC's tokens expire after ~20 minutes: this one now gets 401. */
    expire: (token: string) => void expired.add(token),
  };
}
