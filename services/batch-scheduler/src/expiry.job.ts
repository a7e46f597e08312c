// Window expiry: profiles whose value can change with time alone are woken at
// their nextChangeAt and re-evaluated (reason `expiry`), so a user leaves
// `within(30 days)` 30 days after the last qualifying event with no new event.
//
// Several replicas can run this: claimDue moves each claimed wake-up a lease
// into the future atomically (one replica takes a profile; a replica that dies
// only delays it by the lease), the wake-ups are sharded over several sorted
// sets, and the commit holds the profiles' locks like every other writer.
//
// Prepared ahead (lookaheadMs): wake-ups due within the lookahead are claimed
// early, their profiles read (without locks) and evaluated AT their due
// instant (the engine takes time as an argument), so when the instant comes
// only the commit is left: under the locks, a profile whose token is unchanged
// (nobody saved it since it was read) gets the prepared changes and state; one
// that changed meanwhile is read and evaluated again, now. Thousands of
// windows ending at the same instant (a campaign's cohort) then exit within
// the commit's time, not the evaluation's. An exit is never emitted before
// its instant.
//
// The change_id's cause is the instant the value was due to change, computed
// from the stored state (nextChangeAt as of the states' last evaluation), not
// the time it ran nor the claimed score: a claim moves the score a lease into
// the future, so after a killed tick the re-claim's score is the lease, and a
// cause taken from it gave the same exit a second change_id. The stored state
// is unchanged until the save, so a re-run computes the same instant.
//
// TRICKY: the same instant, not the claimed score, is when a profile is
// evaluated and committed. A re-claimed lease's score lies up to
// lookahead + lease past the instant; and a lease that ends before its commit
// (lease <= lookahead, or a commit held up) has the job claim its own
// wake-up again. Evaluated at that score, the exit came a lease late after a
// kill, and a wake-up re-claimed every lease never reached its commit: the
// exit was lost until another writer saved the profile. So a claim is
// evaluated at the earlier of its score and the stored state's instant, and a
// wake-up claimed again while it waits here keeps the earlier instant.
import { needsHistory, nextChangeAt, reevaluate, type CompiledComputation } from '@engage/engine';
import type {
  ChangeCommitter,
  ComputationsRegistry,
  DueProfile,
  PendingChange,
  ProfileStateRepository,
  StoredProfile,
} from '@engage/profile-store';

/** A claimed wake-up, evaluated at its due instant and waiting for it. */
interface Prepared {
  due: DueProfile;
  /** The instant the profile was evaluated at (see the header; the claim time for one already past). */
  evalAt: number;
  profile: StoredProfile;
  token: string | null;
  pending: PendingChange[];
}

export class ExpiryJob {
  /** Claimed and evaluated, by due instant (ascending on commit). */
  private readonly prepared = new Map<string, Prepared>();

  constructor(
    private readonly config: {
      batchSize: number;
      leaseMs: number;
      /** How far ahead wake-ups are claimed and evaluated (ms); 0: only what is due. */
      lookaheadMs?: number;
      /** Most wake-ups held prepared at once (bounds memory: one profile document each). */
      maxPrepared?: number;
      /** Batches committed at once (default 4). */
      commitConcurrency?: number;
    },
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

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** One tick: claims and prepares what is due within the lookahead, commits what is due now; returns how many profiles were committed. */
  async tick(): Promise<number> {
    const now = this.now();
    await this.prepare(now);
    return this.commitDue(now);
  }

  /** How many wake-ups are claimed and waiting for their instant. */
  get waiting(): number {
    return this.prepared.size;
  }

  private async prepare(now: number): Promise<void> {
    const max = this.config.maxPrepared ?? 50_000;
    const horizon = now + (this.config.lookaheadMs ?? 0);
    while (this.prepared.size < max) {
      const limit = Math.min(this.config.batchSize, max - this.prepared.size);
      const due = await this.deps.profiles.claimDue(horizon, limit, this.config.leaseMs);
      if (due.length === 0) return;
      const { profiles: loaded, tokens } = await this.deps.profiles.loadWithTokens(due);
      await this.deps.profiles.loadHistory(loaded.filter((p) => needsHistory(p, this.deps.all.forSpace(p.spaceId).ordered)));
      loaded.forEach((profile, i) => {
        const d = due[i]!;
        const key = `${d.spaceId}|${d.profileId}`;
        const occurredAt = this.instantOf(profile, d);
        // Evaluated at its instant (see the header), never later than a claim of it already waiting here;
        // one already past (late, or a lease re-claimed after a crash) at the claim time.
        const evalAt = Math.max(now, Math.min(d.dueAt, occurredAt, this.prepared.get(key)?.evalAt ?? Infinity));
        const pending = this.evaluate(profile, occurredAt, evalAt);
        this.prepared.set(key, { due: d, evalAt, profile, token: tokens[i] ?? null, pending });
      });
      if (due.length < limit) return;
    }
  }

  /**
   * The instant the profile's value was due to change, from its stored state
   * (see the header on change ids); the claimed score when the state knows none.
   * Call it before the evaluation moves the states on.
   */
  private instantOf(profile: StoredProfile, due: DueProfile): number {
    const realtime = this.deps.realtime.forSpace(profile.spaceId).ordered;
    const h = profile.incremental?.h;
    return (h !== undefined ? nextChangeAt(profile, realtime, h) : null) ?? due.dueAt;
  }

  /** The expiry changes of one profile at instant `at` (the profile is brought to that instant in place), caused at `occurredAt`. */
  private evaluate(profile: StoredProfile, occurredAt: number, at: number): PendingChange[] {
    const { ordered, byId } = this.deps.all.forSpace(profile.spaceId);
    // Batch computations change only on their schedule.
    const expires = (c: CompiledComputation) => c.deps.timeDependent && byId.get(c.id)?.config.options.computeMode !== 'batch';
    return reevaluate(profile, ordered, expires, at).map((change) => ({
      profile,
      change,
      reason: 'expiry' as const,
      occurredAt,
      cause: `expiry@${occurredAt}`,
    }));
  }

  private async commitDue(now: number): Promise<number> {
    const ready = [...this.prepared.values()].filter((p) => p.evalAt <= now).sort((a, b) => a.evalAt - b.evalAt);
    for (const p of ready) this.prepared.delete(`${p.due.spaceId}|${p.due.profileId}`);
    const batches: Prepared[][] = [];
    for (let i = 0; i < ready.length; i += this.config.batchSize) batches.push(ready.slice(i, i + this.config.batchSize));
    // A few batches at once: one's Kafka and Redis round trips overlap another's encoding
    // (batches hold disjoint profiles; each takes its own locks).
    // A failed commit leaves its batch to the lease: claimed again (and evaluated afresh) when it ends.
    const workers = Math.min(this.config.commitConcurrency ?? 4, batches.length);
    const results = await Promise.allSettled(
      Array.from({ length: workers }, async () => {
        for (let batch = batches.shift(); batch; batch = batches.shift()) await this.commitBatch(batch, now);
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return ready.length;
  }

  private async commitBatch(batch: Prepared[], now: number): Promise<void> {
    const refs = batch.map((p) => p.due);
    await this.deps.profiles.withLocks(refs, async () => {
      const tokens = await this.deps.profiles.tokensOf(refs);
      const stale = batch.filter((p, i) => tokens[i] !== p.token);
      const pending = batch.filter((p, i) => tokens[i] === p.token).flatMap((p) => p.pending);
      const touched: StoredProfile[] = batch.filter((p, i) => tokens[i] === p.token).map((p) => p.profile);
      if (stale.length > 0) {
        // Saved by another writer since it was read (an event, a merge): evaluated again from the stored state, now.
        const { profiles: fresh } = await this.deps.profiles.loadWithTokens(stale.map((p) => p.due));
        await this.deps.profiles.loadHistory(fresh.filter((p) => needsHistory(p, this.deps.all.forSpace(p.spaceId).ordered)));
        fresh.forEach((profile, i) => {
          pending.push(...this.evaluate(profile, this.instantOf(profile, stale[i]!.due), now));
          touched.push(profile);
        });
      }
      await this.deps.committer.commit(
        touched.map((profile) => ({ profile, ordered: this.deps.realtime.forSpace(profile.spaceId).ordered })),
        pending,
      );
    });
  }
}
