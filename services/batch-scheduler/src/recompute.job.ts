// Backfills, batch computations and clean-up, over the stored profiles of a
// space (the space index set, scanned a page at a time):
// - the realtime computations of a space that are new, edited or re-enabled
//   are backfilled together in one pass (backfill.pass.ts): status
//   Preparing, then Computing with progress (0..1), then Live. Reason
//   `backfill` for a new computation, `edit` for a new definition of an
//   existing one. With includeHistoricalData the pass replays
//   engage.events.resolved from its start; without it only events that
//   arrived after the definition changed count (countsEventsFrom). The
//   handover to real time is explained in backfill.pass.ts.
// - batch computations (computeMode batch) are recomputed every interval
//   (reason `batch`); only differences from the stored values are emitted.
// - a disabled or deleted computation loses its members and stored values, so
//   re-enabling recomputes it from scratch (entries again, reason `backfill`).
//
// Two replicas: a computation's pass holds a lease (RedisLock: SET NX PX,
// renewed per page and released by its owner only), so only one replica
// computes it; the other skips it until done.
import { reevaluate, type CompiledComputation } from '@engage/engine';
import type { BackfillPass, PassTarget } from './backfill.pass';
import { StatusStore, type ComputationStatus, type ConfigStore } from '@engage/config-store';
import type { ChangeCommitter, ComputationsRegistry, PendingChange, ProfileStateRepository } from '@engage/profile-store';
import { lockOwner, RedisLock, type HeldLock, type RedisClient } from '@engage/redis';
import type { ChangeReason } from '@engage/schemas';

export class RecomputeJob {
  private readonly status: StatusStore;
  private readonly owner = lockOwner();
  private readonly leases: RedisLock;

  constructor(
    private readonly config: {
      keyPrefix: string;
      batchIntervalMs: number;
      leaseMs: number;
      /** see BACKFILL_CUT_GRACE_MS */ cutGraceMs: number;
    },
    private readonly deps: {
      store: ConfigStore;
      realtime: ComputationsRegistry;
      batch: ComputationsRegistry;
      /** Every enabled computation of both modes, in one dependency order. */
      all: ComputationsRegistry;
      profiles: ProfileStateRepository;
      committer: ChangeCommitter;
      redis: RedisClient;
      backfill: BackfillPass;
      now?: () => number;
    },
  ) {
    this.status = new StatusStore({ keyPrefix: config.keyPrefix }, { redis: deps.redis });
    this.leases = new RedisLock(deps.redis);
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
      const pending: Array<{ id: string; version: number; reason: ChangeReason; historical: boolean }> = [];
      for (const { config, compiled } of realtime.byId.values()) {
        if (compiled.ast.type === 'accounts') {
          await this.report(config.id, 'Live'); // evaluated by the realtime evaluator as users change
          continue;
        }
        const done = await this.deps.redis.get(this.doneKey(config.id));
        if (done === String(config.definitionVersion)) await this.report(config.id, 'Live');
        else
          pending.push({
            id: config.id,
            version: config.definitionVersion,
            reason: done !== null && Number(done) < config.definitionVersion ? 'edit' : 'backfill',
            historical: config.options.includeHistoricalData === true,
          });
      }
      if (pending.length) await this.backfill(space.id, pending);
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

  /**
   * One pass for the space's pending realtime computations (those whose lease
   * this replica gets). A computation with historical data waits until
   * cutGraceMs has passed since its definition changed (status Preparing),
   * so the events stamped before the change are in the topic when the
   * replay reads its end offsets.
   */
  private async backfill(spaceId: string, pending: Array<{ id: string; version: number; reason: ChangeReason; historical: boolean }>) {
    const now = this.deps.now?.() ?? Date.now();
    const realtime = this.deps.realtime.forSpace(spaceId);
    const owned: HeldLock[] = [];
    try {
      const targets: PassTarget[] = [];
      for (const p of pending) {
        const compiled = realtime.byId.get(p.id)?.compiled;
        if (!compiled) continue;
        if (p.historical && now < compiled.countsEventsFrom + this.config.cutGraceMs) {
          await this.report(p.id, 'Preparing', 0);
          continue;
        }
        const lease = await this.leases.acquire(this.leaseKey(p.id), this.config.leaseMs, this.owner);
        if (!lease) continue; // another replica is on it
        owned.push(lease);
        // The done-marker is read again under the lease: a replica that takes it just after another finished skips.
        if ((await this.deps.redis.get(this.doneKey(p.id))) === String(p.version)) continue;
        // change_id cause: one per pass, kept in Redis until the pass is done, so
        // a pass re-run after a crash repeats the same ids (duplicates dedupe),
        // while a later pass (a re-enable) gets new ones: a re-entry is not
        // mistaken for a duplicate of an old entry.
        await this.deps.redis.set(this.passKey(p.id), String(now), 'NX');
        const pass = (await this.deps.redis.get(this.passKey(p.id)))!;
        targets.push({ compiled, historical: p.historical, reason: p.reason, pass });
      }
      if (targets.length === 0) return;
      for (const t of targets) await this.report(t.compiled.id, 'Preparing', 0);
      await this.deps.backfill.run(spaceId, targets, {
        progress: async (f) => {
          for (const t of targets) await this.report(t.compiled.id, 'Computing', Math.min(1, Math.max(0, f)));
        },
        renew: async () => {
          for (const lease of owned) await lease.renew();
        },
      });
      for (const t of targets) {
        await this.deps.redis.set(this.doneKey(t.compiled.id), String(t.compiled.definitionVersion));
        await this.deps.redis.del(this.passKey(t.compiled.id));
        await this.report(t.compiled.id, 'Live');
      }
    } finally {
      for (const lease of owned) await lease.release();
    }
  }

  /** Runs fn holding the computation's lease; false when another replica holds it. */
  private async withLease(id: string, fn: (renew: () => Promise<void>) => Promise<void>): Promise<boolean> {
    const run = await this.leases.withLock(this.leaseKey(id), this.config.leaseMs, (lease) => fn(async () => void (await lease.renew())), {
      owner: this.owner,
    });
    return run.acquired;
  }

  /** A batch computation's run over every stored profile of its space. */
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
        await renew();
      }
      await this.deps.redis.del(this.passKey(target.id));
    };
  }

  private async report(computationId: string, status: ComputationStatus, progress?: number) {
    const size = await this.deps.profiles.memberCount(computationId);
    await this.status.reportComputation(computationId, { status, size, progress, at: Date.now() });
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
          await this.status.computationStopped(o.id, o.deleted ? 'Not Computing' : 'Disabled');
        });
      }
    }
  }
}
