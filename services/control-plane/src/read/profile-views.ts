// The response bodies of Segment's Profile API (segment-docs
// src/unify/profile-api.md): traits, events, external_ids, metadata, links,
// each with Segment's cursor; and merges, which is ours (Segment's Profile API
// has no such resource), shaped the same way. Pure: the route loads the
// profile, these shape it.
import type { EngineEvent } from '@engage/engine';
import type { ProfileMetadata } from '@engage/profile-store';

export interface Cursor {
  url: string;
  has_more: boolean;
  next: string;
  limit: number;
}

export class ProfileApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: 'validation_error' | 'invalid_request_error' | 'authentication_error' | 'rate_limit_error' | 'not_found',
    message: string,
  ) {
    super(message);
  }
  body() {
    return { error: { code: this.code, message: this.message } };
  }
}

/** `limit` within [1, max], `fallback` when absent. */
export function parseLimit(raw: unknown, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new ProfileApiError(
      400,
      'validation_error',
      `The parameter \`limit\` must be an integer between 1 and ${max}; got '${String(raw)}'`,
    );
  return n;
}

export const csvParam = (raw: unknown): string[] | null =>
  typeof raw === 'string' && raw.trim() !== ''
    ? raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : null;

function cursor(url: string, limit: number, next: string | null): Cursor {
  return next === null
    ? { url: '', has_more: false, next: '', limit }
    : { url: `${url}${url.includes('?') ? '&' : '?'}next=${encodeURIComponent(next)}`, has_more: true, next, limit };
}

export interface TraitSources {
  /** Custom traits from identify (and group) calls. */
  custom: Record<string, unknown>;
  /** Audience memberships and computed-trait values by key. */
  audiences: Record<string, unknown>;
  computedTraits: Record<string, unknown>;
}

/**
 * GET .../traits: every trait of the profile, keys sorted; `next` is the key
 * the next page starts at (as Segment's cursor is).
 */
export function traitsView(
  sources: TraitSources,
  opts: { include: string[] | null; class: string | undefined; limit: number; next: string | undefined; verbose: boolean; url: string },
): { traits: Record<string, unknown>; cursor: Cursor } {
  let all: Record<string, unknown>;
  if (opts.class === undefined) all = { ...sources.custom, ...sources.computedTraits, ...sources.audiences };
  else if (opts.class === 'audience') all = sources.audiences;
  else if (opts.class === 'computed_trait') all = sources.computedTraits;
  else
    throw new ProfileApiError(400, 'validation_error', `The parameter \`class\` must be audience or computed_trait; got '${opts.class}'`);
  let keys = Object.keys(all).sort();
  if (opts.include) keys = keys.filter((k) => opts.include!.includes(k));
  if (opts.next) keys = keys.filter((k) => k >= opts.next!);
  const page = keys.slice(0, opts.limit);
  const traits: Record<string, unknown> = {};
  // NOTE: we keep no per-trait provenance, so verbose answers null source_id / updated_at rather than invent them.
  for (const k of page) traits[k] = opts.verbose ? { value: all[k], source_id: null, updated_at: null } : all[k];
  return { traits, cursor: cursor(opts.url, opts.limit, keys.length > opts.limit ? keys[opts.limit]! : null) };
}

export interface ExternalIdView {
  source_id: string | null;
  collection: 'users' | 'accounts';
  id: string;
  type: string;
  created_at: string | null;
  encoding: 'none';
}

export function externalIdsView(
  ids: Array<{ type: string; id: string }>,
  opts: { collection: 'users' | 'accounts'; include: string[] | null; limit: number; next: string | undefined; url: string },
): { data: ExternalIdView[]; cursor: Cursor } {
  const sorted = ids
    .filter((x) => !opts.include || opts.include.includes(x.type))
    .sort((a, b) => (a.type === b.type ? (a.id < b.id ? -1 : 1) : a.type < b.type ? -1 : 1));
  const start = offsetCursor(opts.next);
  const page = sorted.slice(start, start + opts.limit);
  return {
    data: page.map((x) => ({ source_id: null, collection: opts.collection, id: x.id, type: x.type, created_at: null, encoding: 'none' })),
    cursor: cursor(opts.url, opts.limit, start + opts.limit < sorted.length ? String(start + opts.limit) : null),
  };
}

function offsetCursor(next: string | undefined): number {
  if (next === undefined || next === '') return 0;
  if (!/^\d+$/.test(next))
    throw new ProfileApiError(400, 'validation_error', `The parameter \`next\` is not a cursor this endpoint returned: '${next}'`);
  return Number(next);
}

function isoDate(raw: unknown, name: string): number | null {
  if (raw === undefined) return null;
  const t = typeof raw === 'string' ? Date.parse(raw) : NaN;
  if (Number.isNaN(t))
    throw new ProfileApiError(400, 'validation_error', `The parameter \`${name}\` must be an ISO 8601 date; got '${String(raw)}'`);
  return t;
}

const eventKey = (e: EngineEvent) =>
  e.type === 'track' ? e.event : e.type === 'page' ? 'Page Viewed' : e.type === 'screen' ? 'Screen Viewed' : e.type;

/** Events cursor: "<timestamp>:<messageId>" of the next event, base64url. */
const encodeEventCursor = (e: EngineEvent) => Buffer.from(`${e.timestamp}:${e.messageId}`).toString('base64url');
function decodeEventCursor(next: string): { timestamp: number; messageId: string } {
  const text = Buffer.from(next, 'base64url').toString('utf8');
  const i = text.indexOf(':');
  const timestamp = Number(text.slice(0, i));
  if (i < 1 || !Number.isFinite(timestamp))
    throw new ProfileApiError(400, 'validation_error', `The parameter \`next\` is not a cursor this endpoint returned: '${next}'`);
  return { timestamp, messageId: text.slice(i + 1) };
}

/**
 * GET .../events: the profile's recent events (the bounded history the
 * evaluator keeps), newest first unless sort=asc.
 */
export function eventsView(
  events: EngineEvent[],
  ctx: { collection: 'users' | 'accounts'; profileId: string; externalIds: Array<{ type: string; id: string }> },
  q: {
    start?: unknown;
    end?: unknown;
    include: string[] | null;
    exclude: string[] | null;
    sort?: unknown;
    limit: number;
    next?: string;
    url: string;
  },
): { data: unknown[]; cursor: Cursor } {
  const start = isoDate(q.start, 'start');
  const end = isoDate(q.end, 'end');
  const sort = q.sort ?? 'desc';
  if (sort !== 'asc' && sort !== 'desc')
    throw new ProfileApiError(400, 'validation_error', `The parameter \`sort\` must be asc or desc; got '${String(sort)}'`);
  const order = (a: EngineEvent, b: EngineEvent) =>
    a.timestamp - b.timestamp || (a.messageId < b.messageId ? -1 : a.messageId > b.messageId ? 1 : 0);
  let list = events
    .filter((e) => (start === null || e.timestamp > start) && (end === null || e.timestamp < end))
    .filter((e) => (!q.include || q.include.includes(eventKey(e) ?? '')) && (!q.exclude || !q.exclude.includes(eventKey(e) ?? '')))
    .sort((a, b) => (sort === 'asc' ? order(a, b) : order(b, a)));
  if (q.next) {
    const from = decodeEventCursor(q.next);
    const at = list.findIndex((e) => e.timestamp === from.timestamp && e.messageId === from.messageId);
    list = at >= 0 ? list.slice(at) : [];
  }
  const page = list.slice(0, q.limit);
  const externalIds = ctx.externalIds.map((x) => ({ collection: ctx.collection, type: x.type, id: x.id, encoding: 'none' }));
  return {
    data: page.map((e) => ({
      external_ids: externalIds,
      context: e.context,
      type: e.type,
      message_id: e.messageId,
      source_id: e.sourceId,
      timestamp: new Date(e.timestamp).toISOString(),
      properties: e.properties,
      ...(e.type === 'identify' || e.type === 'group' ? { traits: e.traits } : {}),
      ...(e.type === 'track' ? { event: e.event } : e.name !== undefined ? { name: e.name } : {}),
      related: { [ctx.collection]: ctx.profileId },
    })),
    cursor: cursor(q.url, q.limit, list.length > q.limit ? encodeEventCursor(list[q.limit]!) : null),
  };
}

export function metadataView(meta: ProfileMetadata | undefined): { metadata: Record<string, string | null> } {
  const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
  return {
    metadata: {
      created_at: iso(meta?.createdAt),
      updated_at: iso(meta?.updatedAt),
      expires_at: null,
      first_message_id: meta?.firstMessageId ?? null,
      first_source_id: meta?.firstSourceId ?? null,
      last_message_id: meta?.lastMessageId ?? null,
      last_source_id: meta?.lastSourceId ?? null,
    },
  };
}

export function linksView(
  linked: Array<{ profileId: string; ids: Array<{ type: string; id: string }> }>,
  opts: { to: 'users' | 'accounts'; limit: number },
): { data: Array<{ to_collection: string; external_ids: ExternalIdView[] }> } {
  return {
    data: linked.slice(0, opts.limit).map((l) => ({
      to_collection: opts.to,
      external_ids: l.ids.map((x) => ({
        source_id: null,
        collection: opts.to,
        id: x.id,
        type: x.type,
        created_at: null,
        encoding: 'none' as const,
      })),
    })),
  };
}

export interface MergeView {
  /** The merged profile's id; `segment_id:<it>` still finds the survivor. */
  segment_id: string;
  /** Event time of the event that merged it. */
  merged_at: string;
  /** The key of that event (source, messageId, receive time), null when not recorded. */
  event_key: string | null;
}

/** The offset cursor of GET .../merges (the log is read a page at a time from the graph). */
export const mergesOffset = (next: string | undefined): number => offsetCursor(next);

/**
 * GET .../merges (ours, not Segment's): the profiles merged into this one,
 * newest first, the whole chain; `page` is the graph's answer from `offset`.
 */
export function mergesView(
  page: { total: number; merges: Array<{ profileId: string; at: number; eventKey: string | null }> },
  opts: { offset: number; limit: number; url: string },
): { data: MergeView[]; cursor: Cursor } {
  const end = opts.offset + page.merges.length;
  return {
    data: page.merges.map((m) => ({ segment_id: m.profileId, merged_at: new Date(m.at).toISOString(), event_key: m.eventKey })),
    cursor: cursor(opts.url, opts.limit, end < page.total ? String(end) : null),
  };
}
