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
