/** An event as the evaluators see it (event time in epoch ms). */
export interface EngineEvent {
  type: 'track' | 'identify' | 'page' | 'screen' | 'group' | 'alias';
  /** track: the event name. */
  event?: string;
  /** page/screen: the page name. */
  name?: string;
  timestamp: number;
  sourceId: string;
  /** The sender's messageId: shown to readers and used to break time ties; not unique (a sender may reuse it). */
  messageId: string;
  /**
   * The event's identity (eventKey in @engage/schemas: source, messageId and
   * receive time), what redelivery checks compare. Absent on events stored
   * before it existed: eventIdOf() falls back to the messageId.
   */
  eventId?: string;
  properties: Record<string, unknown>;
  traits: Record<string, unknown>;
  context: Record<string, unknown>;
}

/** What tells two events apart: the pipeline's event key, else (older stored events) the messageId. */
export const eventIdOf = (e: Pick<EngineEvent, 'eventId' | 'messageId'>): string => e.eventId ?? e.messageId;

export type Value = null | boolean | number | string | Value[];

/**
 * Which events `event('<name>')` reads: track calls by event name; page and
 * screen calls answer to 'Page Viewed' / 'Screen Viewed' (Segment's names for
 * them in Engage), so page views can drive audiences too.
 */
export function eventNameOf(e: EngineEvent): string | undefined {
  if (e.type === 'track') return e.event;
  if (e.type === 'page') return 'Page Viewed';
  if (e.type === 'screen') return 'Screen Viewed';
  return undefined;
}

/**
 * Reads a dotted path ('page.url') from an object; undefined when absent. A
 * literal key containing dots wins over the path. `$` maps the rest of the
 * path over an array ('products.$.sku' -> every product's sku), the array
 * operator the reference's mode() note refers to.
 */
export function readPath(obj: Record<string, unknown>, path: string): unknown {
  if (path in obj) return obj[path];
  return readParts(obj, path.split('.'), 0);
}

function readParts(cur: unknown, parts: string[], from: number): unknown {
  for (let i = from; i < parts.length; i++) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (parts[i] === '$' && Array.isArray(cur)) {
      const out: unknown[] = [];
      for (const item of cur) {
        const v = readParts(item, parts, i + 1);
        if (Array.isArray(v) && parts.indexOf('$', i + 1) >= 0) out.push(...v);
        else if (v !== undefined) out.push(v);
      }
      return out;
    }
    cur = (cur as Record<string, unknown>)[parts[i]!];
  }
  return cur;
}

/**
 * The order of events with the same timestamp: a 57-bit digest of the
 * messageId, as 13 characters ('~' + fixed-width base 32 in ascending ASCII,
 * so string order is digest order). The incremental evaluator stores this
 * instead of the messageId (UUIDs are 36 characters) and both evaluators order
 * ties by it, then by the messageId itself; two messageIds with the same
 * digest (probability 2^-57 per tie) are the only case where they may differ.
 * Idempotent: the key of a key is itself.
 */
export function tieKey(messageId: string): string {
  if (messageId.length === 13 && messageId.charCodeAt(0) === 126 /* ~ */) return messageId;
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < messageId.length; i++) {
    const c = messageId.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
  }
  // 25 bits of h1 then 32 of h2, 5 bits per character (toString(36) of a double is ~10x slower).
  let key = '~';
  for (let shift = 20; shift >= 0; shift -= 5) key += B32[(h1 >>> shift) & 31];
  for (let shift = 30; shift >= 0; shift -= 5) key += B32[(h2 >>> shift) & 31];
  return key;
}

const B32 = '0123456789abcdefghijklmnopqrstuv';
