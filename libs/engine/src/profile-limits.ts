// Bounds on what one profile can hold, whatever its senders send (CONTRACT.md
// section 7). A profile's state is one Redis document and its changes are
// Kafka records: without bounds, one user id sent many large traits grew them
// past the broker's message size and halted evaluation for everyone.
//
// Documented truncation (README, "Limits"): a trait that does not fit is not
// stored (the profile keeps its earlier value of that key, if any) and is
// reported back to the caller, which counts it; the event itself still counts.

export const PROFILE_LIMITS = {
  /** Distinct trait keys per profile: new keys past it are not stored (existing keys still update). */
  traits: 500,
  /** JSON bytes of all of a profile's traits together. */
  traitsBytes: 256 * 1024,
  /** JSON bytes of one trait value (the ingest refuses larger ones per call; merges and old data can still bring them). */
  traitValueBytes: 16 * 1024,
  /** Identifiers (type, id) a profile keeps for destinations; the identity graph keeps its own per-type limits. */
  externalIds: 100,
} as const;

/** JSON size in UTF-16 code units: a cheap upper-bound proxy of bytes for ASCII-heavy JSON (the bound's purpose is order of magnitude). */
const sizeOf = (v: unknown): number => JSON.stringify(v)?.length ?? 0;

export interface TraitMerge {
  /** Keys whose stored value changed. */
  changed: string[];
  /** Keys not stored because a limit would be passed. */
  refused: string[];
}

/**
 * Sets `incoming` onto `traits` in place (later keys win as with a plain
 * assign), except values that would pass PROFILE_LIMITS. `overwrite: false`
 * keeps keys `traits` already has (a merge: the survivor's traits win).
 */
export function mergeTraits(
  traits: Record<string, unknown>,
  incoming: Record<string, unknown>,
  opts: { overwrite?: boolean; limits?: typeof PROFILE_LIMITS } = {},
): TraitMerge {
  const limits = opts.limits ?? PROFILE_LIMITS;
  const out: TraitMerge = { changed: [], refused: [] };
  const entries = Object.entries(incoming);
  if (entries.length === 0) return out;
  let count = Object.keys(traits).length;
  // One measure of the whole per call (identify and group calls only): within the bound by construction.
  let total = sizeOf(traits);
  for (const [k, v] of entries) {
    const had = Object.prototype.hasOwnProperty.call(traits, k);
    if (had && opts.overwrite === false) continue;
    const before = had ? JSON.stringify(traits[k]) : undefined;
    const after = JSON.stringify(v);
    if (before === after) continue;
    const size = (after?.length ?? 0) + k.length + 4;
    const freed = had ? (before?.length ?? 0) + k.length + 4 : 0;
    if ((after?.length ?? 0) > limits.traitValueBytes || (!had && count >= limits.traits) || total - freed + size > limits.traitsBytes) {
      out.refused.push(k);
      continue;
    }
    traits[k] = v;
    total += size - freed;
    if (!had) count++;
    out.changed.push(k);
  }
  return out;
}

/** Adds an identifier unless the profile has it or holds PROFILE_LIMITS.externalIds already; false when refused for the limit. */
export function addExternalId(ids: Array<{ type: string; id: string }>, type: string, id: string, limits = PROFILE_LIMITS): boolean {
  if (ids.some((x) => x.type === type && x.id === id)) return true;
  if (ids.length >= limits.externalIds) return false;
  ids.push({ type, id });
  return true;
}
