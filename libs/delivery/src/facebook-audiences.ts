// Facebook Custom Audiences (Marketing API, customer list audiences): the
// pure half of the adapter. Identifiers are normalised and SHA-256 hashed
// (mobile advertiser ids are sent as they are), at most 10,000 per request;
// add = POST /{audience_id}/users, remove = DELETE /{audience_id}/users, both
// with {payload: {schema, data}}. Throttling comes back as HTTP 400 with
// error codes (4, 17, 32, 613, 80003), so the status alone is not enough.
import { classifyResponse, parseRetryAfter, type DeliveryVerdict } from './retry-policy';
import { normaliseIdentifier, sha256Hex, type BatchOutcome, type ExternalId, type NormalisedId } from './list-destination';

export const FACEBOOK_BATCH_LIMIT = 10_000;
export const FACEBOOK_API_BASE = 'https://graph.facebook.com/v19.0';

/** Our identifier type -> Facebook's single-key schema. */
export const FACEBOOK_SCHEMAS: Record<string, { schema: string; hashed: boolean }> = {
  email: { schema: 'EMAIL_SHA256', hashed: true },
  phone: { schema: 'PHONE_SHA256', hashed: true },
  'ios.idfa': { schema: 'MOBILE_ADVERTISER_ID', hashed: false },
  'android.idfa': { schema: 'MOBILE_ADVERTISER_ID', hashed: false },
};

/** Error codes Facebook uses for rate limiting and transient failures: retried like a 429. */
export const FACEBOOK_RETRY_CODES = new Set([1, 2, 4, 17, 32, 341, 613, 80003, 80004]);

export function facebookNormalise(id: ExternalId): NormalisedId {
  const schema = FACEBOOK_SCHEMAS[id.type];
  if (!schema)
    return {
      ok: false,
      type: id.type,
      reason: `identifier type ${id.type} is not matched by Facebook Custom Audiences (${Object.keys(FACEBOOK_SCHEMAS).join(', ')})`,
    };
  const n = normaliseIdentifier(id.type, id.id);
  if (!n.ok) return { ok: false, type: id.type, reason: n.reason };
  return { ok: true, type: id.type, value: schema.hashed ? sha256Hex(n.value) : n.value };
}

/** One request body per schema: {payload: {schema, data}}, with the index of each datum in `items`. */
export function facebookPayloads(
  items: NormalisedId[],
): Array<{ body: { payload: { schema: string; data: string[] } }; indexes: number[] }> {
  const bySchema = new Map<string, { data: string[]; indexes: number[] }>();
  items.forEach((item, index) => {
    if (!item.ok) return;
    const schema = FACEBOOK_SCHEMAS[item.type]!.schema;
    const group = bySchema.get(schema) ?? { data: [], indexes: [] };
    group.data.push(item.value);
    group.indexes.push(index);
    bySchema.set(schema, group);
  });
  return [...bySchema].map(([schema, g]) => ({ body: { payload: { schema, data: g.data } }, indexes: g.indexes }));
}

interface FacebookError {
  error?: { message?: string; code?: number; error_subcode?: number; is_transient?: boolean };
}

export function classifyFacebookResponse(status: number, body: unknown, retryAfter: string | null, now: number): DeliveryVerdict {
  const error = (body as FacebookError | null)?.error;
  const detail = error ? ` (#${error.code}) ${error.message ?? ''}`.trimEnd() : '';
  if (status >= 400 && error && (FACEBOOK_RETRY_CODES.has(error.code ?? -1) || error.is_transient === true)) {
    return { kind: 'retry', reason: `HTTP ${status}${detail}`, retryAfterMs: parseRetryAfter(retryAfter, now) };
  }
  const verdict = classifyResponse(status, retryAfter, now);
  return verdict.kind === 'delivered' ? verdict : { ...verdict, reason: `${verdict.reason}${detail}` };
}

/** Per-item failures from Facebook's answer: invalid_entry_samples maps a sent value to why it was refused. */
export function facebookOutcome(body: unknown, data: string[], indexes: number[]): BatchOutcome {
  const samples = ((body as { invalid_entry_samples?: Record<string, string> } | null)?.invalid_entry_samples ?? {}) as Record<
    string,
    string
  >;
  const failed: BatchOutcome['failed'] = [];
  data.forEach((value, i) => {
    if (samples[value] !== undefined) failed.push({ index: indexes[i]!, reason: `Facebook refused the entry: ${samples[value]}` });
  });
  return { failed };
}
