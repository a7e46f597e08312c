// Identity rules of a space, modelled on Segment's identity resolution
// (segment-docs src/unify/identity-resolution/identity-resolution-onboarding.md):
// identifier priority, a value limit per identifier type over a time window,
// blocked values (exact and regex), plus a merge cap per profile.
import { MAX_ID_LENGTH } from './external-ids';
import { unsafePatternReason } from './pattern-safety';

/** Segment's limit frequencies ("5 weekly", "1 ever"). */
export type LimitWindow = 'ever' | 'daily' | 'weekly' | 'monthly' | 'annually';

export const WINDOW_MS: Record<LimitWindow, number> = {
  ever: 0,
  daily: 24 * 3600 * 1000,
  weekly: 7 * 24 * 3600 * 1000,
  monthly: 30 * 24 * 3600 * 1000,
  annually: 365 * 24 * 3600 * 1000,
};

export interface IdentifierLimit {
  /** Most values of the type one profile may hold within the window. */
  limit: number;
  /** Values last seen before (event time - window) no longer count; 'ever' counts them all. */
  window: LimitWindow;
}

/** A custom identifier read from a trait or property key (Segment's "Trait / Property key to match on"). */
export interface CustomIdentifier {
  type: string;
  /** Looked up in traits, context.traits and properties, camelCase and snake_case alike. */
  key: string;
}

export interface IdentityRules {
  /** Identifier types from highest to lowest priority; types not listed follow, alphabetically (as Segment orders them). */
  priority: string[];
  /** Limit per identifier type; `defaultLimit` for types not listed. */
  limits: Record<string, IdentifierLimit>;
  defaultLimit: IdentifierLimit;
  /** Values never used to identify anyone (compared case-insensitively after trimming), for every type. */
  blockedValues: string[];
  /** Regular expressions (source text, case-insensitive) of blocked values, for every type. */
  blockedPatterns: string[];
  /** Most profiles one profile may absorb through merges. */
  maxMergesPerProfile: number;
  customIdentifiers: CustomIdentifier[];
}

/**
 * Segment's defaults: user_id then email first, user_id unique per profile
 * (1 ever), every other type 5; Segment's suggested blocked values (zeroes and
 * dashes, -1, null, anonymous) plus other placeholders seen in the wild.
 */
export const DEFAULT_IDENTITY_RULES: IdentityRules = {
  priority: ['user_id', 'email'],
  limits: { user_id: { limit: 1, window: 'ever' } },
  defaultLimit: { limit: 5, window: 'ever' },
  blockedValues: [
    'null',
    'anonymous',
    '-1',
    'undefined',
    'nil',
    'none',
    'n/a',
    'na',
    'unknown',
    'test@test.com',
    '[]',
    '{}',
    '[object object]',
  ],
  blockedPatterns: ['^[0-]*$'],
  maxMergesPerProfile: 100,
  customIdentifiers: [],
};

/** Rules prepared once per configuration version: the hot path never re-parses them. */
export interface CompiledIdentityRules {
  rules: IdentityRules;
  isBlocked(value: string): boolean;
  /** Blocked patterns left out because they do not compile or could backtrack for ever (see pattern-safety.ts). */
  ignoredPatterns: IgnoredPattern[];
  /** Orders identifier types by priority: negative when `a` ranks above `b`. */
  compare(a: string, b: string): number;
  limitOf(type: string): IdentifierLimit;
  /** What the Redis script needs, as JSON (sent once per space per chunk). */
  scriptJson: string;
}

/** A space's rules object as stored in config, over Segment's defaults. Missing fields keep their defaults. */
export function withDefaults(partial: Partial<IdentityRules> | undefined | null): IdentityRules {
  return { ...DEFAULT_IDENTITY_RULES, ...(partial ?? {}) };
}

export function limitOf(rules: IdentityRules, type: string): IdentifierLimit {
  return rules.limits[type] ?? rules.defaultLimit;
}

export interface IgnoredPattern {
  pattern: string;
  reason: string;
}

/** Why a blocked-value pattern cannot be used (it does not compile, or could backtrack for ever), or null. */
export function blockedPatternProblem(pattern: string): string | null {
  try {
    new RegExp(pattern, 'i');
  } catch (err) {
    return `invalid regular expression: ${(err as Error).message}`;
  }
  return unsafePatternReason(pattern);
}

/**
 * Compiles the blocked-value test once per rules object. Patterns that fail
 * blockedPatternProblem are left out (reported in `ignored`): the control
 * plane refuses them, but a record written before that check must not freeze
 * the resolver.
 */
export function blockedValueTest(rules: IdentityRules, ignored: IgnoredPattern[] = []): (value: string) => boolean {
  const exact = new Set(rules.blockedValues.map((v) => v.trim().toLowerCase()));
  const patterns: RegExp[] = [];
  for (const pattern of rules.blockedPatterns) {
    const reason = blockedPatternProblem(pattern);
    if (reason === null) patterns.push(new RegExp(pattern, 'i'));
    else ignored.push({ pattern, reason });
  }
  return (value) => {
    // NOTE: the bound on what a pattern runs on. Longer values are never ids
    // (extractIdentifiers drops them before asking), so "blocked" is the safe answer.
    if (value.length > MAX_ID_LENGTH) return true;
    const v = value.trim().toLowerCase();
    return exact.has(v) || patterns.some((p) => p.test(v));
  };
}

/**
 * Identifiers one profile holds at most (CONTRACT.md section 7), whatever the
 * per-type limits: types are the sender's to invent, so per-type limits alone
 * do not bound a profile. A new id past it is dropped (reported in `dropped`,
 * the event still lands on the profile); a merge moves every id of the merged
 * profile (merges are bounded by maxMergesPerProfile).
 */
export const MAX_IDS_PER_PROFILE = 100;

export function compileRules(rules: IdentityRules): CompiledIdentityRules {
  const explicit = new Map(rules.priority.map((t, i) => [t, i]));
  const rank = (type: string) => explicit.get(type) ?? rules.priority.length;
  const limits: Record<string, [number, number]> = {};
  for (const [t, l] of Object.entries(rules.limits)) limits[t] = [l.limit, WINDOW_MS[l.window]];
  const ignoredPatterns: IgnoredPattern[] = [];
  return {
    rules,
    isBlocked: blockedValueTest(rules, ignoredPatterns),
    ignoredPatterns,
    // Unlisted types rank after every listed one, alphabetically (Segment's order).
    compare: (a, b) => rank(a) - rank(b) || (a === b ? 0 : a < b ? -1 : 1),
    limitOf: (type) => limitOf(rules, type),
    scriptJson: JSON.stringify({
      limits,
      default: [rules.defaultLimit.limit, WINDOW_MS[rules.defaultLimit.window]],
      maxMerges: rules.maxMergesPerProfile,
      maxIds: MAX_IDS_PER_PROFILE,
    }),
  };
}

export const DEFAULT_COMPILED_RULES = compileRules(DEFAULT_IDENTITY_RULES);
