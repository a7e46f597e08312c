// Value changes as engage.computations.changes records (CONTRACT.md section 6).
import { hash } from 'node:crypto';
import { PROFILE_LIMITS, type Value, type ValueChange } from '@engage/engine';
import type { ChangeReason, ComputationChange } from '@engage/schemas';
import type { StoredProfile } from './profile-state.repository';

function avroValue(v: Value): { value: null | boolean | number | string; isJson: boolean } {
  if (Array.isArray(v)) return { value: JSON.stringify(v), isJson: true };
  return { value: v, isJson: false };
}

/**
 * What a change record carries of its profile, bounded whatever the profile
 * holds (CONTRACT.md section 7: no record can pass the broker's message size
 * because of a profile): destinations need the ids, key and value; the traits
 * ride along for context (email and the like), so large values are left out.
 */
export const CHANGE_RECORD_LIMITS = {
  /** JSON bytes of traits_json. */
  traitsBytes: 16 * 1024,
  /** A trait whose JSON is larger is left out of traits_json. */
  traitValueBytes: 1024,
  /** external_ids entries (user_id, email and the other non-anonymous ids first). */
  externalIds: PROFILE_LIMITS.externalIds,
} as const;

/** traits_json of a change record: the profile's traits in key order, each value within the bound, until the budget is spent. */
export function changeTraitsJson(traits: Record<string, unknown>, limits = CHANGE_RECORD_LIMITS): string {
  const whole = JSON.stringify(traits);
  // A whole no longer than one value's bound has no value past it: no second pass (the usual case).
  if (whole.length <= limits.traitValueBytes) return whole;
  if (whole.length <= limits.traitsBytes && Object.values(traits).every((v) => (JSON.stringify(v)?.length ?? 0) <= limits.traitValueBytes))
    return whole;
  const kept: Record<string, unknown> = {};
  let size = 2;
  for (const [k, v] of Object.entries(traits)) {
    const json = JSON.stringify(v);
    if (json === undefined || json.length > limits.traitValueBytes) continue;
    const entry = JSON.stringify(k).length + 1 + json.length + 1;
    if (size + entry > limits.traitsBytes) continue;
    kept[k] = v;
    size += entry;
  }
  return JSON.stringify(kept);
}

/** external_ids of a change record: at most the bound, anonymous ids last (destinations match on the others first). */
export function changeExternalIds(
  ids: Array<{ type: string; id: string }>,
  limits = CHANGE_RECORD_LIMITS,
): Array<{ type: string; id: string }> {
  if (ids.length <= limits.externalIds) return ids;
  return [...ids.filter((x) => x.type !== 'anonymous_id'), ...ids.filter((x) => x.type === 'anonymous_id')].slice(0, limits.externalIds);
}

/**
 * change_id is deterministic over what changed and why, so a redelivered
 * cause produces the same id and every consumer can drop the duplicate.
 */
export function changeId(parts: { computationId: string; version: number; profileId: string; value: Value; cause: string }): string {
  // One-shot digest (the same bytes as createHash().update().digest(), ~2.5x cheaper): one per change.
  return `chg_${hash('sha1', JSON.stringify([parts.computationId, parts.version, parts.profileId, parts.value, parts.cause]), 'hex').slice(0, 32)}`;
}

/** The identifiers a change record names (destinations match on them). */
export interface ChangeIdentity {
  userId: string | null;
  anonymousId: string | null;
  externalIds: Array<{ type: string; id: string }>;
}

export function toChangeRecord(
  change: ValueChange,
  profile: StoredProfile,
  opts: {
    reason: ChangeReason;
    occurredAt: number;
    emittedAt: number;
    cause: string;
    /** changeTraitsJson(profile.traits), when the caller has it */ traitsJson?: string;
    /** who the change is for, when not the profile's current identifiers */ identity?: ChangeIdentity;
  },
): ComputationChange {
  const value = avroValue(change.value);
  const previous = avroValue(change.previous);
  return {
    change_id: changeId({
      computationId: change.computation.id,
      version: change.computation.definitionVersion,
      profileId: profile.profileId,
      value: change.value,
      cause: opts.cause,
    }),
    space_id: profile.spaceId,
    computation_id: change.computation.id,
    computation_key: change.computation.key,
    computation_class: change.computation.class,
    level: change.computation.ast.type === 'accounts' ? 'account' : 'user',
    profile_id: profile.profileId,
    value: value.value,
    previous: previous.value,
    value_is_json: value.isJson || previous.isJson,
    reason: opts.reason,
    occurred_at: opts.occurredAt,
    emitted_at: opts.emittedAt,
    external_ids: changeExternalIds((opts.identity ?? profile).externalIds),
    user_id: (opts.identity ?? profile).userId,
    anonymous_id: (opts.identity ?? profile).anonymousId,
    traits_json: opts.traitsJson ?? changeTraitsJson(profile.traits),
  };
}
