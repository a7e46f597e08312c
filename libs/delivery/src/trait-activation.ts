// Trait Activation (Segment's src/engage/trait-activation/): per connection,
// Trait Enrichment (profile traits added to the calls' traits) and ID Sync
// (which identifiers are sent, and which of several of one type). One zod
// schema for the settings, shared by the control plane's connection settings
// and the journey send step's destination settings; the pure parts the
// dispatcher applies. Without either setting ("Default Setup") nothing here
// changes what is sent.
import { z } from 'zod';
import type { ConnectionSettings, IdSyncEntry } from '@engage/config-store';

/** `all`: at most this many identifiers of the type per profile (also the default). */
export const ID_SYNC_ALL_LIMIT_MAX = 10;
/** Segment allows no more than three identifiers using the ALL strategy per destination. */
export const ID_SYNC_MAX_ALL_ENTRIES = 3;
export const TRAIT_ENRICHMENT_MAX_TRAITS = 50;

const traitKey = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');

const idSyncEntry = z
  .object({
    type: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'must be an identifier type such as email or phone'),
    strategy: z.enum(['last', 'first', 'all']),
    limit: z.number().int().min(1).max(ID_SYNC_ALL_LIMIT_MAX).optional(),
  })
  .strict()
  .superRefine((e, ctx) => {
    if (e.limit !== undefined && e.strategy !== 'all')
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['limit'], message: `only with strategy "all" (got "${e.strategy}")` });
  });

/**
 * The Trait Activation fields of a connection's settings, as a zod shape to
 * spread into a settings object schema (`z.object({ ...traitActivationFields })`).
 * traitEnrichment: computed trait keys of the space or custom trait names
 * (any name: custom traits are free-form, so only the syntax is checked).
 */
export const traitActivationFields = {
  traitEnrichment: z
    .array(traitKey)
    .max(TRAIT_ENRICHMENT_MAX_TRAITS, `must name at most ${TRAIT_ENRICHMENT_MAX_TRAITS} traits`)
    .refine((keys) => new Set(keys).size === keys.length, 'must not name a trait twice')
    .optional(),
  idSync: z
    .array(idSyncEntry)
    .min(1, 'must name at least one identifier type (omit idSync for the default setup)')
    .max(20, 'must name at most 20 identifier types')
    .superRefine((entries, ctx) => {
      const types = entries.map((e) => e.type);
      if (new Set(types).size !== types.length)
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must not name an identifier type twice' });
      if (entries.filter((e) => e.strategy === 'all').length > ID_SYNC_MAX_ALL_ENTRIES)
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          message: `at most ${ID_SYNC_MAX_ALL_ENTRIES} identifier types may use strategy "all"`,
        });
    })
    .optional(),
};

/**
 * The identifiers ID Sync picks from a profile's (in the order the profile
 * gained them, as change records and list members carry them): per entry,
 * `last` the newest of the type, `first` the oldest, `all` every one up to
 * `limit` (oldest first). Types not listed are not picked.
 */
export function selectIdSync<T extends { type: string; id: string }>(ids: readonly T[], idSync: readonly IdSyncEntry[]): T[] {
  const out: T[] = [];
  for (const entry of idSync) {
    const ofType = ids.filter((x) => x.type === entry.type);
    if (ofType.length === 0) continue;
    if (entry.strategy === 'last') out.push(ofType[ofType.length - 1]!);
    else if (entry.strategy === 'first') out.push(ofType[0]!);
    else out.push(...ofType.slice(0, entry.limit ?? ID_SYNC_ALL_LIMIT_MAX));
  }
  return out;
}

/**
 * Every identifier of the ID Sync's types, whatever the strategy: what an
 * exit (a removal) reaches. Segment does not apply ID Sync to Audience Exited
 * events and sends all ID combinations, so every identifier an entry may have
 * used (a `last` one since replaced, one past an `all` limit) hears the exit.
 */
export function allOfIdSyncTypes<T extends { type: string; id: string }>(ids: readonly T[], idSync: readonly IdSyncEntry[]): T[] {
  const types = new Set(idSync.map((e) => e.type));
  return ids.filter((x) => types.has(x.type));
}

/** The identifier types a connection matches on under ID Sync (null: Default Setup). */
export const idSyncTypes = (settings: Pick<ConnectionSettings, 'idSync'>): string[] | null =>
  settings.idSync ? settings.idSync.map((e) => e.type) : null;

/** Whether any trait a connection enriches with may be a computed trait of these keys. */
export const wantsComputedTraits = (settings: Pick<ConnectionSettings, 'traitEnrichment'>, computedKeys: ReadonlySet<string>): boolean =>
  (settings.traitEnrichment ?? []).some((k) => computedKeys.has(k));

/**
 * The enrichment traits of one profile: each listed key's current value, the
 * computed trait of that key first (the profile state's value), else the
 * custom trait of that name. A trait with no value (absent or null) is left out.
 */
export function enrichmentTraits(
  keys: readonly string[] | undefined,
  sources: { custom: Record<string, unknown>; computed: Record<string, unknown> },
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys ?? []) {
    const value = sources.computed[key] ?? sources.custom[key];
    if (value !== undefined && value !== null) out[key] = value;
  }
  return out;
}

/** A change record's traits_json as an object ({} when it is not one). */
export function customTraitsOf(traitsJson: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(traitsJson);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
