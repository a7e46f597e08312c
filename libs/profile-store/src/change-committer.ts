// The write half every evaluating step shares (realtime events, identity
// merges, window expiry, backfills):
//   1. produce the change records (one sendBatch, acked by the broker),
//   2. then save the profiles' state, wake-ups and memberships (one atomic MULTI: AtomicWrites).
// TRICKY: in this order a crash between 1 and 2 leaves the old state, so the
// redelivered input recomputes the same changes with the same change_id
// (deterministic) and emits them again: duplicates are possible and carry the
// same id (dispatchers dedupe on it); a lost change is not. The other order
// could save "member" and never emit the entry.
import { nextChangeAt, type CompiledComputation, type ValueChange } from '@engage/engine';
import type { Producer } from '@engage/kafka';
import { valueSubject, type ChangeReason, type ComputationChange, type SchemaCodec } from '@engage/schemas';
import { changeTraitsJson, toChangeRecord, type ChangeIdentity } from './change-records';
import type { MembershipUpdate, ProfileRef, ProfileStateRepository, StoredProfile } from './profile-state.repository';

/**
 * Kafka header of a change record: the profile's changeSeq after the commit
 * that made it. A state read with changeSeq >= it already holds the change.
 */
export const CHANGE_SEQ_HEADER = 'engage-change-seq';

/** Bytes of change records per produce request (well under the broker's 1 MB message.max.bytes). */
const MAX_SEND_BYTES = 512 * 1024;

export interface PendingChange {
  profile: StoredProfile;
  change: ValueChange;
  reason: ChangeReason;
  occurredAt: number;
  /** What caused it (message id, or `expiry@<time>`), part of change_id. */
  cause: string;
  /**
   * Who the change is for, when not the profile as committed: a change made
   * before an identify in the same chunk goes to the ids the profile had
   * then, and a re-sync goes only to the ids just added.
   */
  identity?: ChangeIdentity;
}

export class ChangeCommitter {
  constructor(
    private readonly config: { changesTopic: string },
    private readonly deps: { producer: Producer; codec: SchemaCodec; profiles: ProfileStateRepository; now?: () => number },
  ) {}

  async commit(
    touched: Array<{ profile: StoredProfile; ordered: CompiledComputation[] }>,
    pending: PendingChange[],
    deleted: Array<ProfileRef & { mergedInto?: string }> = [],
  ): Promise<ComputationChange[]> {
    const now = this.deps.now?.() ?? Date.now();
    const { records, memberships } = await this.produce(pending, now);
    await this.deps.profiles.save(
      touched.map(({ profile, ordered }) => ({ profile, wakeAt: nextChangeAt(profile, ordered, now) })),
      memberships,
      deleted,
    );
    return records;
  }

  /**
   * Step 1 alone: the change records produced (acked by the broker), and the
   * membership writes that must be saved with the profiles' state. For a
   * caller that saves later (the evaluator's write-behind: WriteBehindProfiles),
   * keeping the order: nothing of these changes is saved before they are out.
   */
  async produce(
    pending: PendingChange[],
    now = this.deps.now?.() ?? Date.now(),
  ): Promise<{ records: ComputationChange[]; memberships: MembershipUpdate[] }> {
    // A profile's traits are the same for all of its changes of the chunk: one JSON each.
    const traitsJson = new Map<StoredProfile, string>();
    const traitsOf = (p: StoredProfile) => {
      let json = traitsJson.get(p);
      if (json === undefined) traitsJson.set(p, (json = changeTraitsJson(p.traits)));
      return json;
    };
    // One step per commit and profile, persisted with the state below (a redelivered input, from the old state, steps the same way).
    const seqs = new Map<StoredProfile, string>();
    for (const p of pending) if (!seqs.has(p.profile)) seqs.set(p.profile, String((p.profile.changeSeq = (p.profile.changeSeq ?? 0) + 1)));
    const records = pending.map((p) =>
      toChangeRecord(p.change, p.profile, {
        reason: p.reason,
        occurredAt: p.occurredAt,
        emittedAt: now,
        cause: p.cause,
        traitsJson: traitsOf(p.profile),
        identity: p.identity,
      }),
    );
    if (records.length > 0) {
      const subject = valueSubject(this.config.changesTopic);
      const messages = records.map((r, i) => ({
        key: r.profile_id,
        value: this.deps.codec.encodeSync(subject, r),
        headers: { [CHANGE_SEQ_HEADER]: seqs.get(pending[i]!.profile)! },
      }));
      // NOTE: one produce request per ~MAX_SEND_BYTES: a chunk can make
      // thousands of changes, and a record batch over the broker's
      // message.max.bytes (1 MB by default) is refused. Sequential sends keep
      // per-partition order.
      let start = 0;
      let bytes = 0;
      for (let i = 0; i < messages.length; i++) {
        bytes += messages[i]!.value.length + messages[i]!.key.length;
        if (bytes >= MAX_SEND_BYTES || i === messages.length - 1) {
          await this.deps.producer.send({ topic: this.config.changesTopic, messages: messages.slice(start, i + 1) });
          start = i + 1;
          bytes = 0;
        }
      }
    }
    // An audience's members: profiles in it. A computed trait's: profiles with a value (its size,
    // as Segment counts users with the trait). NOTE: written with every change of a trait, not
    // only when the value comes or goes, so values set before traits had a set are counted too
    // once they next change (a chunk's additions to one set are one SADD: AtomicWrites).
    const memberships: MembershipUpdate[] = pending.map((p) => ({
      computationId: p.change.computation.id,
      profileId: p.profile.profileId,
      member: p.change.computation.class === 'audience' ? p.change.value === true : p.change.value !== null,
    }));
    return { records, memberships };
  }
}
