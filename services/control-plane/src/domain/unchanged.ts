/**
 * True when a PATCH result equals the current object but for `updatedAt`: the
 * API then writes nothing, so a repeated PATCH (or `engage apply`) produces no
 * config record and no re-evaluation anywhere.
 */
export function unchanged<T extends { updatedAt: string }>(current: T, next: T): boolean {
  const strip = (o: T) => JSON.stringify({ ...o, updatedAt: undefined });
  return strip(current) === strip(next);
}
