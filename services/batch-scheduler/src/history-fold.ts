// The pure part of a historical backfill: engage.events.resolved replayed
// from its start folds into one small incremental state per (profile,
// computation), for the computations being backfilled only. No Kafka, Redis
// or clock here: the replay shell (history-replay.ts) feeds decoded events,
// the write shell (backfill.pass.ts) hands the states to addHistory().
//
// Only events that arrived BEFORE a computation's countsEventsFrom fold in:
// real time counts the others (see computations.registry.ts), so the two
// never count the same event. The apply code is the engine's incremental
// evaluator, the one the realtime evaluator runs: same semantics.
import {
  compileIncremental,
  eventNameOf,
  type CompiledComputation,
  type EngineEvent,
  type IncrementalEvaluator,
  type IncrementalState,
} from '@engage/engine';
import { toEngineEvent } from '@engage/profile-store';
import { eventKey, type ResolvedEvent } from '@engage/schemas';

export interface FoldStats {
  folded: number;
  duplicates: number;
  malformed: number;
}

export class HistoryFold {
  private readonly targets: Array<{ c: CompiledComputation; ev: IncrementalEvaluator }>;
  /** profile id -> computation id -> state (created on the first event that matters). */
  private readonly states = new Map<string, Map<string, IncrementalState>>();
  /** Recent event ids per partition: a redelivered chunk re-produced by the resolver lands close to the original. */
  private readonly recent = new Map<number, { current: Set<string>; previous: Set<string> }>();
  readonly stats: FoldStats = { folded: 0, duplicates: 0, malformed: 0 };

  /**
   * @param now the pass's processing time: the horizon every apply is given
   *   (non-decreasing per state, as the evaluator's contract asks).
   * @param dedupeWindow event ids remembered per partition to drop redeliveries.
   */
  constructor(
    targets: CompiledComputation[],
    private readonly now: number,
    private readonly dedupeWindow = 50_000,
  ) {
    this.targets = targets.map((c) => ({ c, ev: compileIncremental(c.ast) }));
  }

  /** Folds one replayed event, already attributed to the profile it counts for (merges followed). */
  add(partition: number, profileId: string, e: ResolvedEvent): void {
    const eventId = eventKey(e);
    if (this.isDuplicate(partition, eventId)) {
      this.stats.duplicates++;
      return;
    }
    let event: EngineEvent & { arrivedAt: number };
    try {
      event = toEngineEvent(e, eventId);
    } catch {
      this.stats.malformed++; // the evaluator dead-letters it: it counts nowhere
      return;
    }
    const name = eventNameOf(event);
    if (name === undefined) return;
    for (const { c, ev } of this.targets) {
      if (!ev.eventNames.has(name) || event.arrivedAt >= c.countsEventsFrom) continue;
      let byId = this.states.get(profileId);
      if (!byId) this.states.set(profileId, (byId = new Map()));
      let s = byId.get(c.id);
      if (!s) byId.set(c.id, (s = ev.initState()));
      ev.apply(s, event, this.now);
      this.stats.folded++;
    }
  }

  /** Profiles with some folded state. */
  profileIds(): string[] {
    return [...this.states.keys()];
  }

  /** The states of one profile, one entry per target (null: nothing replayed for it). */
  statesOf(profileId: string): Array<{ computation: CompiledComputation; state: IncrementalState | null }> {
    const byId = this.states.get(profileId);
    return this.targets.map(({ c }) => ({ computation: c, state: byId?.get(c.id) ?? null }));
  }

  /**
   * Moves a profile's states onto another (the profile was merged into it
   * after the replay read its events): the union of both histories.
   */
  moveTo(from: string, to: string): void {
    const src = this.states.get(from);
    if (!src || from === to) return;
    this.states.delete(from);
    const dst = this.states.get(to);
    if (!dst) {
      this.states.set(to, src);
      return;
    }
    for (const { c, ev } of this.targets) {
      const a = src.get(c.id);
      if (!a) continue;
      const b = dst.get(c.id);
      dst.set(c.id, b ? ev.merge(a, b) : a);
    }
  }

  private isDuplicate(partition: number, id: string): boolean {
    let r = this.recent.get(partition);
    if (!r) this.recent.set(partition, (r = { current: new Set(), previous: new Set() }));
    if (r.current.has(id) || r.previous.has(id)) return true;
    r.current.add(id);
    // Two generations: at least the last `dedupeWindow` ids are remembered, at most twice that.
    if (r.current.size >= this.dedupeWindow) {
      r.previous = r.current;
      r.current = new Set();
    }
    return false;
  }
}
