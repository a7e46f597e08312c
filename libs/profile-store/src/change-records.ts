// Value changes as engage.computations.changes records (CONTRACT.md section 6).
import { hash } from 'node:crypto';
import type { Value, ValueChange } from '@engage/engine';
import type { ChangeReason, ComputationChange } from '@engage/schemas';
import type { StoredProfile } from './profile-state.repository';

function avroValue(v: Value): { value: null | boolean | number | string; isJson: boolean } {
  if (Array.isArray(v)) return { value: JSON.stringify(v), isJson: true };
  return { value: v, isJson: false };
}

/**
 * change_id is deterministic over what changed and why, so a redelivered
 * cause produces the same id and every consumer can drop the duplicate.
 */
export function changeId(parts: { computationId: string; version: number; profileId: string; value: Value; cause: string }): string {
  // One-shot digest (the same bytes as createHash().update().digest(), ~2.5x cheaper): one per change.
  return `chg_${hash('sha1', JSON.stringify([parts.computationId, parts.version, parts.profileId, parts.value, parts.cause]), 'hex').slice(0, 32)}`;
}

export function toChangeRecord(
  change: ValueChange,
  profile: StoredProfile,
  opts: {
    reason: ChangeReason;
    occurredAt: number;
    emittedAt: number;
    cause: string;
    /** JSON of profile.traits, when the caller has it */ traitsJson?: string;
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
    external_ids: profile.externalIds,
    user_id: profile.userId,
    anonymous_id: profile.anonymousId,
    traits_json: opts.traitsJson ?? JSON.stringify(profile.traits),
  };
}
