// Window expiry: profiles whose value can change with time alone are woken at
// their nextChangeAt and re-evaluated (reason `expiry`), so a user leaves
// `within(30 days)` 30 days after the last qualifying event with no new event.
import { reevaluate } from '@engage/engine';
import type { ChangeCommitter, ComputationsRegistry, PendingChange, ProfileStateRepository } from '@engage/profile-store';

export class ExpiryJob {
  constructor(
    private readonly config: { batchSize: number; leaseMs: number },
    private readonly deps: { profiles: ProfileStateRepository; registry: ComputationsRegistry; committer: ChangeCommitter; now?: () => number },
  ) {}

  /** One tick; returns how many profiles were woken. */
  async tick(): Promise<number> {
    const now = this.deps.now?.() ?? Date.now();
    const due = await this.deps.profiles.claimDue(now, this.config.batchSize, this.config.leaseMs);
    if (due.length === 0) return 0;
    const loaded = await this.deps.profiles.load(due);
    const pending: PendingChange[] = [];
    const touched = loaded.map((profile) => {
      const { ordered } = this.deps.registry.forSpace(profile.spaceId);
      for (const change of reevaluate(profile, ordered, (c) => c.deps.timeDependent, now)) {
        pending.push({ profile, change, reason: 'expiry', occurredAt: now, cause: `expiry@${now}` });
      }
      return { profile, ordered };
    });
    await this.deps.committer.commit(touched, pending);
    return due.length;
  }
}
