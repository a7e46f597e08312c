// Which source a write key belongs to, and whether it may send: the same
// answer for an HTTP request (401) and a record of engage.events.inbound
// (dead-lettered). Pure: the lookup is an argument.

/** The source fields the ingest needs. */
export interface IngestSource {
  id: string;
  spaceId: string;
  enabled: boolean;
  rateLimit?: { requestsPerSecond: number; burst?: number };
}

export interface SourceLookup {
  sourceByWriteKey(writeKey: string): IngestSource | undefined;
}

export type AuthResult = { ok: true; source: IngestSource } | { ok: false; failure: 'missing' | 'unknown' | 'disabled'; message: string };

/** `missing`: the message for no key at all, which says where this channel expects it. */
export function authenticateSource(writeKey: string | null, sources: SourceLookup, missing: string): AuthResult {
  if (writeKey === null) return { ok: false, failure: 'missing', message: missing };
  const source = sources.sourceByWriteKey(writeKey);
  if (!source) return { ok: false, failure: 'unknown', message: 'invalid write key' };
  // Only an explicit false disables: records written without the field stay live.
  if (source.enabled === false) return { ok: false, failure: 'disabled', message: `source ${source.id} is disabled` };
  return { ok: true, source };
}
