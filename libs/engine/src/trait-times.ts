// Traits by event time, not by processing order.
//
// A person's identify calls do not always reach the evaluator in the order
// they were made: a login spreads one person over two partitions (the ingest
// keys by userId, else anonymousId), and an event resolved to a profile that
// a merge then folded into another is applied to the survivor after the
// survivor's own later events. Each trait remembers the event time of the
// call that set it (ProfileState.traitTimes), and an older call does not
// overwrite it. A trait stored before times were kept has none: any call
// sets it (as before).

/** The traits of a call made at `at` that no newer call has set (the same object when that is all of them). */
export function newerTraits(
  incoming: Record<string, unknown>,
  times: Record<string, number> | undefined,
  at: number,
): Record<string, unknown> {
  if (times === undefined) return incoming;
  let kept: Record<string, unknown> | null = null;
  for (const key in incoming) {
    const t = times[key];
    if (t !== undefined && t > at) {
      kept ??= { ...incoming };
      delete kept[key];
    }
  }
  return kept ?? incoming;
}

/** Records `at` as the time of every key of `applied` that was stored (`refused` keys were not). */
export function noteTraitTimes(
  state: { traitTimes?: Record<string, number> },
  applied: Record<string, unknown>,
  refused: string[],
  at: number,
): void {
  const skip = refused.length > 0 ? new Set(refused) : null;
  for (const key in applied) {
    if (skip?.has(key)) continue;
    const times = (state.traitTimes ??= {});
    const t = times[key];
    if (t === undefined || t < at) times[key] = at;
  }
}

/** After a merge took `keys` from the merged profile's traits: their times come along. */
export function takeTraitTimes(
  survivor: { traitTimes?: Record<string, number> },
  merged: { traitTimes?: Record<string, number> },
  keys: string[],
): void {
  for (const key of keys) {
    const t = merged.traitTimes?.[key];
    if (t !== undefined) (survivor.traitTimes ??= {})[key] = t;
  }
}
