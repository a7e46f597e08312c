// Window expiry: profiles whose value can change with time alone are woken at
// their nextChangeAt and re-evaluated (reason `expiry`), so a user leaves
// `within(30 days)` 30 days after the last qualifying event with no new event.
//
// Several replicas can run this: claimDue moves each claimed wake-up a lease
// into the future atomically (one replica takes a profile; a replica that dies
// only delays it by the lease), the wake-ups are sharded over several sorted
// sets, and the evaluation holds the profiles' locks like every other writer.
// The change_id's cause is the instant the wake-up was due, not the time it
// ran, so a re-run after a crash repeats the same ids.
import { needsHistory, reevaluate } from '@engage/engine';
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
        const at = dueAt.get(`${profile.spaceId}|${profile.profileId}`)!;
        // Batch computations change only on their schedule.
        const expires = (c: (typeof ordered)[number]) => c.deps.timeDependent && byId.get(c.id)?.config.options.computeMode !== 'batch';
        for (const change of reevaluate(profile, ordered, expires, now)) {
          pending.push({ profile, change, reason: 'expiry', occurredAt: at, cause: `expiry@${at}` });
        }
        return { profile, ordered: this.deps.realtime.forSpace(profile.spaceId).ordered };
      });
      await this.deps.committer.commit(touched, pending);
    });
    return due.length;
  }
}
