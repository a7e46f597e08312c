// engage.identity.changes -> combined state. On a merge the survivor's state
// becomes the union of both (history by message id, traits: the survivor's
// win, identifiers added), every computation is re-evaluated, and the merged
// profile exits the audiences it was in before its state is dropped.
import { reevaluate, type ValueChange } from '@engage/engine';
import { ok, type ConsumedMessage, type MessageOutcome } from '@engage/kafka';
import type { ChangeCommitter, ComputationsRegistry, PendingChange, ProfileRef, ProfileStateRepository, StoredProfile } from '@engage/profile-store';
import type { IdentityChange } from '@engage/schemas';

export function combineProfiles(survivor: StoredProfile, merged: StoredProfile, maxEvents: number): void {
  const seen = new Set(survivor.events.map((e) => e.messageId));
  survivor.events.push(...merged.events.filter((e) => !seen.has(e.messageId)));
  survivor.events.sort((a, b) => a.timestamp - b.timestamp || (a.messageId < b.messageId ? -1 : 1));
  if (survivor.events.length > maxEvents) survivor.events.splice(0, survivor.events.length - maxEvents);
  survivor.traits = { ...merged.traits, ...survivor.traits };
  for (const x of merged.externalIds) if (!survivor.externalIds.some((y) => y.type === x.type && y.id === x.id)) survivor.externalIds.push(x);
  survivor.userId ??= merged.userId;
  survivor.anonymousId ??= merged.anonymousId;
}

export class IdentityStep {
  constructor(
    private readonly config: { maxEventsPerProfile: number },
    private readonly deps: { profiles: ProfileStateRepository; registry: ComputationsRegistry; committer: ChangeCommitter; now?: () => number },
  ) {}

  async handle(messages: Array<ConsumedMessage<IdentityChange>>): Promise<MessageOutcome[]> {
    const now = this.deps.now?.() ?? Date.now();
    // Changes of one chunk are applied one after the other (merges can chain).
    for (const { value: c } of messages) {
      const { ordered } = this.deps.registry.forSpace(c.space_id);
      const refs: ProfileRef[] = [c.profile_id, ...c.merged_profile_ids].map((profileId) => ({ spaceId: c.space_id, profileId }));
      const [survivor, ...merged] = await this.deps.profiles.load(refs);
      for (const x of c.external_ids) if (!survivor!.externalIds.some((y) => y.type === x.type && y.id === x.id)) survivor!.externalIds.push({ type: x.type, id: x.id });
      const pending: PendingChange[] = [];
      const deleted: ProfileRef[] = [];
      for (const m of merged) {
        // Exits for the merged profile: it no longer exists on its own.
        for (const comp of ordered) {
          if (comp.class === 'audience' && m.values[comp.id]?.value === true) {
            const change: ValueChange = { computation: comp, value: false, previous: true };
            pending.push({ profile: m, change, reason: 'realtime', occurredAt: c.occurred_at, cause: c.change_id });
          }
        }
        combineProfiles(survivor!, m, this.config.maxEventsPerProfile);
        deleted.push({ spaceId: m.spaceId, profileId: m.profileId });
      }
      if (merged.length > 0) {
        for (const change of reevaluate(survivor!, ordered, () => true, now)) {
          pending.push({ profile: survivor!, change, reason: 'realtime', occurredAt: c.occurred_at, cause: c.change_id });
        }
      }
      await this.deps.committer.commit([{ profile: survivor!, ordered }], pending, deleted);
    }
    return messages.map(() => ok);
  }
}
