// Identity rules of a space, modelled on Segment's identity resolution
// (segment-docs src/unify/identity-resolution/): identifier priority, a limit
// per identifier type, blocked values.

export interface IdentityRules {
  /** Identifier types from highest to lowest priority; types not listed come after, in the event's order. */
  priority: string[];
  /** Most values of a type one profile may hold; `defaultLimit` for types not listed. */
  limits: Record<string, number>;
  defaultLimit: number;
  /** Values never used to identify anyone (compared case-insensitively after trimming). */
  blockedValues: string[];
  /** Regular expressions (source text) of blocked values. */
  blockedPatterns: string[];
  /** Most profiles one profile may absorb through merges. */
  maxMergesPerProfile: number;
}

/**
 * Segment's defaults: user_id is unique per profile (limit 1, "ever"), every
 * other type 5; the usual placeholder values are blocked.
 * NOTE: Segment's limits can also carry a time window ("5 per year"); ours are
 * "ever": a window needs per-value timestamps and is not implemented yet.
 */
export const DEFAULT_IDENTITY_RULES: IdentityRules = {
  priority: ['user_id', 'email', 'phone', 'ios.id', 'android.id', 'advertisingId', 'anonymous_id'],
  limits: { user_id: 1 },
  defaultLimit: 5,
  blockedValues: ['', 'null', 'undefined', 'nil', 'none', 'n/a', 'na', 'anonymous', 'unknown', '0', '-1', '00000000-0000-0000-0000-000000000000', 'test@test.com', '[]', '{}'],
  blockedPatterns: [],
  maxMergesPerProfile: 100,
};

export function limitOf(rules: IdentityRules, type: string): number {
  return rules.limits[type] ?? rules.defaultLimit;
}

/** Compiles the blocked-value test once per rules object. */
export function blockedValueTest(rules: IdentityRules): (value: string) => boolean {
  const exact = new Set(rules.blockedValues.map((v) => v.trim().toLowerCase()));
  const patterns = rules.blockedPatterns.map((p) => new RegExp(p, 'i'));
  return (value) => {
    const v = value.trim().toLowerCase();
    return exact.has(v) || patterns.some((p) => p.test(value));
  };
}
