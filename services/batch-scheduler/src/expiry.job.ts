// Window expiry: profiles whose value can change with time alone are woken at
// their nextChangeAt and re-evaluated (reason `expiry`), so a user leaves
// `within(30 days)` 30 days after the last qualifying event with no new event.
//
// Several replicas can run this: claimDue moves each claimed wake-up a lease
// into the future atomically (one replica takes a profile; a replica that dies
// only delays it by the lease), the wake-ups are sharded over several sorted
// sets, and the evaluation holds the profiles' locks like every other writer.
// The change_id's cause is the instant the value was due to change, computed
// from the stored state (nextChangeAt as of the states' last evaluation), not
// the time it ran nor the claimed score: a claim moves the score a lease into
// the future, so after a killed tick the re-claim's score is the lease, and a
// cause taken from it gave the same exit a second change_id. The stored state
// is unchanged until the save, so a re-run computes the same instant.
import { needsHistory, nextChangeAt, reevaluate } from '@engage/engine';
import type { ChangeCommitter, ComputationsRegistry, PendingChange, ProfileStateRepository } from '@engage/profile-store';

export class ExpiryJob {
  constructor(
    private readonly config: { batchSize: number; leaseMs: number },
    private readonly deps: {
      profiles: ProfileStateRepository;
      /** Every enabled computation (the engine keeps the state of those it is given). */
      all: ComputationsRegistry;
      /** Realtime computations: the wake-ups follow them (as the evaluator sets them). */
      realtime: ComputationsRegistry;
      now?: () => number;
      committer: ChangeCommitter;
    },
  ) {}

  /** One tick; returns how many profiles were woken. */
  async tick(): Promise<number> {
    const now = this.deps.now?.() ?? Date.now();
    const due = await this.deps.profiles.claimDue(now, this.config.batchSize, this.config.leaseMs);
    if (due.length === 0) return 0;
    const dueAt = new Map(due.map((d) => [`${d.spaceId}|${d.profileId}`, d.dueAt]));
    await this.deps.profiles.withLocks(due, async () => {
      // Without the history unless the evaluation needs it (the incremental states answer for time passing).
      const { profiles: loaded } = await this.deps.profiles.loadForEvents(due);
      await this.deps.profiles.loadHistory(loaded.filter((p) => needsHistory(p, this.deps.all.forSpace(p.spaceId).ordered)));
      const pending: PendingChange[] = [];
      const touched = loaded.map((profile) => {
        const { ordered, byId } = this.deps.all.forSpace(profile.spaceId);
        const realtime = this.deps.realtime.forSpace(profile.spaceId).ordered;
        const h = profile.incremental?.h;
        const at = (h !== undefined ? nextChangeAt(profile, realtime, h) : null) ?? dueAt.get(`${profile.spaceId}|${profile.profileId}`)!;
        // Batch computations change only on their schedule.
        const expires = (c: (typeof ordered)[number]) => c.deps.timeDependent && byId.get(c.id)?.config.options.computeMode !== 'batch';
        for (const change of reevaluate(profile, ordered, expires, now)) {
          pending.push({ profile, change, reason: 'expiry', occurredAt: at, cause: `expiry@${at}` });
        }
        return { profile, ordered: realtime };
      });
      await this.deps.committer.commit(touched, pending);
    });
    return due.length;
  }
}
