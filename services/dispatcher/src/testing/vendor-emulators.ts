// Local emulators of vendor APIs that Actions destinations call, enforcing
// each vendor's documented contract (path, auth header, body shape, batch
// limits) over real HTTP. A test queues faults (429 with Retry-After, 500,
// 401 ...) that the next requests get instead. Reached through
// DESTINATION_HTTP_OVERRIDES (the vendor host -> the emulator's port).
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
export function brazeEmulator(apiKey: string): Promise<Emulator> {
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
    return { status: 201, body: { message: 'success', attributes_processed: body.attributes?.length ?? 0 } };
  });
}
