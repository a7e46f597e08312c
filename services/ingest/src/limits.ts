// What one call may carry (CONTRACT.md §7, README "Ingest limits"). Going past
// any of them answers 400 with a message naming the limit; nothing is
// truncated. Per-event bounds only: what a profile accumulates across events is
// bounded where it accumulates (the evaluator). Pure, no IO.

export const LIMITS = {
  /** Segment: "each call has a limit of 32KB". */
  maxEventBytes: 32 * 1024,
  /** Segment: "the batch request is limited to 500KB". */
  maxBatchBytes: 500 * 1024,
  /** Segment: "no more than 2500 events per batch". */
  maxBatchEvents: 2500,
  /** Top-level keys of `traits`, and (counted apart) of `context.traits`, in one call. */
  maxTraits: 200,
  /** One trait value (of `traits` or `context.traits`) serialised as JSON, bytes (UTF-8). */
  maxTraitValueBytes: 8 * 1024,
  /** Entries of `context.externalIds` in one call. */
  maxExternalIds: 25,
  /** Characters of any id: userId, anonymousId, groupId, previousId, messageId, externalIds[].id. */
  maxIdLength: 512,
  /**
   * Levels of objects and arrays in a request body (the body itself is level 1).
   * NOTE: far below what JSON.stringify can recurse through (a few thousand
   * levels; past that it throws RangeError, which was a 500), and deep enough
   * for any real event: a batch item's properties start at level 4.
   */
  maxNestingDepth: 64,
} as const;

export type Limits = typeof LIMITS;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;

/**
 * Whether JSON text nests objects/arrays deeper than `max`, read from the raw
 * bytes before parsing (brackets inside strings do not count). A scan of
 * bytes: UTF-8 continuation bytes are >= 0x80 and never look like `"`, `\`,
 * or a bracket. Invalid JSON is left to JSON.parse.
 */
export function nestingExceeds(json: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const b = json[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (++depth > max) return true;
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) depth--;
  }
  return false;
}

export function nestingTooDeepMessage(limits: Limits = LIMITS): string {
  return `JSON body nests objects and arrays deeper than the ${limits.maxNestingDepth}-level nesting limit`;
}
