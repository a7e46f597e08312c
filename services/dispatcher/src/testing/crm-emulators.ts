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
