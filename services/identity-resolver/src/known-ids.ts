// Ids this resolver has seen on one profile, so that an event whose ids all
// resolved to one profile lately skips the identity-graph script: most events
// come from people already known by every id they carry, and for those the
// script only reads (its fast path: one MGET, answer 'P' .. profile).
//
// Why an answer from here is safe:
// - an id never leaves its profile except when that whole profile is merged
//   into another (a merge rewrites every id of the merged profile to the
//   survivor; nothing else removes or moves an id). So ids seen together on
//   one profile are still on one profile: never two people joined, never one
//   split;
// - the answer can name a profile that a merge elsewhere (another replica, a
//   partition this one does not own) has since folded into a survivor. Events
//   resolved to it are what the evaluator already meets when a merge races
//   an event: it re-addresses them to the survivor under the profile's lock
//   (the profile's `:into`; realtime-evaluator evaluate.step.ts), and backfills
//   follow the alias the same way. The entries expire (ttlMs), so an id asked
//   for again after a merge soon reaches the script and its survivor;
// - the script's other work on such an event is left to it: an event with a
//   group (account link) or an id type whose limit has a time window (the
//   script records when each id was last seen) never uses this (resolve.step);
// - a redelivered event that announced a change is answered by the script
//   from its result cache (res:<eventKey>) so that it announces it again. Ids
//   are remembered only after the chunk's records were acknowledged by Kafka,
//   so a chunk that failed before that (the case the result cache is for) is
//   retried against the script, never answered from here.
// NOTE: pure (no IO); one per resolver process, shared by its partitions.
import type { ExternalId } from '@engage/identity';

export interface KnownIdsConfig {
  /** Ids kept at most (the oldest remembered go first); 0: none, every event asks the script. */
  maxEntries: number;
  /** How long an id is answered from here after it was last remembered, ms. */
  ttlMs: number;
}

/** space -> id type -> id value -> profile id: nested, so that a lookup builds no key string. */
type Generation = Map<string, Map<string, Map<string, string>>>;

export class KnownIds {
  // Two generations instead of an entry per id with its own expiry: remembering is a Map.set, and
  // forgetting drops a whole generation at once (no per-entry objects, no deletes for the GC to
  // chase). An id is answered from the generation it was remembered in and the next one: about
  // ttlMs at most, and at most about maxEntries ids are held.
  private current: Generation = new Map();
  private previous: Generation = new Map();
  private currentSize = 0;
  private previousSize = 0;
  private startedAt: number;

  constructor(
    private readonly config: KnownIdsConfig,
    private readonly deps: { now?: () => number } = {},
  ) {
    this.startedAt = this.now();
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  get size(): number {
    return this.currentSize + this.previousSize;
  }

  /** Starts a new generation when the current one is full or old; the one before it is forgotten. */
  private age(): void {
    const now = this.now();
    if (now - this.startedAt < this.config.ttlMs / 2 && this.currentSize < this.config.maxEntries / 2) return;
    // As old as an entry may get: nothing in the current generation is young enough to keep either.
    const keep = now - this.startedAt < this.config.ttlMs;
    this.previous = keep ? this.current : new Map();
    this.previousSize = keep ? this.currentSize : 0;
    this.current = new Map();
    this.currentSize = 0;
    this.startedAt = now;
  }

  private static find(g: Generation, spaceId: string, id: ExternalId): string | undefined {
    return g.get(spaceId)?.get(id.type)?.get(id.id);
  }

  /** The profile every one of these ids was last seen on, or null when some id is unknown, forgotten, or on another profile. */
  profileOf(spaceId: string, ids: ExternalId[]): string | null {
    if (ids.length === 0 || this.config.maxEntries === 0) return null;
    this.age();
    let profileId: string | null = null;
    for (const id of ids) {
      const found = KnownIds.find(this.current, spaceId, id) ?? KnownIds.find(this.previous, spaceId, id);
      if (found === undefined || (profileId !== null && found !== profileId)) return null;
      profileId = found;
    }
    return profileId;
  }

  /** These ids are on this profile (as the graph answered just now). */
  remember(spaceId: string, ids: ExternalId[], profileId: string): void {
    if (this.config.maxEntries === 0) return;
    this.age();
    let types = this.current.get(spaceId);
    if (!types) this.current.set(spaceId, (types = new Map()));
    for (const id of ids) {
      let values = types.get(id.type);
      if (!values) types.set(id.type, (values = new Map()));
      const before = values.size;
      values.set(id.id, profileId);
      this.currentSize += values.size - before;
    }
  }
}
