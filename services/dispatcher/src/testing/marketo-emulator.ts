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
  const live = new Set<string>();
  const expired = new Set<string>();
  const leads = new Map<string, Record<string, unknown>>();
  const fields = ['email', 'firstName', 'lastName', 'company', ...opts.fields];
  let issued = 0;
  const faults: Answer[] = [];
  const receiver = await new Receiver((path, body, _nth, headers, method) => faults.shift() ?? check(method, path, body, headers)).start();

  function check(method: string, path: string, body: Body, headers: http.IncomingHttpHeaders): Answer {
    if (method === 'POST' && path === '/identity/oauth/token') {
      const form = new URLSearchParams(typeof body === 'string' ? body : '');
      if (form.get('grant_type') !== 'client_credentials')
        return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'grant_type must be client_credentials' } };
      if (form.get('client_id') !== opts.clientId || form.get('client_secret') !== opts.clientSecret)
        return { status: 401, body: { error: 'invalid_client', error_description: 'Bad client credentials' } };
      const token = `mkto-token-${++issued}`;
      live.add(token);
      return { status: 200, body: { access_token: token, token_type: 'bearer', expires_in: 3599, scope: 'api@acme.com' } };
    }
    if (method !== 'POST' || path !== '/rest/v1/leads.json') return { status: 404, body: { error: `no such endpoint ${method} ${path}` } };
    const token = /^Bearer (.+)$/.exec(String(headers.authorization ?? ''))?.[1];
    if (!token) return marketoError('600', 'Access token not specified');
    if (expired.has(token)) return marketoError('602', 'Access token expired');
    if (!live.has(token)) return marketoError('601', 'Access token invalid');
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
    expire: (token: string) => void expired.add(token),
  };
}
