/** An event as the evaluators see it (event time in epoch ms). */
export interface EngineEvent {
  type: 'track' | 'identify' | 'page' | 'screen' | 'group' | 'alias';
  /** track: the event name. */
  event?: string;
  /** page/screen: the page name. */
  name?: string;
  timestamp: number;
  sourceId: string;
  messageId: string;
  properties: Record<string, unknown>;
  traits: Record<string, unknown>;
  context: Record<string, unknown>;
}

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

/** Reads a dotted path ('page.url') from an object; undefined when absent. */
export function readPath(obj: Record<string, unknown>, path: string): unknown {
  if (path in obj) return obj[path];
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}
