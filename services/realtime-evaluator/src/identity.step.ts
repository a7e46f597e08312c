// engage.identity.changes -> combined state. On a merge the survivor's state
// becomes the union of both (history by event id, traits: the survivor's
// win, identifiers added), every computation is re-evaluated, and the merged
// profile exits the audiences it was in before its state is dropped.
import { absorbProfile, addExternalId, mergeTraits, reevaluate, type ValueChange, takeTraitTimes } from '@engage/engine';
import { ok, type ConsumedMessage, type MessageOutcome } from '@engage/kafka';
import type { AccountStep, AccountWork } from './account.step';
import {
  resyncChanges,
  type ChangeCommitter,
  type ComputationsRegistry,
  type PendingChange,
  type ProfileRef,
  type ProfileStateRepository,
  type StoredProfile,
} from '@engage/profile-store';
import type { IdentityChange } from '@engage/schemas';

export function combineProfiles(survivor: StoredProfile, merged: StoredProfile, maxEvents: number): void {
  // The merged profile's incremental states join the survivor's and the next
  // evaluation (reevaluate, below in apply) combines them: counts and sums
  // add, windows and funnels unite, first/last by event time, an event both
  // counted once (libs/engine profile-merge.ts). So no value depends on the
  // bounded history, which is unioned (by event id, cut to `maxEvents`) only
  // for the Profile API's recent events.
  absorbProfile(survivor, merged, { maxEvents });
  // The survivor's traits win; the merged profile's others join within PROFILE_LIMITS, with the times
  // of the calls that set them (an older call re-addressed to the survivor later does not overwrite them).
  takeTraitTimes(survivor, merged, mergeTraits(survivor.traits, merged.traits, { overwrite: false }).changed);
  for (const x of merged.externalIds) addExternalId(survivor.externalIds, x.type, x.id);
  for (const a of merged.accounts ?? []) if (!(survivor.accounts ??= []).includes(a)) survivor.accounts.push(a);
  survivor.userId ??= merged.userId;
  survivor.anonymousId ??= merged.anonymousId;
  if (merged.metadata && (!survivor.metadata || merged.metadata.createdAt < survivor.metadata.createdAt)) {
    const m = merged.metadata;
    survivor.metadata = survivor.metadata
      ? { ...survivor.metadata, createdAt: m.createdAt, firstMessageId: m.firstMessageId, firstSourceId: m.firstSourceId }
      : { ...m };
  }
}

export class IdentityStep {
  constructor(
    private readonly config: { maxEventsPerProfile: number },
    private readonly deps: {
      profiles: ProfileStateRepository;
      registry: ComputationsRegistry;
      committer: ChangeCommitter;
      accounts: AccountStep;
      now?: () => number;
    },
  ) {}

  async handle(messages: Array<ConsumedMessage<IdentityChange>>): Promise<MessageOutcome[]> {
    // Changes of one chunk are applied one after the other (merges can chain).
    for (const { value: c } of messages) {
      // TRICKY: changes of different survivors travel on different partitions, so this one
      // may come after a later merge moved its survivor (or a merged profile) elsewhere.
      // The profiles are read where they live now (under their locks: merges move them
      // under the same locks); when one moved, the locks are released and taken again.
      let ids = [c.profile_id, ...c.merged_profile_ids];
      for (let round = 0; ; round++) {
        const refs: ProfileRef[] = ids.map((profileId) => ({ spaceId: c.space_id, profileId }));
        const work: AccountWork = { links: [], users: [], cause: c.change_id, occurredAt: c.occurred_at };
        const moved = await this.deps.profiles.withLocks(refs, async () => {
          const live = await this.deps.profiles.liveProfileIds(refs);
          if (live.some((id, i) => id !== ids[i])) return live;
          await this.apply(c, refs, work);
          return null;
        });
        if (!moved) {
          await this.deps.accounts.handle(work);
          break;
        }
        if (round >= 16) throw new Error(`profiles of ${c.change_id} still moving after ${round} rounds of merges`);
        // The live survivor takes the live merged profiles; one already folded into it is done.
        const survivor = moved[0]!;
        ids = [survivor, ...new Set(moved.slice(1).filter((id) => id !== survivor))];
      }
    }
    return messages.map(() => ok);
  }

  private async apply(c: IdentityChange, refs: ProfileRef[], work: AccountWork): Promise<void> {
    const now = this.deps.now?.() ?? Date.now();
    const { ordered, accounts } = this.deps.registry.forSpace(c.space_id);
    const [survivor, ...merged] = await this.deps.profiles.load(refs);
    const idCount = survivor!.externalIds.length;
    for (const x of c.external_ids) addExternalId(survivor!.externalIds, x.type, x.id);
    const pending: PendingChange[] = [];
    if (c.kind === 'external_id_added') {
      // New ids may reach this step before the event naming them: the re-sync
      // of current values to them is emitted by whichever comes first (see
      // libs/profile-store identity-resync.ts).
      survivor!.userId ??= c.external_ids.find((x) => x.type === 'user_id')?.id ?? null;
      const added = survivor!.externalIds.slice(idCount);
      pending.push(...resyncChanges(survivor!, ordered, added, { cause: c.change_id, occurredAt: c.occurred_at }));
    }
    if (c.kind === 'account_link' && c.account_id) {
      if (!(survivor!.accounts ??= []).includes(c.account_id)) survivor!.accounts.push(c.account_id);
      // The account's group_id travels with the link: the link can be evaluated before the group
      // call's own event, and an account entry without it reaches no destination that matches on it.
      const groupId = c.added_external_ids.find((x) => x.type === 'group_id')?.id ?? null;
      work.links.push({ user: survivor!, accountId: c.account_id, groupId });
    }
    const deleted: Array<ProfileRef & { mergedInto: string }> = [];
    for (const m of merged) {
      // Exits for the merged profile: it no longer exists on its own.
      for (const comp of ordered) {
        if (comp.class === 'audience' && m.values[comp.id]?.value === true) {
          const change: ValueChange = { computation: comp, value: false, previous: true };
          pending.push({ profile: m, change, reason: 'realtime', occurredAt: c.occurred_at, cause: c.change_id });
        }
      }
      for (const accountId of m.accounts ?? []) (work.unlinks ??= []).push({ user: m, accountId });
      combineProfiles(survivor!, m, this.config.maxEventsPerProfile);
      // Events of the merged profile still on their way (resolved before the merge) follow :into to the survivor.
      deleted.push({ spaceId: m.spaceId, profileId: m.profileId, mergedInto: survivor!.profileId });
    }
    if (merged.length > 0) {
      for (const change of reevaluate(survivor!, ordered, () => true, now)) {
        pending.push({ profile: survivor!, change, reason: 'realtime', occurredAt: c.occurred_at, cause: c.change_id });
      }
    }
    await this.deps.committer.commit([{ profile: survivor!, ordered }], pending, deleted);
    // The survivor takes the merged profiles' place in their accounts (the
    // merged documents are gone: account evaluation skips them).
    if (merged.length > 0) for (const accountId of survivor!.accounts ?? []) work.links.push({ user: survivor!, accountId });
    if (accounts.length > 0 && (survivor!.accounts?.length ?? 0) > 0) work.users = [survivor!];
  }
}
