// A record of engage.events.inbound (README "Producing to Kafka directly") to
// a validated RawEvent, or the reason it goes to the dead-letter topic. The
// same functions as an HTTP request (segment-spec.ts, source-auth.ts): the
// same limits, messages and normalisation. Pure: the record (its broker
// timestamp is the receive time) and the source lookup are arguments.
import { createHash } from 'node:crypto';
import type { IHeaders } from '@engage/kafka';
import { LIMITS, type Limits } from './limits';
import { authenticateSource, type IngestSource, type SourceLookup } from './source-auth';
import { eventTooLargeMessage, normaliseCall, parseJsonBody, type AcceptedEvent } from './segment-spec';

/** The record header that carries the source's write key (the value, as is: no Basic, no base64). */
export const WRITE_KEY_HEADER = 'engage-write-key';

export interface InboundRecord {
  topic: string;
  partition: number;
  offset: string;
  /** The broker's append time (the topic is LogAppendTime), epoch ms: the event's received_at. */
  timestamp: number;
  value: Buffer | null;
  headers: IHeaders | undefined;
}

export type InboundResult =
  | { ok: true; event: AcceptedEvent; source: IngestSource }
  | { ok: false; reason: string; /** The write key matched no source (yet): worth looking up again. */ unknownWriteKey?: boolean };

const MISSING_WRITE_KEY = `missing write key: set the ${WRITE_KEY_HEADER} record header to the source's write key`;

export function inboundToEvent(record: InboundRecord, sources: SourceLookup, limits: Limits = LIMITS): InboundResult {
  const value = record.value;
  if (value === null || value.length === 0) return { ok: false, reason: 'empty record value: send one Segment call as JSON' };
  // The Confluent wire format starts with a zero byte; JSON never does.
  if (value[0] === 0) return { ok: false, reason: 'an Avro record (magic byte 0): engage.events.inbound takes Segment calls as JSON text' };
  // Before parsing: the same per-event limit as a single call over HTTP.
  if (value.length > limits.maxEventBytes) return { ok: false, reason: eventTooLargeMessage(value.length, limits) };

  const writeKey = writeKeyHeader(record.headers);
  if (typeof writeKey === 'object' && writeKey !== null) return { ok: false, reason: writeKey.error };
  const auth = authenticateSource(writeKey, sources, MISSING_WRITE_KEY);
  if (!auth.ok) {
    return auth.failure === 'unknown' ? { ok: false, reason: auth.message, unknownWriteKey: true } : { ok: false, reason: auth.message };
  }

  const parsed = parseJsonBody(value, limits);
  if (!parsed.ok) return { ok: false, reason: parsed.message };
  const result = normaliseCall(
    parsed.body,
    value.length,
    {
      sourceId: auth.source.id,
      spaceId: auth.source.spaceId,
      receivedAt: record.timestamp,
      newMessageId: () => recordMessageId(record),
    },
    limits,
  );
  if (!result.ok) return { ok: false, reason: result.message };
  return { ok: true, event: result.events[0]!, source: auth.source };
}

/** The header's value; null when absent; an error when it is there several times with different values. */
function writeKeyHeader(headers: IHeaders | undefined): string | null | { error: string } {
  const raw = headers?.[WRITE_KEY_HEADER];
  if (raw === undefined) return null;
  const values = [...new Set((Array.isArray(raw) ? raw : [raw]).map((v) => v.toString()))];
  if (values.length > 1) return { error: `${values.length} different ${WRITE_KEY_HEADER} headers: send one` };
  return values[0] === '' ? null : values[0]!;
}

/**
 * The messageId of a call that carries none: derived from the record's place
 * in the log, so a redelivered record is the same event (deduped) rather than
 * a new one, as a generated id would make it.
 */
export function recordMessageId(record: Pick<InboundRecord, 'topic' | 'partition' | 'offset' | 'timestamp'>): string {
  const h = createHash('sha256')
    .update(`${record.topic}\u0000${record.partition}\u0000${record.offset}\u0000${record.timestamp}`)
    .digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
