// Re-sync on a new identifier (DESIGN.md, identity.changes): when a profile
// gains ids (an identify names the userId of a profile known until then by
// its anonymousId, a new email), destinations matching on them get the
// profile's current values once. The evaluator emits these as change records
// (reason `resync`) in the profile's order on its partition, between the
// changes made before the ids were known and those made after, so no
// delivery of the new ids can overtake or repeat a live change.
import type { CompiledComputation } from '@engage/engine';
import type { ChangeIdentity } from './change-records';
import type { PendingChange } from './change-committer';
import type { StoredProfile } from './profile-state.repository';

/**
 * The re-sync changes for ids just added to a profile: one per user-level
 * computation holding a value (audience member, trait set), value and
 * previous both the current value, addressed only to the added ids.
 */
export function resyncChanges(
  profile: StoredProfile,
  ordered: CompiledComputation[],
  added: Array<{ type: string; id: string }>,
  opts: { cause: string; occurredAt: number },
): PendingChange[] {
  if (added.length === 0) return [];
  const identity: ChangeIdentity = {
    userId: added.find((x) => x.type === 'user_id')?.id ?? profile.userId,
    anonymousId: profile.anonymousId,
    externalIds: added,
  };
  const out: PendingChange[] = [];
  for (const computation of ordered) {
    if (computation.ast.type === 'accounts') continue;
    const value = profile.values[computation.id]?.value;
    if (value === undefined || value === null || value === false) continue;
    out.push({
      profile,
      change: { computation, value, previous: value },
      reason: 'resync',
      occurredAt: opts.occurredAt,
      // Per added ids: the same identify redelivered re-syncs under the same change ids.
      cause: `resync:${opts.cause}`,
      identity,
    });
  }
  return out;
}
