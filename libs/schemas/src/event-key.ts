// The identity of one accepted event, for every "have I seen this event?"
// question downstream of the ingest (the resolver's replay cache, the
// evaluator's redelivery check and history dedupe, change ids).
//
// TRICKY: a client-chosen messageId is NOT an identity. The ingest drops a
// duplicate messageId only per source and within its dedupe window
// (CONTRACT.md section 1), so two different events can carry the same
// messageId: from two sources, or from one source after the window. Keying
// on the messageId alone made the second event replay the first one's answer
// (joining two people) or be skipped as a redelivery. The key adds the source
// and the ingest's receive time, both fixed in the raw record, so a
// redelivered record keeps its key and a reused messageId does not share it.
import { hash } from 'node:crypto';

export interface EventKeyParts {
  source_id: string;
  message_id: string;
  received_at: number;
}

/** `evt_` + 27 base64url characters of sha1(source, messageId, receivedAt): short and bounded whatever the messageId's length. */
export function eventKey(e: EventKeyParts): string {
  return `evt_${hash('sha1', `${e.source_id}\u0000${e.message_id}\u0000${e.received_at}`, 'base64url')}`;
}
