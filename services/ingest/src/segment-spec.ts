// Segment's HTTP tracking API, the pure part: which path is which call, the
// limits, and turning a parsed request body into validated RawEvent records
// (or one clear 400 message naming the field and the reason). No IO, no clock:
// the receive time and the messageId generator are arguments. The records of
// engage.events.inbound go through the same functions (inbound-record.ts).
// Spec: https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/
import type { CallType, ExternalId, RawEvent } from '@engage/schemas';
import { LIMITS, nestingExceeds, nestingTooDeepMessage, type Limits } from './limits';

export { LIMITS, type Limits } from './limits';

export const CALL_TYPES: readonly CallType[] = ['identify', 'track', 'page', 'screen', 'group', 'alias'];

export type Route = CallType | 'batch';

/** Every path Segment accepts, with its one-letter alias. */
export const ROUTES: Readonly<Record<string, Route>> = {
  '/v1/identify': 'identify',
  '/v1/i': 'identify',
  '/v1/track': 'track',
  '/v1/t': 'track',
  '/v1/page': 'page',
  '/v1/p': 'page',
  '/v1/screen': 'screen',
  '/v1/s': 'screen',
  '/v1/group': 'group',
  '/v1/g': 'group',
  '/v1/alias': 'alias',
  '/v1/a': 'alias',
  '/v1/batch': 'batch',
  '/v1/b': 'batch',
  '/v1/import': 'batch',
};

/** The body size limit of a route, before parsing. */
export const bodyLimitFor = (route: Route, limits: Limits = LIMITS) => (route === 'batch' ? limits.maxBatchBytes : limits.maxEventBytes);

/** `bytes` undefined: the size is unknown beyond "more than the limit" (a body cut off while reading). */
export function eventTooLargeMessage(bytes: number | undefined, limits: Limits = LIMITS): string {
  return `event is ${bytes === undefined ? '' : `${bytes} bytes, `}over the ${limits.maxEventBytes / 1024} KB (${limits.maxEventBytes} bytes) per-event limit`;
}

export function batchTooLargeMessage(bytes: number | undefined, limits: Limits = LIMITS): string {
  return `batch is ${bytes === undefined ? '' : `${bytes} bytes, `}over the ${limits.maxBatchBytes / 1024} KB (${limits.maxBatchBytes} bytes) per-batch limit`;
}

export function tooLargeMessage(route: Route, bytes: number | undefined, limits: Limits = LIMITS): string {
  return route === 'batch' ? batchTooLargeMessage(bytes, limits) : eventTooLargeMessage(bytes, limits);
}

/** Where the request came from: the source its write key belongs to. */
export interface Envelope {
  sourceId: string;
  spaceId: string;
  /** Receive time, epoch ms: the default timestamp and `received_at`. */
  receivedAt: number;
  /** A fresh messageId for calls that carry none. */
  newMessageId: () => string;
}

export interface AcceptedEvent {
  /** The Kafka key: the sender's identity, userId else anonymousId. */
  key: string;
  record: RawEvent;
}

export type SpecResult = { ok: true; events: AcceptedEvent[] } | { ok: false; message: string };

type Json = Record<string, unknown>;

class SpecError extends Error {}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

// ISO 8601 date, or date-time with optional seconds, fraction and zone.
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

// What Date#toISOString writes, and so what every SDK sends: checked without the general parse.
const CANONICAL_UTC = /^\d{4}-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/;
const DAYS_IN_MONTH = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function validDay(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month]!) return false;
  return !(month === 2 && day === 29 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)));
}

/** Epoch ms of an ISO 8601 string; throws naming `field` otherwise. Zone-less times are UTC. */
export function parseIsoTimestamp(value: unknown, field: string): number {
  if (typeof value !== 'string') throw new SpecError(`${field} must be an ISO 8601 string, got ${typeName(value)}`);
  const fast = CANONICAL_UTC.exec(value);
  if (fast) {
    // NOTE: Date.parse rolls 2024-02-31 over to March 2: check the day against the month.
    if (validDay(Number(value.slice(0, 4)), Number(fast[1]), Number(fast[2]))) return Date.parse(value);
    throw new SpecError(`${field} is not a valid date-time: ${JSON.stringify(value)}`);
  }
  const m = ISO_8601.exec(value.trim());
  if (!m) throw new SpecError(`${field} is not an ISO 8601 date-time: ${JSON.stringify(value.slice(0, 64))}`);
  let text = value.trim().replace(' ', 'T').replace(',', '.');
  if (m[4] === undefined) text += 'T00:00:00Z';
  else if (m[7] === undefined) text += 'Z';
  else if (/^[+-]\d{4}$/.test(m[7])) text = text.slice(0, -2) + ':' + text.slice(-2);
  else if (/^[+-]\d{2}$/.test(m[7])) text += ':00';
  const ms = Date.parse(text);
  if (!Number.isFinite(ms) || !validDay(Number(m[1]), Number(m[2]), Number(m[3]))) {
    throw new SpecError(`${field} is not a valid date-time: ${JSON.stringify(value.slice(0, 64))}`);
  }
  return ms;
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** An id field: strings (numbers are stringified, as Segment's libraries do); empty counts as absent. */
function optionalId(body: Json, field: string, path: string, limits: Limits): string | null {
  const v = body[field];
  if (v === undefined || v === null) return null;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string') throw new SpecError(`${path}${field} must be a string, got ${typeName(v)}`);
  // Ids become Redis keys and Kafka keys, and identity rules' patterns run on them.
  if (v.length > limits.maxIdLength)
    throw new SpecError(`${path}${field} is ${v.length} characters, over the ${limits.maxIdLength}-character id limit`);
  return v.trim() === '' ? null : v;
}

function requiredId(body: Json, field: string, path: string, type: CallType, limits: Limits): string {
  const v = optionalId(body, field, path, limits);
  if (v === null) throw new SpecError(`${path}${field} is required for ${type} calls`);
  return v;
}

function optionalString(body: Json, field: string, path: string): string | null {
  const v = body[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new SpecError(`${path}${field} must be a string, got ${typeName(v)}`);
  return v;
}

function optionalObject(value: unknown, field: string, path: string): Json | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw new SpecError(`${path}${field} must be an object, got ${typeName(value)}`);
  return value;
}

const EXTERNAL_ID_COLLECTIONS = ['users', 'accounts'];

/** `context.externalIds: [{id, type, collection, encoding}]` (Segment's custom identifiers). */
export function parseExternalIds(value: unknown, path: string, limits: Limits = LIMITS): ExternalId[] {
  if (value === undefined || value === null) return [];
  const where = `${path}context.externalIds`;
  if (!Array.isArray(value)) throw new SpecError(`${where} must be an array, got ${typeName(value)}`);
  if (value.length > limits.maxExternalIds)
    throw new SpecError(`${where} has ${value.length} entries, over the ${limits.maxExternalIds} external ids per-event limit`);
  return value.map((x, i) => {
    const at = `${where}[${i}]`;
    if (!isObject(x)) throw new SpecError(`${at} must be an object, got ${typeName(x)}`);
    const id = optionalId(x, 'id', `${at}.`, limits);
    if (id === null) throw new SpecError(`${at}.id is required`);
    const type = optionalString(x, 'type', `${at}.`);
    if (type === null || type.trim() === '') throw new SpecError(`${at}.type is required`);
    const collection = optionalString(x, 'collection', `${at}.`);
    if (collection !== null && !EXTERNAL_ID_COLLECTIONS.includes(collection)) {
      throw new SpecError(`${at}.collection must be one of ${EXTERNAL_ID_COLLECTIONS.join(', ')}, got ${JSON.stringify(collection)}`);
    }
    const encoding = optionalString(x, 'encoding', `${at}.`);
    return { type, id, collection, encoding };
  });
}

/**
 * Event time as Segment computes it: `timestamp` when given; else a device's
 * `originalTimestamp` corrected for its clock skew by `sentAt` (both read on
 * the device's clock: receivedAt - (sentAt - originalTimestamp)); else receive time.
 */
function eventTime(body: Json, path: string, sentAt: number | null, receivedAt: number): number {
  if (body.timestamp !== undefined && body.timestamp !== null) return parseIsoTimestamp(body.timestamp, `${path}timestamp`);
  if (body.originalTimestamp !== undefined && body.originalTimestamp !== null) {
    const original = parseIsoTimestamp(body.originalTimestamp, `${path}originalTimestamp`);
    return sentAt === null ? original : receivedAt - (sentAt - original);
  }
  return receivedAt;
}

interface BatchDefaults {
  context?: Json;
  integrations?: Json;
  sentAt: number | null;
}

/**
 * Holds a traits object to the per-call limits: its key count, and (only when
 * its whole JSON, `json`, is over the per-value limit, so rarely) each value's size.
 */
function checkTraits(traits: Json, json: string, where: string, limits: Limits): void {
  let keys = 0;
  for (const k in traits) if (Object.prototype.hasOwnProperty.call(traits, k)) keys++;
  if (keys > limits.maxTraits) throw new SpecError(`${where} has ${keys} keys, over the ${limits.maxTraits} traits per-call limit`);
  if (json.length * 3 <= limits.maxTraitValueBytes || Buffer.byteLength(json) <= limits.maxTraitValueBytes) return;
  for (const [k, v] of Object.entries(traits)) {
    const bytes = v === undefined ? 0 : Buffer.byteLength(JSON.stringify(v) ?? '');
    if (bytes > limits.maxTraitValueBytes) {
      throw new SpecError(
        `${where}.${k.slice(0, 64)} is ${bytes} bytes of JSON, over the ${limits.maxTraitValueBytes / 1024} KB (${limits.maxTraitValueBytes} bytes) per-trait-value limit`,
      );
    }
  }
}

/** One call (a single-call body, or one item of a batch) to a RawEvent. */
function toEvent(type: CallType, body: Json, path: string, defaults: BatchDefaults, env: Envelope, limits: Limits): AcceptedEvent {
  const userId = optionalId(body, 'userId', path, limits);
  const anonymousId = optionalId(body, 'anonymousId', path, limits);
  const key = userId ?? anonymousId;
  if (key === null) throw new SpecError(`${path}userId or anonymousId is required`);
  const groupId = type === 'group' ? requiredId(body, 'groupId', path, type, limits) : optionalId(body, 'groupId', path, limits);
  const previousId = type === 'alias' ? requiredId(body, 'previousId', path, type, limits) : optionalId(body, 'previousId', path, limits);
  let event = optionalString(body, 'event', path);
  if (type === 'track' && (event === null || event.trim() === '')) throw new SpecError(`${path}event is required for track calls`);
  if (type !== 'track') event = null;
  const name = type === 'page' || type === 'screen' ? optionalString(body, 'name', path) : null;

  const messageId = optionalId(body, 'messageId', path, limits) ?? env.newMessageId();
  const sentAt = body.sentAt === undefined || body.sentAt === null ? defaults.sentAt : parseIsoTimestamp(body.sentAt, `${path}sentAt`);
  const timestamp = eventTime(body, path, sentAt, env.receivedAt);

  let properties = optionalObject(body.properties, 'properties', path) ?? {};
  // page/screen `category` has no column of its own: it travels in properties
  // (where Segment's libraries also put it for page calls) unless one is there.
  const category = type === 'page' || type === 'screen' ? optionalString(body, 'category', path) : null;
  if (category !== null && properties.category === undefined) properties = { ...properties, category };
  const traits = optionalObject(body.traits, 'traits', path) ?? {};
  const ownContext = optionalObject(body.context, 'context', path);
  const ownIntegrations = optionalObject(body.integrations, 'integrations', path);
  // Batch-level context and integrations apply to every item; the item's own keys win.
  const context = defaults.context ? { ...defaults.context, ...ownContext } : (ownContext ?? {});
  const integrations = defaults.integrations ? { ...defaults.integrations, ...ownIntegrations } : (ownIntegrations ?? {});
  const externalIds = parseExternalIds(context.externalIds, path, limits);
  const traitsJson = JSON.stringify(traits);
  const contextJson = JSON.stringify(context);
  checkTraits(traits, traitsJson, `${path}traits`, limits);
  if (isObject(context.traits)) checkTraits(context.traits, contextJson, `${path}context.traits`, limits);

  return {
    key,
    record: {
      message_id: messageId,
      type,
      space_id: env.spaceId,
      source_id: env.sourceId,
      user_id: userId,
      anonymous_id: anonymousId,
      group_id: groupId,
      previous_id: previousId,
      event,
      name,
      timestamp,
      sent_at: sentAt,
      received_at: env.receivedAt,
      properties_json: JSON.stringify(properties),
      traits_json: traitsJson,
      context_json: contextJson,
      integrations_json: JSON.stringify(integrations),
      external_ids: externalIds,
    },
  };
}

/**
 * The size of an event as stored: its JSON parts (batch-level context merged
 * in) and its ids. Used for batch items, measured from what toEvent already
 * serialised rather than by serialising each item again.
 */
export function storedEventBytes(r: RawEvent): number {
  let n =
    Buffer.byteLength(r.properties_json) +
    Buffer.byteLength(r.traits_json) +
    Buffer.byteLength(r.context_json) +
    Buffer.byteLength(r.integrations_json);
  for (const v of [r.message_id, r.user_id, r.anonymous_id, r.group_id, r.previous_id, r.event, r.name])
    if (v !== null) n += Buffer.byteLength(v);
  return n;
}

/**
 * Parses a JSON body (a request's, or a record's of engage.events.inbound),
 * refusing first what a recursive walk (JSON.stringify, ours or a consumer's)
 * cannot get through.
 */
export function parseJsonBody(raw: Uint8Array, limits: Limits = LIMITS): { ok: true; body: unknown } | { ok: false; message: string } {
  if (nestingExceeds(raw, limits.maxNestingDepth)) return { ok: false, message: nestingTooDeepMessage(limits) };
  try {
    return { ok: true, body: JSON.parse(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8')) };
  } catch (err) {
    return { ok: false, message: `invalid JSON body: ${(err as Error).message}` };
  }
}

/**
 * Validates and normalises one call that names its own `type`, as a batch
 * item does: a record of engage.events.inbound. `bodyBytes` is its size,
 * held to the per-event limit. The same rules as normaliseRequest.
 */
export function normaliseCall(body: unknown, bodyBytes: number, env: Envelope, limits: Limits = LIMITS): SpecResult {
  try {
    if (!isObject(body)) throw new SpecError(`body must be a JSON object, got ${typeName(body)}`);
    if (bodyBytes > limits.maxEventBytes) throw new SpecError(eventTooLargeMessage(bodyBytes, limits));
    return { ok: true, events: [toEvent(callType(body, ''), body, '', { sentAt: null }, env, limits)] };
  } catch (err) {
    if (err instanceof SpecError) return { ok: false, message: err.message };
    throw err;
  }
}

function callType(body: Json, path: string): CallType {
  const type = body.type;
  if (typeof type !== 'string' || !(CALL_TYPES as readonly string[]).includes(type)) {
    throw new SpecError(`${path}type must be one of ${CALL_TYPES.join(', ')}, got ${JSON.stringify(type ?? null)}`);
  }
  return type as CallType;
}

/**
 * Validates and normalises a parsed request body of `route`. `bodyBytes` is
 * the (decompressed) body size, already checked against bodyLimitFor(route).
 * Any invalid call rejects the whole request: nothing malformed reaches Kafka.
 */
export function normaliseRequest(route: Route, body: unknown, bodyBytes: number, env: Envelope, limits: Limits = LIMITS): SpecResult {
  try {
    if (!isObject(body)) throw new SpecError(`body must be a JSON object, got ${typeName(body)}`);
    if (route !== 'batch') {
      if (bodyBytes > limits.maxEventBytes) throw new SpecError(eventTooLargeMessage(bodyBytes, limits));
      return { ok: true, events: [toEvent(route, body, '', { sentAt: null }, env, limits)] };
    }
    if (bodyBytes > limits.maxBatchBytes) throw new SpecError(batchTooLargeMessage(bodyBytes, limits));
    const items = body.batch;
    if (!Array.isArray(items)) throw new SpecError(`batch must be an array, got ${typeName(items)}`);
    if (items.length > limits.maxBatchEvents) {
      throw new SpecError(`batch has ${items.length} events, over the ${limits.maxBatchEvents} events per-batch limit`);
    }
    const defaults: BatchDefaults = {
      context: optionalObject(body.context, 'context', ''),
      integrations: optionalObject(body.integrations, 'integrations', ''),
      sentAt: body.sentAt === undefined || body.sentAt === null ? null : parseIsoTimestamp(body.sentAt, 'sentAt'),
    };
    // A body within the per-event limit cannot hold an item over it: only measure big batches.
    const measure = bodyBytes > limits.maxEventBytes;
    const events = items.map((item, i) => {
      const path = `batch[${i}].`;
      if (!isObject(item)) throw new SpecError(`batch[${i}] must be an object, got ${typeName(item)}`);
      const event = toEvent(callType(item, path), item, path, defaults, env, limits);
      if (measure) {
        const bytes = storedEventBytes(event.record);
        if (bytes > limits.maxEventBytes) throw new SpecError(`batch[${i}]: ${eventTooLargeMessage(bytes, limits)}`);
      }
      return event;
    });
    return { ok: true, events };
  } catch (err) {
    if (err instanceof SpecError) return { ok: false, message: err.message };
    throw err;
  }
}

/**
 * The write key of a request: `Authorization: Basic base64(<writeKey>:)`
 * (the password part is ignored, as Segment does), else `writeKey` in the body.
 */
export function writeKeyFrom(authorization: string | undefined, body: unknown): string | null {
  if (authorization) {
    const m = /^Basic\s+(\S+)\s*$/i.exec(authorization);
    if (m) {
      const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const key = colon === -1 ? decoded : decoded.slice(0, colon);
      if (key !== '') return key;
    }
  }
  if (isObject(body) && typeof body.writeKey === 'string' && body.writeKey !== '') return body.writeKey;
  return null;
}
