// One backfill pass over a space, for every realtime computation that became
// new, edited or re-enabled since the last pass (they are batched: one replay
// and one scan whatever their number).
//
// 1. Replay (only when some of them include historical data): every event of
//    engage.events.resolved (from its start, what retention kept) that
//    arrived before the computation's last definition change folds into a
//    small state per (profile, computation) in memory (HistoryFold), the
//    event attributed to the survivor when its profile was merged since
//    (IdentityAliases).
// 2. Write: per profile, under its lock, addHistory() merges that state with
//    the profile's own (real time's) and re-evaluates; changes are produced
//    and the state saved together (ChangeCommitter).
// 3. Scan: every stored profile is evaluated for the pass's computations
//    (profiles with no replayed event, and those without historical data).
//
// Handover to real time without gap or double count: real time counts, for
// these computations, only the events that arrived (resolved_at) at or after
// the definition change (countsEventsFrom, computations.registry.ts), both
// as they come and when it builds a computation from a profile's stored
// history; the replay counts only those that arrived before. Every event is
// in exactly one of the two sets. The replay reads up to the end offsets it
// finds once `cutGraceMs` has passed since the change, so an event stamped
// before the change is in the topic by then (see NOTE below).
//
// NOTE: an event stamped (resolved_at) before the change but produced to
// the topic after the replay read its end offsets would be missed: that
// needs the resolver to take longer than BACKFILL_CUT_GRACE_MS between
// stamping and producing. A re-run after a crash repeats the same steps,
// which addHistory skips where they were done (the pass id is kept in Redis).
import { reevaluate, type CompiledComputation } from '@engage/engine';
import type { ChangeCommitter, ComputationsRegistry, PendingChange, ProfileRef, ProfileStateRepository } from '@engage/profile-store';
import { acrossSlots, type RedisClient } from '@engage/redis';
import type { ChangeReason } from '@engage/schemas';
import { HistoryFold } from './history-fold';
import { addHistory } from './history-handover';
import type { HistoryReplay } from './history-replay';
import type { IdentityAliases } from './identity-aliases';

export interface PassTarget {
  compiled: CompiledComputation;
  /** Replay engage.events.resolved for it (includeHistoricalData). */
  historical: boolean;
  reason: ChangeReason;
  /** The pass id of this computation (kept until it is done: a re-run after a crash reuses it). */
  pass: string;
}

export interface PassHooks {
  /** Share of the pass done (0..1). */
  progress(fraction: number): Promise<void>;
  /** Keeps the computations' leases. */
  renew(): Promise<void>;
}

const CHUNK = 500;

export class BackfillPass {
  constructor(
    private readonly deps: {
      all: ComputationsRegistry;
      realtime: ComputationsRegistry;
      profiles: ProfileStateRepository;
      committer: ChangeCommitter;
      redis: RedisClient;
      replay: () => HistoryReplay;
      aliases: () => IdentityAliases;
      /** Test hook: awaited between the replay and the writes (lands events during a pass). */
      beforeWrite?: () => Promise<void>;
      now?: () => number;
    },
  ) {}

  private now = () => this.deps.now?.() ?? Date.now();

  async run(spaceId: string, targets: PassTarget[], hooks: PassHooks): Promise<void> {
    const historical = targets.filter((t) => t.historical);
    const byId = new Map(targets.map((t) => [t.compiled.id, t]));
    const share = historical.length ? 0.5 : 0;
    if (historical.length) {
      const fold = new HistoryFold(
        historical.map((t) => t.compiled),
        this.now(),
      );
      const aliases = this.deps.aliases();
      let renewedAt = 0;
      await this.deps.replay().run(
        async (events) => {
          const mine = events.filter((e) => e.value.space_id === spaceId);
          if (mine.length === 0) return;
          const survivors = await aliases.survivors(
            spaceId,
            mine.map((e) => e.value.profile_id),
          );
          for (const e of mine) fold.add(e.partition, survivors.get(e.value.profile_id)!, e.value);
        },
        async (read) => {
          await hooks.progress(read * share * 0.8);
          if (Date.now() - renewedAt > 1000) {
            renewedAt = Date.now();
            await hooks.renew();
          }
        },
      );
      await this.deps.beforeWrite?.();
      await this.writeHistory(spaceId, fold, byId, aliases, async (f) => {
        await hooks.progress(share * (0.8 + 0.2 * f));
        await hooks.renew();
      });
    }
    // Every stored profile: the computations without history, and the profiles no replayed event touched.
    const total = await this.deps.profiles.countSpace(spaceId);
    let seen = 0;
    for await (const refs of this.deps.profiles.scanSpace(spaceId, CHUNK)) {
      await this.writeChunk(spaceId, refs, byId, null, 'scan');
      seen += refs.length;
      await hooks.renew();
      await hooks.progress(share + (1 - share) * (total === 0 ? 1 : Math.min(1, seen / total)));
    }
  }

  /**
   * Writes the replayed states, a chunk of profiles at a time. A profile
   * whose state is gone because it was merged since the replay read it
   * (the resolver's alias names the survivor) hands its states to the
   * survivor, written in a next round.
   */
  private async writeHistory(
    spaceId: string,
    fold: HistoryFold,
    byId: Map<string, PassTarget>,
    aliases: IdentityAliases,
    progress: (fraction: number) => Promise<void>,
  ): Promise<void> {
    let ids = fold.profileIds();
    const total = ids.length;
    let written = 0;
    for (let round = 1; ids.length > 0 && round <= 16; round++) {
      const next = new Set<string>();
      for (let i = 0; i < ids.length; i += CHUNK) {
        const refs = ids.slice(i, i + CHUNK).map((profileId) => ({ spaceId, profileId }));
        const moved = await this.deps.profiles.withLocks(refs, async () => {
          // One `:state` key per profile, each under its own `{space:profile}` tag: acrossSlots (one round trip per node).
          const exists = (
            await acrossSlots(
              this.deps.redis,
              refs.map((r) => ['exists', this.deps.profiles.stateKey(r)]),
            )
          ).map((n) => n === 1);
          const missing = refs.filter((_, k) => !exists[k]).map((r) => r.profileId);
          const survivors = missing.length ? await aliases.survivors(spaceId, missing, { fresh: true }) : new Map<string, string>();
          const here = refs.filter((r) => (survivors.get(r.profileId) ?? r.profileId) === r.profileId);
          await this.writeChunk(spaceId, here, byId, fold, `w${round}`);
          return refs
            .filter((r) => (survivors.get(r.profileId) ?? r.profileId) !== r.profileId)
            .map((r) => [r.profileId, survivors.get(r.profileId)!]);
        });
        for (const [from, to] of moved) {
          fold.moveTo(from!, to!);
          next.add(to!);
        }
        written += refs.length - moved.length;
        await progress(total === 0 ? 1 : Math.min(1, written / total));
      }
      ids = [...next];
    }
  }

  /** Evaluates the pass's computations on these profiles (locked by the caller for the history writes) and commits. */
  private async writeChunk(spaceId: string, refs: ProfileRef[], byId: Map<string, PassTarget>, fold: HistoryFold | null, step: string) {
    if (refs.length === 0) return;
    const run = async () => {
      const now = this.now();
      // NOTE: evaluated within the order of ALL the space's computations, so a
      // batch computation's value read through trait() is there, and the
      // engine keeps every computation's state (it drops states of
      // computations it is not given).
      const { ordered } = this.deps.all.forSpace(spaceId);
      const loaded = await this.deps.profiles.load(refs);
      const pending: PendingChange[] = [];
      const historical = [...byId.values()].filter((t) => t.historical);
      for (const profile of loaded) {
        const states = fold
          ? fold.statesOf(profile.profileId).map((s) => ({ ...s, pass: byId.get(s.computation.id)!.pass }))
          : historical.map((t) => ({ computation: t.compiled, state: null, pass: t.pass }));
        const changes = [...addHistory(profile, ordered, states, step, now), ...reevaluate(profile, ordered, (c) => byId.has(c.id), now)];
        for (const change of changes) {
          const target = byId.get(change.computation.id);
          // Another computation changes here only if its stored value was stale (a new version the evaluator has not seen yet).
          const why: ChangeReason = target ? target.reason : 'backfill';
          const cause = `${why}@${change.computation.id}@${target?.pass ?? [...byId.values()][0]!.pass}`;
          pending.push({ profile, change, reason: why, occurredAt: now, cause });
        }
      }
      // Wake-ups follow the realtime computations, as the evaluator sets them.
      const wake = this.deps.realtime.forSpace(spaceId).ordered;
      await this.deps.committer.commit(
        loaded.map((profile) => ({ profile, ordered: wake })),
        pending,
      );
    };
    // The history writes hold the locks already (taken to check where each profile lives).
    if (fold) await run();
    else await this.deps.profiles.withLocks(refs, run);
  }
}
