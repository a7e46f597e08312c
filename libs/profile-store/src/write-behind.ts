// The realtime evaluator's write-behind (issue 18): a partition's profiles
// belong to one replica at a time, so between two flushes that replica keeps
// the states it evaluated in memory, under their locks, and saves them all at
// once every `flushMs` (one AtomicWrites MULTI for every profile touched in the
// interval, however many chunks touched it), then releases the locks.
//
// The crash rule holds as it does for the per-chunk save (ChangeCommitter):
// - a chunk's changes are produced (acked) before its state can be saved:
//   hold() is called only after produce(), and a flush snapshots only while
//   no chunk is in flight (enter() .. leave());
// - offsets are committed only once durable() resolves (BatchConsumer
//   writeBehind): a crash before the flush redelivers the chunks since the
//   last one, which recompute the same changes with the same change_ids from
//   the stored state; after it, their event ids are in the stored :seen sets;
// - every other writer (merges, expiry, backfills, accounts) takes the
//   profile's lock, so it waits for the flush that releases it and then reads
//   what was saved. A profile stays held for at most one interval (all are
//   released at every flush), far below the lock's TTL.
// NOTE: a flush that fails (Redis down) keeps everything held and is retried
// with backoff; save() leaves the profile objects unchanged when its write
// fails, so the retry writes the same thing. Durability waiters of the failed
// flush are rejected and wait for the next one (BatchConsumer retries).
// NOTE: a profile's lock is taken with one attempt; on contention this
// process first flushes (releasing all it holds: the other writer may be
// waiting for one of them, and writers take all of their locks or none),
// then retries with backoff until `lockWaitMs`.
import { nextChangeAt, type CompiledComputation } from '@engage/engine';
import { lockOwner } from '@engage/redis';
import type { MembershipUpdate, ProfileRef, ProfileStateRepository, StoredProfile } from './profile-state.repository';

const refKey = (r: ProfileRef) => `${r.spaceId}|${r.profileId}`;

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A rejection nobody waits for is not an unhandled one: the next flush covers it.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

export interface WriteBehindConfig {
  /** Longest time a touched profile waits for its save (ms). */
  flushMs: number;
  /** Profiles held at once: past this a flush starts right away (memory, and other writers' waits). */
  maxProfiles?: number;
  /** How long enter() keeps trying to take a lock another writer holds (ms); default 60 s. */
  lockWaitMs?: number;
}

export class WriteBehindProfiles {
  private readonly owner = lockOwner();
  /** Profiles evaluated since the last flush, locked by this process; with their space's computations (wake-ups). */
  private readonly held = new Map<string, { profile: StoredProfile; ordered: CompiledComputation[] }>();
  private memberships: MembershipUpdate[] = [];
  /** Profiles of the chunks in flight (enter .. leave): one chunk at a time per profile. */
  private readonly busy = new Set<string>();
  private inflight = 0;
  /** Woken by every leave(): enter() waiting on a busy profile, a flush waiting for no chunk in flight. */
  private changed = deferred();
  /** Set while a flush waits for the chunks in flight and writes: enter() waits for it. */
  private gate: Promise<void> | null = null;
  /** The running flush: before its snapshot, work that ends now is still in it. */
  private running: { done: Deferred; snapshotTaken: boolean; holds: number } | null = null;
  /** hold() calls so far: a flush that snapshotted at this count holds everything. */
  private holds = 0;
  /** Durability of work that ended after the running flush's snapshot: the next flush resolves it. */
  private next: Deferred | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly config: WriteBehindConfig,
    private readonly deps: {
      profiles: ProfileStateRepository;
      now?: () => number;
      onError?: (err: unknown) => void;
      onFlush?: (stats: { profiles: number; seconds: number }) => void;
    },
  ) {}

  /** The copy this process holds of a profile (current: locked since it was loaded), if any. */
  get(ref: ProfileRef): StoredProfile | undefined {
    return this.held.get(refKey(ref))?.profile;
  }

  get size(): number {
    return this.held.size;
  }

  /**
   * A chunk's work on these profiles starts: the locks of those not held are
   * taken (returned: the caller hands them to hold() or releases them with
   * release()), and until leave() no flush snapshots and no other chunk works
   * on them.
   */
  async enter(refs: ProfileRef[]): Promise<ProfileRef[]> {
    const deadline = Date.now() + (this.config.lockWaitMs ?? 60_000);
    const taken = new Set<string>();
    const locked: ProfileRef[] = [];
    for (let attempt = 0; ; attempt++) {
      while (this.gate) await this.gate;
      if (refs.some((r) => this.busy.has(refKey(r)))) {
        await this.changed.promise;
        continue;
      }
      const missing = refs.filter((r) => !this.held.has(refKey(r)) && !taken.has(refKey(r)));
      if (missing.length === 0) {
        // Synchronous from the checks above: no flush started in between.
        this.inflight++;
        for (const r of refs) this.busy.add(refKey(r));
        return locked;
      }
      if (await this.deps.profiles.tryLocks(missing, this.owner)) {
        for (const r of missing) taken.add(refKey(r));
        locked.push(...missing);
        continue; // a flush may have released held ones meanwhile: checked again
      }
      if (Date.now() > deadline) {
        await this.release(locked);
        throw Object.assign(new Error(`profile locks still held by another writer after ${this.config.lockWaitMs ?? 60_000} ms`), {
          retriable: true,
        });
      }
      if (this.held.size > 0) await this.flush().catch(() => {});
      await new Promise((r) => setTimeout(r, Math.min(200, 5 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random())));
    }
  }

  /** The chunk that entered with these refs is done (after hold() or release()). */
  leave(refs: ProfileRef[]): void {
    for (const r of refs) this.busy.delete(refKey(r));
    this.inflight--;
    const woken = this.changed;
    this.changed = deferred();
    woken.resolve();
  }

  /** Locks enter() took that are not kept (the chunk failed, or the profile moved by a merge). */
  async release(refs: ProfileRef[]): Promise<void> {
    await this.deps.profiles.releaseLocks(refs, this.owner);
  }

  /**
   * After a chunk's changes are produced: its profiles wait for the next
   * flush, with the membership writes of those changes.
   */
  hold(touched: Array<{ profile: StoredProfile; ordered: CompiledComputation[] }>, memberships: MembershipUpdate[]): void {
    this.holds++;
    for (const t of touched) this.held.set(refKey(t.profile), t);
    for (const m of memberships) this.memberships.push(m);
    this.schedule(this.held.size >= (this.config.maxProfiles ?? 5_000) ? 0 : this.config.flushMs);
  }

  /** Resolves once everything held when called is saved (rejects when that flush fails: ask again). */
  durable(): Promise<void> {
    // The running flush covers everything until its snapshot, and after it as long as nothing was held since.
    if (this.running && (!this.running.snapshotTaken || this.running.holds === this.holds)) return this.running.done.promise;
    if (this.held.size === 0 && this.memberships.length === 0) return this.running?.done.promise ?? Promise.resolve();
    this.next ??= deferred();
    this.schedule(this.config.flushMs);
    return this.next.promise;
  }

  /** Saves everything held now (and releases it). */
  flush(): Promise<void> {
    const done = this.durable();
    this.schedule(0);
    return done;
  }

  /** No more timers (the consumer flushed on its way out). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(ms: number): void {
    if (this.stopped && ms > 0) return;
    if (this.timer) {
      if (ms > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run();
    }, ms);
  }

  private async run(): Promise<void> {
    if (this.running) {
      // One flush at a time; the waiters of the next one get it when this one is done.
      await this.running.done.promise.catch(() => {});
      if (this.next && !this.running) this.schedule(0);
      return;
    }
    const done = this.next ?? deferred();
    this.next = null;
    const flush = { done, snapshotTaken: false, holds: 0 };
    this.running = flush;
    let open!: () => void;
    this.gate = new Promise<void>((r) => (open = r));
    const started = process.hrtime.bigint();
    let count = 0;
    try {
      while (this.inflight > 0) await this.changed.promise;
      flush.snapshotTaken = true;
      flush.holds = this.holds;
      const batch = [...this.held.values()];
      count = batch.length;
      if (batch.length > 0 || this.memberships.length > 0) {
        const now = this.deps.now?.() ?? Date.now();
        await this.deps.profiles.save(
          batch.map(({ profile, ordered }) => ({ profile, wakeAt: nextChangeAt(profile, ordered, now) })),
          this.memberships,
        );
        this.held.clear();
        this.memberships = [];
        // A lock left behind (Redis gone just now) expires by its TTL.
        await this.release(batch.map((b) => b.profile)).catch((err: unknown) => this.deps.onError?.(err));
      }
      this.failures = 0;
      done.resolve();
      this.deps.onFlush?.({ profiles: count, seconds: Number(process.hrtime.bigint() - started) / 1e9 });
    } catch (err) {
      this.failures++;
      done.reject(err);
      this.deps.onError?.(err);
      this.next ??= deferred();
      this.schedule(Math.min(5000, 100 * 2 ** Math.min(this.failures, 6)));
    } finally {
      this.running = null;
      this.gate = null;
      open();
      if (this.next && !this.timer) this.schedule(this.config.flushMs);
    }
  }
}

/**
 * What a held profile was before a chunk changed it, for the undo of a chunk
 * that fails after changing it (its changes may not be out, so neither may
 * its state be). The profile is plain data (it round-trips through the stored
 * document), so a recursive copy does: ~4x cheaper than structuredClone,
 * which cost more than the save write-behind spares. The history appended
 * since the last flush (`events`) is not copied: events are never changed
 * once appended except for their `inc` mark, so the list's length and the
 * marks are what it takes to put it back.
 */
export interface HeldSnapshot {
  fields: Record<string, unknown>;
  events: StoredProfile['events'];
  marks: Array<string | undefined>;
}

export function snapshotHeld(profile: StoredProfile): HeldSnapshot {
  const fields: Record<string, unknown> = {};
  for (const key in profile) {
    if (key === 'events') continue;
    fields[key] = copyPlain((profile as unknown as Record<string, unknown>)[key]);
  }
  const events = profile.events.slice();
  return { fields, events, marks: events.map((e) => e.inc) };
}

/** Puts a profile object back as its snapshot says, keeping the object (the caller's maps point at it). */
export function restoreHeld(profile: StoredProfile, snapshot: HeldSnapshot): void {
  const target = profile as unknown as Record<string, unknown>;
  for (const key of Object.keys(target)) delete target[key];
  Object.assign(target, snapshot.fields);
  snapshot.events.forEach((e, i) => {
    const mark = snapshot.marks[i];
    if (mark === undefined) delete e.inc;
    else e.inc = mark;
  });
  profile.events = snapshot.events;
}

function copyPlain(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copyPlain(value[i]);
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const key in value as Record<string, unknown>) out[key] = copyPlain((value as Record<string, unknown>)[key]);
  return out;
}
