// The engine's view of a resolved event: one mapping for every path that
// evaluates engage.events.resolved (the realtime evaluator, the backfill's replay).
import type { EngineEvent } from '@engage/engine';
import { eventKey, type ResolvedEvent } from '@engage/schemas';

/** `eventId`: the event's key when the caller has it already (eventKey is a hash: computed once per event). */
export function toEngineEvent(e: ResolvedEvent, eventId: string = eventKey(e)): EngineEvent & { arrivedAt: number } {
  return {
    type: e.type,
    event: e.event ?? undefined,
    name: e.name ?? undefined,
    timestamp: e.timestamp,
    arrivedAt: e.resolved_at,
    sourceId: e.source_id,
    messageId: e.message_id,
    eventId,
    properties: JSON.parse(e.properties_json),
    traits: JSON.parse(e.traits_json),
    context: JSON.parse(e.context_json),
  };
}
