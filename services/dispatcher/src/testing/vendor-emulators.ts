// Local emulators of vendor APIs that Actions destinations call, enforcing
// each vendor's documented contract (path, auth header, body shape, batch
// limits) over real HTTP. A test queues faults (429 with Retry-After, 500,
// 401 ...) that the next requests get instead. Reached through
// DESTINATION_HTTP_OVERRIDES (the vendor host -> the emulator's port).
import { createHash } from 'node:crypto';
import type http from 'node:http';
import { Receiver, type Responder } from './receiver';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = any;
type Answer = ReturnType<Responder>;

export interface Emulator {
  receiver: Receiver;
  /** host:port to map the vendor's host to. */
  target: string;
  /** Answers the next requests get before the contract is checked, in order. */
  faults: Answer[];
}

async function emulate(check: (path: string, body: Body, headers: http.IncomingHttpHeaders) => Answer): Promise<Emulator> {
  const faults: Answer[] = [];
  const receiver = await new Receiver((path, body, _nth, headers) => faults.shift() ?? check(path, body, headers)).start();
  return { receiver, target: receiver.url.replace(/^http:\/\//, ''), faults };
}

const error = (status: number, message: string): Answer => ({ status, body: { message } });

/**
 * Braze REST API, POST /users/track (braze.com/docs/api/endpoints/user_data/post_user_track):
 * `Authorization: Bearer <REST API key>`; `attributes`, `events`, `purchases`
 * arrays of at most 75 objects each, every object naming the user by
 * external_id, user_alias, braze_id, email or phone. 201 on success, 401 for
 * a bad key, 400 for a bad body, 429 when rate limited.
 */
export function brazeEmulator(
  apiKey: string,
  opts: {
    /** Why Braze would refuse this object (a non-fatal error: the others are processed, 201 lists it by index). */
    refuse?: (item: Body) => string | undefined;
  } = {},
): Promise<Emulator> {
  return emulate((path, body, headers) => {
    if (path !== '/users/track') return error(404, `no such endpoint ${path}`);
    if (headers.authorization !== `Bearer ${apiKey}`) return error(401, 'Invalid API key: the API key is missing or not valid');
    if (!String(headers['content-type'] ?? '').includes('application/json')) return error(400, 'Content-Type must be application/json');
    if (typeof body !== 'object' || body === null) return error(400, 'body must be a JSON object');
    let processed = 0;
    for (const kind of ['attributes', 'events', 'purchases'] as const) {
      const items = body[kind];
      if (items === undefined) continue;
      if (!Array.isArray(items)) return error(400, `'${kind}' must be an array`);
      if (items.length > 75) return error(400, `'${kind}' has ${items.length} objects, more than 75`);
      for (const item of items) {
        if (!['external_id', 'user_alias', 'braze_id', 'email', 'phone'].some((k) => item?.[k] !== undefined && item?.[k] !== null))
          return error(400, `each object in '${kind}' must name the user (external_id, user_alias, braze_id, email or phone)`);
        if (kind === 'events' && (typeof item.name !== 'string' || typeof item.time !== 'string'))
          return error(400, `each event needs a name and a time`);
      }
      processed += items.length;
    }
    if (processed === 0) return error(400, 'nothing to track: attributes, events and purchases are all empty');
    // Non-fatal errors: the rest of the request is processed (braze.com/docs/api/errors/#fatal-errors).
    const errors = ['attributes', 'events', 'purchases'].flatMap((kind) =>
      ((body[kind] ?? []) as Body[]).flatMap((item, index) => {
        const type = opts.refuse?.(item);
        return type ? [{ type, input_array: kind, index }] : [];
      }),
    );
    return {
      status: 201,
      body: { message: 'success', attributes_processed: body.attributes?.length ?? 0, ...(errors.length ? { errors } : {}) },
    };
  });
}

/**
 * Customer.io Track API v2, POST /api/v2/batch (customer.io/docs/api/track/#operation/batch):
 * HTTP Basic auth with site id and API key; `{batch: [...]}` of at most
 * 500 KB, each entity at most 32 KB, with a type (person, object, delivery),
 * an action and, for people, exactly one identifier (id, email or cio_id).
 * 200 on success, 401 for bad credentials, 400 for a bad body, 429 when rate limited.
 */
export function customerioEmulator(siteId: string, apiKey: string): Promise<Emulator> {
  const basic = `Basic ${Buffer.from(`${siteId}:${apiKey}`).toString('base64')}`;
  const refuse = (status: number, message: string): Answer => ({ status, body: { errors: [{ message }] } });
  return emulate((path, body, headers) => {
    if (path !== '/api/v2/batch') return refuse(404, `no such endpoint ${path}`);
    if (headers.authorization !== basic) return { status: 401, body: { meta: { error: 'Unauthorized request' } } };
    if (!Array.isArray(body?.batch) || body.batch.length === 0) return refuse(400, "'batch' must be a non-empty array");
    if (JSON.stringify(body).length > 500 * 1024) return refuse(400, 'batch larger than 500 KB');
    for (const [i, entity] of (body.batch as Body[]).entries()) {
      if (JSON.stringify(entity).length > 32 * 1024) return refuse(400, `batch[${i}] larger than 32 KB`);
      if (!['person', 'object', 'delivery'].includes(entity?.type))
        return refuse(400, `batch[${i}].type must be person, object or delivery`);
      if (typeof entity.action !== 'string') return refuse(400, `batch[${i}].action is required`);
      const ids = Object.keys(entity.identifiers ?? {}).filter((k) => ['id', 'email', 'cio_id'].includes(k));
      if (entity.type === 'person' && ids.length !== 1)
        return refuse(400, `batch[${i}].identifiers must have exactly one of id, email, cio_id`);
    }
    return { status: 200, body: {} };
  });
}

/**
 * Iterable, POST /api/users/bulkUpdate (api.iterable.com/api/docs#users_bulkUpdateUser):
 * `Api-Key` header; `{users: [...]}`, at most 1,000 users, each with an email
 * or a userId. 200 with success and fail counts, 401 for a bad key
 * (code BadApiKey), 400 for a bad body, 429 when rate limited.
 */
export function iterableEmulator(apiKey: string): Promise<Emulator> {
  const refuse = (status: number, code: string, msg: string): Answer => ({ status, body: { msg, code, params: null } });
  return emulate((path, body, headers) => {
    if (path !== '/api/users/bulkUpdate') return refuse(404, 'NotFound', `no such endpoint ${path}`);
    if (headers['api-key'] !== apiKey) return refuse(401, 'BadApiKey', 'Invalid API key');
    const users = body?.users;
    if (!Array.isArray(users) || users.length === 0) return refuse(400, 'InvalidJsonBody', "'users' must be a non-empty array");
    if (users.length > 1000) return refuse(400, 'InvalidJsonBody', `${users.length} users, more than 1000`);
    if (users.some((u: Body) => !u?.email && !u?.userId)) return refuse(400, 'InvalidJsonBody', 'each user needs an email or a userId');
    return { status: 200, body: { successCount: users.length, failCount: 0, invalidEmails: [], invalidUserIds: [] } };
  });
}

/**
 * HubSpot CRM v3 contacts batch API with OAuth (developers.hubspot.com/docs/api/crm/contacts):
 * `Authorization: Bearer <access token>`; POST /crm/v3/objects/contacts/batch/read
 * (idProperty email; 207 with OBJECT_NOT_FOUND errors for unknown ids),
 * /batch/create and /batch/update, at most 100 inputs each; 401 for an
 * unknown or expired token; POST /oauth/v1/token (form-encoded
 * grant_type=refresh_token) issues a new access token for a known refresh
 * token and client. Contacts are kept, so a second upsert updates.
 */
export async function hubspotEmulator(opts: {
  accessTokens: string[];
  refreshToken: string;
  client: { id: string; secret: string };
  /** The access token the next good refresh issues. */
  issues: string;
}): Promise<Emulator & { contacts: Map<string, { id: string; properties: Record<string, unknown> }> }> {
  const tokens = new Set(opts.accessTokens);
  const contacts = new Map<string, { id: string; properties: Record<string, unknown> }>();
  const refuse = (status: number, category: string, message: string): Answer => ({ status, body: { status: 'error', message, category } });
  const emulator = await emulate((path, body, headers) => {
    if (path === '/oauth/v1/token') {
      const form = new URLSearchParams(typeof body === 'string' ? body : '');
      if (
        form.get('grant_type') !== 'refresh_token' ||
        form.get('client_id') !== opts.client.id ||
        form.get('client_secret') !== opts.client.secret
      )
        return refuse(400, 'BAD_CLIENT', 'missing or unknown client id or secret');
      if (form.get('refresh_token') !== opts.refreshToken) return refuse(400, 'BAD_REFRESH_TOKEN', 'missing or unknown refresh token');
      tokens.add(opts.issues);
      return { status: 200, body: { token_type: 'bearer', access_token: opts.issues, refresh_token: opts.refreshToken, expires_in: 1800 } };
    }
    const token = String(headers.authorization ?? '').replace(/^Bearer /, '');
    if (!tokens.has(token)) return refuse(401, 'INVALID_AUTHENTICATION', 'Authentication credentials not found or expired');
    const inputs = body?.inputs;
    if (!Array.isArray(inputs) || inputs.length === 0) return refuse(400, 'VALIDATION_ERROR', "'inputs' must be a non-empty array");
    if (inputs.length > 100) return refuse(400, 'VALIDATION_ERROR', `${inputs.length} inputs, more than 100`);
    const now = new Date().toISOString();
    if (path === '/crm/v3/objects/contacts/batch/read') {
      if (body.idProperty !== 'email') return refuse(400, 'VALIDATION_ERROR', 'this emulator reads contacts by email only');
      const ids = inputs.map((i: Body) => String(i.id).toLowerCase());
      const found = ids.filter((id: string) => contacts.has(id)).map((id: string) => ({ ...contacts.get(id)!, updatedAt: now }));
      const missing = ids.filter((id: string) => !contacts.has(id));
      const errors = missing.length
        ? [{ status: 'error', category: 'OBJECT_NOT_FOUND', message: 'Could not get some CONTACT objects', context: { ids: missing } }]
        : [];
      return {
        status: missing.length ? 207 : 200,
        body: { status: 'COMPLETE', results: found, numErrors: errors.length, errors, startedAt: now, completedAt: now },
      };
    }
    if (path === '/crm/v3/objects/contacts/batch/create') {
      if (inputs.some((i: Body) => typeof i?.properties?.email !== 'string'))
        return refuse(400, 'VALIDATION_ERROR', 'every contact needs properties.email');
      const results = inputs.map((i: Body) => {
        const contact = { id: String(contacts.size + 1), properties: { ...i.properties } };
        contacts.set(String(i.properties.email).toLowerCase(), contact);
        return contact;
      });
      return { status: 201, body: { status: 'COMPLETE', results, startedAt: now, completedAt: now } };
    }
    if (path === '/crm/v3/objects/contacts/batch/update') {
      const byId = new Map([...contacts.values()].map((c) => [c.id, c]));
      if (inputs.some((i: Body) => !byId.has(String(i?.id)))) return refuse(400, 'VALIDATION_ERROR', 'unknown contact id');
      const results = inputs.map((i: Body) => {
        const contact = byId.get(String(i.id))!;
        Object.assign(contact.properties, i.properties);
        return contact;
      });
      return { status: 200, body: { status: 'COMPLETE', results, startedAt: now, completedAt: now } };
    }
    return refuse(404, 'OBJECT_NOT_FOUND', `no such endpoint ${path}`);
  });
  return { ...emulator, contacts };
}

/**
 * Mailchimp Marketing API 3.0 list members and tags (mailchimp.com/developer/marketing/api/list-members/):
 * HTTP Basic auth with any user name and the API key; PUT
 * /3.0/lists/{list_id}/members/{md5 of the lowercase email} upserts
 * (email_address, status_if_new), POST .../members/{hash}/tags sets tags
 * active or inactive (204). Errors as problem+json: 401 for a bad key, 404
 * for an unknown list or member, 400 when the hash and email disagree.
 */
export async function mailchimpEmulator(apiKey: string, listId: string) {
  const members = new Map<string, { email: string; status: string; tags: Record<string, 'active' | 'inactive'> }>();
  const problem = (status: number, title: string, detail: string): Answer => ({
    status,
    headers: { 'content-type': 'application/problem+json' },
    body: { type: 'https://mailchimp.com/developer/marketing/docs/errors/', title, status, detail, instance: '' },
  });
  const emulator = await emulate((path, body, headers) => {
    const [user, key] = Buffer.from(String(headers.authorization ?? '').replace(/^Basic /, ''), 'base64')
      .toString()
      .split(':');
    if (!user || key !== apiKey)
      return problem(401, 'API Key Invalid', 'Your API key may be invalid, or you have attempted to access the wrong datacenter.');
    const m = /^\/3\.0\/lists\/([^/]+)\/members\/([0-9a-f]{32})(\/tags)?$/.exec(path);
    if (!m) return problem(404, 'Resource Not Found', `no such endpoint ${path}`);
    if (m[1] !== listId) return problem(404, 'Resource Not Found', 'The requested resource could not be found.');
    const hash = m[2]!;
    if (m[3]) {
      const member = members.get(hash);
      if (!member) return problem(404, 'Resource Not Found', 'The requested resource could not be found.');
      const tags = body?.tags;
      if (!Array.isArray(tags) || tags.some((t: Body) => typeof t?.name !== 'string' || !['active', 'inactive'].includes(t?.status)))
        return problem(400, 'Invalid Resource', "tags must be [{name, status: 'active' | 'inactive'}]");
      for (const t of tags) member.tags[t.name] = t.status;
      return { status: 204 };
    }
    const email = String(body?.email_address ?? '');
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email))
      return problem(400, 'Invalid Resource', `${email} looks fake or invalid, please enter a real email address.`);
    if (subscriberHashOf(email) !== hash) return problem(400, 'Invalid Resource', 'The subscriber hash does not match the email address.');
    if (!['subscribed', 'pending', 'unsubscribed', 'cleaned', 'transactional'].includes(body.status_if_new))
      return problem(400, 'Invalid Resource', 'status_if_new is not a valid status');
    const member = members.get(hash) ?? { email, status: body.status_if_new, tags: {} };
    members.set(hash, member);
    return { status: 200, body: { id: hash, email_address: email, status: member.status, list_id: listId } };
  });
  return { ...emulator, members };
}

const subscriberHashOf = (email: string) => createHash('md5').update(email.toLowerCase()).digest('hex');

/**
 * Zendesk Support, POST /api/v2/users/create_or_update.json
 * (developer.zendesk.com/api-reference/ticketing/users/users/#create-or-update-user):
 * Basic auth `{agent email}/token:{API token}`; `{user: {...}}` with an
 * external_id or an email, and a name for a new user; user_fields must be
 * fields defined in Zendesk (`fields`). 201 created, 200 updated, 401
 * `Couldn't authenticate you`, 422 RecordInvalid, 429 with Retry-After.
 */
export async function zendeskEmulator(agent: string, apiToken: string, fields: string[]) {
  const users = new Map<string, { id: number; email?: string; external_id?: string; name: string; user_fields: Record<string, unknown> }>();
  const invalid = (description: string): Answer => ({ status: 422, body: { error: 'RecordInvalid', description } });
  const emulator = await emulate((path, body, headers) => {
    if (headers.authorization !== `Basic ${Buffer.from(`${agent}/token:${apiToken}`).toString('base64')}`)
      return { status: 401, body: { error: "Couldn't authenticate you" } };
    if (path !== '/api/v2/users/create_or_update.json')
      return { status: 404, body: { error: 'InvalidEndpoint', description: 'Not found' } };
    const user = body?.user;
    if (typeof user !== 'object' || user === null) return invalid("Record validation errors: 'user' is required");
    const key = user.external_id ? `x:${user.external_id}` : user.email ? `e:${String(user.email).toLowerCase()}` : null;
    if (!key) return invalid('Record validation errors: an external_id or an email is required');
    const unknown = Object.keys(user.user_fields ?? {}).filter((f) => !fields.includes(f));
    if (unknown.length) return invalid(`Record validation errors: unknown user fields ${unknown.join(', ')}`);
    const existing = users.get(key);
    if (!existing && !user.name) return invalid('Record validation errors: Name: cannot be blank');
    const next = {
      id: existing?.id ?? users.size + 1,
      ...existing,
      ...user,
      name: user.name ?? existing?.name,
      user_fields: { ...existing?.user_fields, ...user.user_fields },
    };
    users.set(key, next);
    return { status: existing ? 200 : 201, body: { user: next } };
  });
  return { ...emulator, users };
}

/**
 * SendGrid Marketing Contacts (docs.sendgrid.com/api-reference/contacts/add-or-update-a-contact):
 * `Authorization: Bearer <API key>`; GET /v3/marketing/field_definitions
 * lists the account's custom fields; PUT /v3/marketing/contacts upserts
 * `{contacts: [...]}` (at most 30,000, each with an identifier: email,
 * phone_number_id, external_id or anonymous_id; custom_fields by field id)
 * and answers 202 with a job id. 401 for a bad key, 400 for a bad contact.
 */
export async function sendgridEmulator(apiKey: string, customFields: Array<{ id: string; name: string }>) {
  const contacts: Body[] = [];
  const refuse = (status: number, message: string, field: string | null = null): Answer => ({
    status,
    body: { errors: [{ field, message }] },
  });
  const emulator = await emulate((path, body, headers) => {
    if (headers.authorization !== `Bearer ${apiKey}`) return refuse(401, 'authorization required');
    if (path === '/v3/marketing/field_definitions')
      return { status: 200, body: { custom_fields: customFields.map((f) => ({ ...f, field_type: 'Text' })), reserved_fields: [] } };
    if (path !== '/v3/marketing/contacts') return refuse(404, `no such endpoint ${path}`);
    const list = body?.contacts;
    if (!Array.isArray(list) || list.length === 0) return refuse(400, "'contacts' must be a non-empty array", 'contacts');
    if (list.length > 30_000) return refuse(400, 'at most 30,000 contacts per request', 'contacts');
    for (const [i, c] of (list as Body[]).entries()) {
      if (!c?.email && !c?.phone_number_id && !c?.external_id && !c?.anonymous_id)
        return refuse(400, 'a contact needs an email, phone_number_id, external_id or anonymous_id', `contacts[${i}]`);
      const unknown = Object.keys(c.custom_fields ?? {}).filter((id) => !customFields.some((f) => f.id === id));
      if (unknown.length) return refuse(400, `unknown custom field ids ${unknown.join(', ')}`, `contacts[${i}].custom_fields`);
    }
    contacts.push(...list);
    return { status: 202, body: { job_id: `job-${contacts.length}` } };
  });
  return { ...emulator, contacts };
}

/**
 * Iterable lists (api.iterable.com/api/docs#lists): `Api-Key` header; GET
 * /api/lists, POST /api/lists {name} -> {listId}; POST /api/lists/subscribe
 * and /api/lists/unsubscribe {listId, subscribers: [{email | userId}]}, at
 * most 1,000 subscribers, the list must exist (400 BadParams otherwise).
 */
export async function iterableListsEmulator(apiKey: string) {
  const lists = new Map<number, { name: string; members: Set<string> }>();
  const refuse = (status: number, code: string, msg: string): Answer => ({ status, body: { msg, code, params: null } });
  const emulator = await emulate((path, body, headers) => {
    if (headers['api-key'] !== apiKey) return refuse(401, 'BadApiKey', 'Invalid API key');
    if (path === '/api/lists' && body === null)
      return { status: 200, body: { lists: [...lists].map(([id, l]) => ({ id, name: l.name, listType: 'Standard' })) } };
    if (path === '/api/lists') {
      if (typeof body?.name !== 'string' || body.name === '') return refuse(400, 'BadParams', "'name' is required");
      const id = 1000 + lists.size;
      lists.set(id, { name: body.name, members: new Set() });
      return { status: 200, body: { listId: id } };
    }
    const op = /^\/api\/lists\/(subscribe|unsubscribe)$/.exec(path)?.[1];
    if (!op) return refuse(404, 'NotFound', `no such endpoint ${path}`);
    const list = lists.get(Number(body?.listId));
    if (!list) return refuse(400, 'BadParams', `list ${body?.listId} does not exist`);
    const subscribers = body.subscribers;
    if (!Array.isArray(subscribers) || subscribers.length === 0 || subscribers.length > 1000)
      return refuse(400, 'BadParams', "'subscribers' must hold 1 to 1,000 users");
    if (subscribers.some((s: Body) => !s?.email && !s?.userId))
      return refuse(400, 'BadParams', 'each subscriber needs an email or a userId');
    for (const s of subscribers as Body[]) {
      const who = String(s.userId ?? s.email);
      if (op === 'subscribe') list.members.add(who);
      else list.members.delete(who);
    }
    return { status: 200, body: { successCount: subscribers.length, failCount: 0, invalidEmails: [], invalidUserIds: [] } };
  });
  return { ...emulator, lists };
}
