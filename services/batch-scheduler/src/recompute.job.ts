// Backfills, batch computations and clean-up, over the stored profiles of a
// space (the space index set, scanned a page at a time):
// - a realtime computation, new, edited or re-enabled, is evaluated for every
//   stored profile: status Preparing, then Computing with progress (0..1),
//   then Live. Reason `backfill` for a new computation, `edit` for a new
//   definition of an existing one. Without includeHistoricalData only events
//   that arrived after the definition changed count (countsEventsFrom).
// - batch computations (computeMode batch) are recomputed every interval
//   (reason `batch`); only differences from the stored values are emitted.
// - a disabled or deleted computation loses its members and stored values, so
//   re-enabling recomputes it from scratch (entries again, reason `backfill`).
//
// Handover to real time without gap or double count: the realtime evaluator
// follows engage.config too and evaluates the new definition for every
// profile that gets an event (its stored value is missing or of an older
// version); the backfill evaluates the same definition under the same
// per-profile lock and compares with the stored value, so whichever of the
// two comes first emits the change and the other finds nothing to change.
//
// NOTE (weaker than DESIGN.md): "history" is each profile's stored history
// (the evaluator keeps the last EVALUATOR_MAX_EVENTS_PER_PROFILE events of
// every profile, written as engage.events.resolved is consumed), not a
// re-read of engage.events.resolved from offset 0; events beyond the bound
// are not replayed.
//
// Two replicas: a computation's pass holds a lease (SET NX PX, renewed per
// page), so only one replica computes it; the other skips it until done.
import { reevaluate, type CompiledComputation } from '@engage/engine';
import { statusKeys, type ComputationStatus, type ConfigStore } from '@engage/config-store';
import type { ChangeCommitter, ComputationsRegistry, PendingChange, ProfileStateRepository } from '@engage/profile-store';
import type { RedisClient } from '@engage/redis';
import type { ChangeReason } from '@engage/schemas';

export class RecomputeJob {
  private readonly status;
  private readonly owner = `${process.pid}:${Math.random().toString(36).slice(2)}`;

  constructor(
    private readonly config: { keyPrefix: string; batchIntervalMs: number; leaseMs: number },
    private readonly deps: {
      store: ConfigStore;
      realtime: ComputationsRegistry;
      batch: ComputationsRegistry;
      /** Every enabled computation of both modes, in one dependency order. */
      all: ComputationsRegistry;
      profiles: ProfileStateRepository;
      committer: ChangeCommitter;
      redis: RedisClient;
      now?: () => number;
    },
  ) {
    this.status = statusKeys(config.keyPrefix);
  }

  /** Realtime: the definition version computed; batch: when last computed. Absent: never (or cleared). */
  private doneKey = (id: string) => `${this.config.keyPrefix}sched:done:${id}`;
  private leaseKey = (id: string) => `${this.config.keyPrefix}sched:lease:${id}`;
  /** The running pass of a computation (its start time): part of its changes' change_id. */
  private passKey = (id: string) => `${this.config.keyPrefix}sched:pass:${id}`;

  /** One pass over every space's computations: start what is due, report status. */
  async tick(): Promise<void> {
    for (const space of this.deps.store.list('space')) {
      const realtime = this.deps.realtime.forSpace(space.id);
      const batch = this.deps.batch.forSpace(space.id);
      for (const { config, compiled } of realtime.byId.values()) {
        if (compiled.ast.type === 'accounts') {
          await this.report(config.id, 'Live'); // evaluated by the realtime evaluator as users change
          continue;
        }
        const done = await this.deps.redis.get(this.doneKey(config.id));
        if (done !== String(config.definitionVersion)) {
          const reason: ChangeReason = done !== null && Number(done) < config.definitionVersion ? 'edit' : 'backfill';
          // The done-marker is read again and written under the lease, so a
          // replica that takes the lease just after another finished skips.
          const ran = await this.withLease(config.id, async (renew) => {
            if ((await this.deps.redis.get(this.doneKey(config.id))) === String(config.definitionVersion)) return;
            await this.recompute(space.id, compiled, reason)(renew);
            await this.deps.redis.set(this.doneKey(config.id), String(config.definitionVersion));
          });
          if (!ran) continue; // another replica is on it
        }
        await this.report(config.id, 'Live');
      }
      for (const { config, compiled } of batch.byId.values()) {
        const last = Number((await this.deps.redis.get(this.doneKey(config.id))) ?? 0);
        const now = this.deps.now?.() ?? Date.now();
        if (now - last >= this.config.batchIntervalMs) {
          const ran = await this.withLease(config.id, async (renew) => {
            if (now - Number((await this.deps.redis.get(this.doneKey(config.id))) ?? 0) < this.config.batchIntervalMs) return;
            await this.recompute(space.id, compiled, 'batch')(renew);
            await this.deps.redis.set(this.doneKey(config.id), String(now));
          });
          if (!ran) continue;
        }
        await this.report(config.id, 'Live');
      }
    }
    await this.cleanUp();
  }

  /** Runs fn holding the computation's lease; false when another replica holds it. */
  private async withLease(id: string, fn: (renew: () => Promise<void>) => Promise<void>): Promise<boolean> {
    const got = await this.deps.redis.set(this.leaseKey(id), this.owner, 'PX', this.config.leaseMs, 'NX');
    if (got !== 'OK') return false;
    try {
      await fn(async () => void (await this.deps.redis.pexpire(this.leaseKey(id), this.config.leaseMs)));
      return true;
    } finally {
      if ((await this.deps.redis.get(this.leaseKey(id))) === this.owner) await this.deps.redis.del(this.leaseKey(id));
    }
  }

  private recompute(spaceId: string, target: CompiledComputation, reason: ChangeReason) {
    return async (renew: () => Promise<void>) => {
      // change_id cause: one per pass, kept in Redis until the pass is done, so
      // a pass re-run after a crash repeats the same ids (duplicates dedupe),
      // while a later pass (the next batch run, a re-enable) gets new ones: a
      // re-entry is not mistaken for a duplicate of an old entry.
      await this.deps.redis.set(this.passKey(target.id), String(this.deps.now?.() ?? Date.now()), 'NX');
      const pass = await this.deps.redis.get(this.passKey(target.id));
      // NOTE: evaluated within the order of ALL the space's computations, so a
      // batch computation reads realtime values through trait() and the
      // engine keeps every computation's state (it drops states of
      // computations it is not given).
      const { ordered } = this.deps.all.forSpace(spaceId);
      if (reason !== 'batch') await this.report(target.id, 'Preparing', 0);
      const total = await this.deps.profiles.countSpace(spaceId);
      let seen = 0;
      for await (const refs of this.deps.profiles.scanSpace(spaceId)) {
        const now = this.deps.now?.() ?? Date.now();
        await this.deps.profiles.withLocks(refs, async () => {
          const loaded = await this.deps.profiles.load(refs);
          const pending: PendingChange[] = [];
          for (const profile of loaded) {
            for (const change of reevaluate(profile, ordered, (c) => c.id === target.id, now)) {
              // Another computation can change here only if its stored value was stale (a new version the evaluator has not seen yet).
              const why: ChangeReason = change.computation.id === target.id ? reason : 'backfill';
              pending.push({ profile, change, reason: why, occurredAt: now, cause: `${why}@${target.id}@${pass}` });
            }
          }
          // Wake-ups follow the realtime computations, as the evaluator sets them.
          const wake = this.deps.realtime.forSpace(spaceId).ordered;
          await this.deps.committer.commit(
            loaded.map((profile) => ({ profile, ordered: wake })),
            pending,
          );
        });
        seen += refs.length;
        await renew();
        if (reason !== 'batch') await this.report(target.id, 'Computing', total === 0 ? 1 : Math.min(1, seen / total));
      }
      await this.deps.redis.del(this.passKey(target.id));
    };
  }

  private async report(computationId: string, status: ComputationStatus, progress?: number) {
    const size = await this.deps.profiles.memberCount(computationId);
    const fields: Record<string, string> = { status, size: String(size), updatedAt: String(Date.now()) };
    if (progress !== undefined) fields.progress = String(progress);
    const tx = this.deps.redis.multi().hset(this.status.computation(computationId), fields);
    if (progress === undefined) tx.hdel(this.status.computation(computationId), 'progress');
    await tx.exec();
  }

  /** Disabled or deleted computations: members, stored values and done-markers go. */
  private async cleanUp() {
    for (const kind of ['audience', 'computed_trait'] as const) {
      for (const o of this.deps.store.listStored(kind, undefined, { includeDeleted: true })) {
        if (!o.deleted && o.body.enabled) continue;
        if ((await this.deps.redis.exists(this.doneKey(o.id))) === 0) continue;
        await this.withLease(o.id, async () => {
          for await (const refs of this.deps.profiles.scanSpace(o.spaceId)) {
            await this.deps.profiles.withLocks(refs, async () => {
              const loaded = (await this.deps.profiles.load(refs)).filter((p) => p.values[o.id] !== undefined);
              for (const p of loaded) delete p.values[o.id];
              const { ordered } = this.deps.realtime.forSpace(o.spaceId);
              await this.deps.committer.commit(
                loaded.map((profile) => ({ profile, ordered })),
                [],
              );
            });
          }
          await this.deps.profiles.clearMembers(o.id);
          await this.deps.redis.del(this.doneKey(o.id));
          await this.deps.redis.hset(this.status.computation(o.id), { status: o.deleted ? 'Not Computing' : 'Disabled', size: '0' });
        });
      }
    }
  }
}
