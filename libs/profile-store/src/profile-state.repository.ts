// Per-profile evaluation state in Redis, per profile (one hash tag):
//   :state  everything but the history (traits, current values, the
//           incremental states, identifiers, metadata) as a compact
//           MessagePack document (state-codec.ts; computations named by per-space slots,
//           the rt:slots:{space} hashes of ComputationSlots): read and written
//           by every chunk that touches the profile;
//   :hist   LIST of the bounded history (JSON events), appended with RPUSH and
//           trimmed with LTRIM; read only when needed (a new or edited
//           computation, a merge, a backfill, the Profile API);
//   :seen   ZSET of the history's event ids (eventIdOf: source, messageId and
//           receive time; score: arrival): redelivered events are recognised
//           without reading the history, and another event reusing a
//           messageId is not mistaken for one;
//   :ids    the identifiers as identifiersJson (CSV exports);
//   :ver    a token every save writes anew (see the hot-state cache below);
//   :into   set when the profile was merged into another: the survivor's id.
//           Kept (no TTL, a few bytes) because events resolved to the merged
//           profile before the merge can reach the evaluator after it (the
//           merge is keyed by the survivor, on another partition); they are
//           applied to the survivor, never to a recreated merged profile;
// plus a wake-up sorted set for window expiry and a member set per computation
// (an audience's members; a computed trait's profiles with a value: its size).
// NOTE: the history is kept apart because it is by far the largest part (up to
// maxEvents full events) and the realtime path only appends to it: reading and
// rewriting it per chunk cost more than the evaluation itself.
// Loads are one pipeline per chunk; saves one MULTI per chunk
// (AtomicWrites), so a chunk's state lands whole or not at all.
import { eventIdOf, type ProfileState } from '@engage/engine';
import { acrossSlots, isCluster, lockOwner, luaScript, RedisLock, type LuaScript, type RedisClient } from '@engage/redis';
import { identifiersJson } from './audience-csv';
import { AtomicWrites } from './atomic-writes';
import { ComputationSlots } from './computation-slots';
import { decodeState, encodeState, isCompact, packState, slotsOf, unpackState, type CompactState } from './state-codec';

export interface ProfileIdentifiers {
  userId: string | null;
  anonymousId: string | null;
  externalIds: Array<{ type: string; id: string }>;
}

/** What the Profile API's /metadata answers: first and last event seen (event time). */
export interface ProfileMetadata {
  createdAt: number;
  updatedAt: number;
  firstMessageId: string;
  firstSourceId: string;
  lastMessageId: string;
  lastSourceId: string;
}

export interface StoredProfile extends ProfileState, ProfileIdentifiers {
  /** Set when the history holds events the incremental states have not seen (a merge or backfill saved them). */
  unseenEvents?: boolean;
  /** How many events the stored history holds (absent on older documents): trims only when it outgrows the bound. */
  historyLength?: number;
  spaceId: string;
  profileId: string;
  /** Absent on profiles stored before it existed. */
  metadata?: ProfileMetadata;
  /** Accounts (account profile ids) this user is linked to by group calls. */
  accounts?: string[];
  /** Account profiles only: the linked users' profile ids. */
  users?: string[];
  /**
   * How many commits emitted changes for this profile (ChangeCommitter): each
   * change record carries it (header CHANGE_SEQ_HEADER), so a reader of this
   * state (a connection's initial sync) knows which records it already reflects.
   */
  changeSeq?: number;
}

/** Folds one event into the profile's metadata (events may arrive out of order). */
export function noteMetadata(profile: StoredProfile, e: { timestamp: number; messageId: string; sourceId: string }): void {
  const m = profile.metadata;
  if (!m) {
    profile.metadata = {
      createdAt: e.timestamp,
      updatedAt: e.timestamp,
      firstMessageId: e.messageId,
      firstSourceId: e.sourceId,
      lastMessageId: e.messageId,
      lastSourceId: e.sourceId,
    };
    return;
  }
  if (e.timestamp < m.createdAt) Object.assign(m, { createdAt: e.timestamp, firstMessageId: e.messageId, firstSourceId: e.sourceId });
  if (e.timestamp >= m.updatedAt) Object.assign(m, { updatedAt: e.timestamp, lastMessageId: e.messageId, lastSourceId: e.sourceId });
}

export interface ProfileRef {
  spaceId: string;
  profileId: string;
}

export interface MembershipUpdate {
  computationId: string;
  profileId: string;
  member: boolean;
}

/** A profile whose wake-up is due, with the instant it was due at (part of the expiry change_id). */
export interface DueProfile extends ProfileRef {
  dueAt: number;
}

const CLAIM_DUE_LUA = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due, 2 do redis.call('ZADD', KEYS[1], ARGV[3], due[i]) end
return due
`;

// The realtime load of a chunk's profiles, one call. Per profile, KEYS: its
// :ver, :state and :seen; ARGV: the token of the copy the caller holds ('' for
// none, '*' for a copy it knows is current: it holds the profile's lock since
// it loaded it), then how many messageIds to look up, then those ids. Returns
// { documents, seen }: per profile 1 when the stored token is the caller's
// (its copy is current: the document is neither sent nor parsed), else the
// stored document (nil: none); and per id asked, in order, 1 if the profile's
// history holds it (a redelivery), else 0.
const LOAD_FOR_EVENTS_LUA = `
local docs, seen = {}, {}
local a = 1
for i = 1, #KEYS / 3 do
  local tok, n = ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  if tok == '*' or (tok ~= '' and redis.call('GET', KEYS[3 * i - 2]) == tok) then docs[i] = 1
  else docs[i] = redis.call('GET', KEYS[3 * i - 1]) end
  -- unpack() is bounded by Lua's C stack: at most 1000 ids per call.
  local done = 0
  while done < n do
    local m = math.min(n - done, 1000)
    local scores = redis.call('ZMSCORE', KEYS[3 * i], unpack(ARGV, a + done, a + done + m - 1))
    for j = 1, m do seen[#seen + 1] = scores[j] and 1 or 0 end
    done = done + m
  end
  a = a + n
end
return { docs, seen }
`;

/** The repository's scripts, called by SHA (luaScript). */
interface ProfileScripts {
  /** Answers bulk strings as Buffers (the state documents are binary). */
  loadForEvents: LuaScript<unknown>;
  claimDue: LuaScript<string[]>;
}

/** FNV-1a: a stable, cheap shard choice. */
function shardOf(text: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0) % shards;
}

const byTime = (a: { timestamp: number; messageId: string }, b: { timestamp: number; messageId: string }) =>
  a.timestamp - b.timestamp || (a.messageId < b.messageId ? -1 : a.messageId > b.messageId ? 1 : 0);

export function emptyProfile(ref: ProfileRef): StoredProfile {
  return { ...ref, events: [], traits: {}, values: {}, userId: null, anonymousId: null, externalIds: [] };
}

export class ProfileStateRepository {
  constructor(
    private readonly config: {
      keyPrefix: string;
      /** Wake-up sorted sets (one cluster slot each); default 8. */
      wakeShards?: number;
      /** Profile write locks expire after this long if their holder dies (ms); default 30 s. */
      lockTtlMs?: number;
      /** Events kept per profile in the stored history (the evaluator's bound); default 200. */
      maxEvents?: number;
      /**
       * Hot states this process keeps after saving them (see HotStateCache);
       * 0 (default): none. Only loadForEvents(..., { cached: true }) uses it.
       */
      hotStateCacheSize?: number;
    },
    private readonly deps: { redis: RedisClient },
  ) {
    this.cache = new HotStateCache(config.hotStateCacheSize ?? 0);
    this.locks = new RedisLock(deps.redis);
    this.scripts = {
      loadForEvents: luaScript(deps.redis, LOAD_FOR_EVENTS_LUA, { buffers: true }),
      claimDue: luaScript<string[]>(deps.redis, CLAIM_DUE_LUA, { keys: 1 }),
    };
    this.slots = new ComputationSlots((spaceId) => `${config.keyPrefix}rt:slots:{${spaceId}}`, deps.redis);
  }

  private readonly slots: ComputationSlots;

  private readonly cache: HotStateCache;
  private readonly locks: RedisLock;
  private readonly scripts: ProfileScripts;
  /** Distinguishes this process's save tokens from every other writer's. */
  private readonly tokenPrefix = `${process.pid.toString(36)}.${Math.random().toString(36).slice(2, 10)}.`;
  private tokenCounter = 0;

  /** Profiles handed out by a cached load: after their save, kept in the cache. */
  private readonly cacheable = new WeakSet<StoredProfile>();
  /** Cached copies handed out: the identifiersJson their :ids key holds (its token proves nobody wrote since). */
  private readonly storedIdentifiers = new WeakMap<StoredProfile, string>();
  /** identifiersJson per externalIds array, with the length it had: ids are only appended (addExternalId), so an array of the same length holds the same ids. */
  private readonly identifiersOfArray = new WeakMap<ProfileIdentifiers['externalIds'], { length: number; json: string }>();

  private identifiersJsonOf(ids: ProfileIdentifiers['externalIds']): string {
    const known = this.identifiersOfArray.get(ids);
    if (known && known.length === ids.length) return known.json;
    const json = identifiersJson(ids);
    this.identifiersOfArray.set(ids, { length: ids.length, json });
    return json;
  }

  /** How the hot-state cache is doing (metrics, tests). */
  cacheStats(): { size: number; hits: number; misses: number } {
    return { size: this.cache.size, hits: this.cache.hits, misses: this.cache.misses };
  }

  private get maxEvents(): number {
    return this.config.maxEvents ?? 200;
  }

  private get shards(): number {
    return this.config.wakeShards ?? 8;
  }

  /** `{space:profile}` hash tag: one profile's keys share a cluster slot. */
  stateKey(ref: ProfileRef): string {
    return `${this.config.keyPrefix}rt:{${ref.spaceId}:${ref.profileId}}:state`;
  }
  /**
   * The profile's identifiers as identifiersJson: a small string next to the
   * state document, so an audience export reads a million profiles' ids with
   * one MGET per page instead of the state documents or one call per profile.
   */
  idsKey(ref: ProfileRef): string {
    return `${this.config.keyPrefix}rt:{${ref.spaceId}:${ref.profileId}}:ids`;
  }
  /**
   * Wake-ups are sharded by profile over several sorted sets, each its own
   * hash tag, so that in a Redis Cluster they spread over nodes and scheduler
   * replicas claim from different sets without contending on one key.
   */
  wakeKeyOf(ref: ProfileRef): string {
    return this.wakeShardKey(shardOf(`${ref.spaceId}|${ref.profileId}`, this.shards));
  }
  wakeShardKey(shard: number): string {
    return `${this.config.keyPrefix}rt:wake:{${shard}}`;
  }
  /** Every stored (user) profile of a space: progress totals and space-scoped scans. */
  spaceProfilesKey(spaceId: string): string {
    return `${this.config.keyPrefix}rt:profiles:{${spaceId}}`;
  }
  histKey(ref: ProfileRef): string {
    return `${this.config.keyPrefix}rt:{${ref.spaceId}:${ref.profileId}}:hist`;
  }
  seenKey(ref: ProfileRef): string {
    return `${this.config.keyPrefix}rt:{${ref.spaceId}:${ref.profileId}}:seen`;
  }
  /** The survivor this profile was merged into (absent: not merged). */
  mergedIntoKey(ref: ProfileRef): string {
    return `${this.config.keyPrefix}rt:{${ref.spaceId}:${ref.profileId}}:into`;
  }
  verKey(ref: ProfileRef): string {
    return `${this.config.keyPrefix}rt:{${ref.spaceId}:${ref.profileId}}:ver`;
  }
  lockKey(ref: ProfileRef): string {
    return `${this.config.keyPrefix}rt:{${ref.spaceId}:${ref.profileId}}:lock`;
  }
  /** `{computationId}` hash tag: the set and its export snapshots share a cluster slot (COPY needs that). */
  membersKey(computationId: string): string {
    return `${this.config.keyPrefix}rt:members:{${computationId}}`;
  }

  /** Whole profiles, history included (one pipeline). */
  async load(refs: ProfileRef[]): Promise<StoredProfile[]> {
    if (refs.length === 0) return [];
    const raw = await this.getBuffers(refs.map((r) => this.stateKey(r)));
    const profiles = await this.parseAll(refs, raw);
    await this.loadHistory(profiles);
    return profiles;
  }

  /**
   * Profiles without their history, one MGET, for reads that never save
   * (the dispatcher's Trait Enrichment reads computed trait values).
   */
  async loadStates(refs: ProfileRef[]): Promise<StoredProfile[]> {
    if (refs.length === 0) return [];
    return this.parseAll(refs, await this.getBuffers(refs.map((r) => this.stateKey(r))));
  }

  /**
   * Profiles without their history (`events` empty, to be appended to), for
   * the realtime path; `seen` tells which of the given event ids (eventIdOf)
   * each one already holds (a redelivery). Call loadHistory for those that needsHistory.
   */
  async loadForEvents(
    refs: ProfileRef[],
    eventIds: string[][] = refs.map(() => []),
    options: {
      cached?: boolean;
      /**
       * Per ref, the copy the caller holds under the profile's lock since it
       * loaded it (write-behind): current whatever the stored token says, so
       * only `seen` is read for it. Undefined entries are loaded.
       */
      held?: Array<StoredProfile | undefined>;
    } = {},
  ): Promise<{ profiles: StoredProfile[]; seen: Array<Set<string>> }> {
    if (refs.length === 0) return { profiles: [], seen: [] };
    const cached = options.cached === true && this.cache.capacity > 0;
    const held = options.held ?? [];
    // Taken out of the cache: the caller now owns these objects, and only a
    // successful save puts them back (a failed chunk leaves no stale copy).
    const copies = cached ? refs.map((r, i) => (held[i] ? undefined : this.cache.take(this.stateKey(r)))) : [];
    const keys: string[] = [];
    const args: Array<string | number> = [];
    refs.forEach((r, i) => {
      keys.push(this.verKey(r), this.stateKey(r), this.seenKey(r));
      args.push(held[i] ? '*' : (copies[i]?.token ?? ''), eventIds[i]!.length, ...eventIds[i]!);
    });
    const [docs, flags] = await this.loadForEventsScript(refs, eventIds, keys, args);
    const current = refs.map((_, i) => (held[i] !== undefined || copies[i] !== undefined) && docs[i] === 1);
    // Only the profiles not reused from memory are parsed (a parse of nothing builds an empty profile).
    const toParse = refs.flatMap((_, i) => (current[i] ? [] : [i]));
    const parsedList = await this.parseAll(
      toParse.map((i) => refs[i]!),
      toParse.map((i) => (docs[i] as Buffer | null) ?? null),
    );
    const parsed: Array<StoredProfile | undefined> = new Array(refs.length);
    toParse.forEach((i, j) => (parsed[i] = parsedList[j]));
    const profiles = refs.map((_, i) => {
      const own = held[i];
      if (own) return own;
      const copy = copies[i];
      if (copy && current[i]) {
        this.cache.hits++;
        this.storedIdentifiers.set(copy.profile, copy.idsJson);
        return copy.profile;
      }
      if (cached) this.cache.misses++;
      return parsed[i]!;
    });
    if (cached) for (const p of profiles) this.cacheable.add(p);
    let f = 0;
    const seen = eventIds.map((ids) => {
      const held = new Set<string>();
      for (const id of ids) if (flags[f++] === 1) held.add(id);
      return held;
    });
    return { profiles, seen };
  }

  /**
   * Profiles without their history, each with the token of the save it
   * reflects (:ver), read WITHOUT their locks: for work prepared ahead (window
   * expiry), committed later only where tokensOf() still answers the same
   * token under the locks (nobody saved the profile in between).
   */
  async loadWithTokens(refs: ProfileRef[]): Promise<{ profiles: StoredProfile[]; tokens: Array<string | null> }> {
    if (refs.length === 0) return { profiles: [], tokens: [] };
    // One MGET per profile at least: a profile's :ver and :state share its hash tag, and a save writes
    // both in one MULTI, so per profile the pair is consistent (on one node: one MGET for all).
    const raw = isCluster(this.deps.redis)
      ? (
          (await acrossSlots(
            this.deps.redis,
            refs.map((r) => ['mget', this.verKey(r), this.stateKey(r)]),
            { buffers: true },
          )) as Array<Array<Buffer | null>>
        ).flat()
      : await this.deps.redis.mgetBuffer(...refs.flatMap((r) => [this.verKey(r), this.stateKey(r)]));
    return {
      profiles: await this.parseAll(
        refs,
        refs.map((_, i) => raw[2 * i + 1] ?? null),
      ),
      tokens: refs.map((_, i) => raw[2 * i]?.toString('utf8') ?? null),
    };
  }

  /** The token of each profile's last save (null: never saved), for loadWithTokens' check. */
  async tokensOf(refs: ProfileRef[]): Promise<Array<string | null>> {
    if (refs.length === 0) return [];
    return (await this.getBuffers(refs.map((r) => this.verKey(r)))).map((b) => b?.toString('utf8') ?? null);
  }

  /** Reads the stored history into these profiles (those loaded without it); one pipeline. */
  async loadHistory(profiles: StoredProfile[]): Promise<void> {
    const todo = profiles.filter((p) => !this.historyLoaded.has(p));
    if (todo.length === 0) return;
    const results = await acrossSlots(
      this.deps.redis,
      todo.map((p) => ['lrange', this.histKey(p), 0, -1]),
    );
    todo.forEach((p, i) => {
      const list = results[i];
      // Events appended to the (partial) in-memory list since the load go after the stored ones.
      const stored = (list as string[]).map((e) => JSON.parse(e) as StoredProfile['events'][number]);
      p.events = [...stored, ...p.events].sort(byTime);
      this.historyLoaded.add(p);
    });
  }

  /** Profiles whose `events` is the whole history (else: only events appended since the load). */
  private readonly historyLoaded = new WeakSet<StoredProfile>();
  /**
   * The wake-up each profile object has in the wake set, as far as this
   * process knows (its last save of it, or none for a profile never stored);
   * absent: unknown, written with the next save.
   */
  private readonly storedWakeAt = new WeakMap<StoredProfile, number | null>();
  /** Profiles read from a stored document (already in their space's index). */
  private readonly stored = new WeakSet<StoredProfile>();

  /** The stored documents of these profiles (null: none stored), parsed; slots they name are resolved first. */
  private async parseAll(refs: ProfileRef[], raws: Array<Buffer | null>): Promise<StoredProfile[]> {
    const docs = raws.map((raw) => (raw === null ? null : unpackState(raw)));
    const slotsBySpace = new Map<string, number[]>();
    docs.forEach((doc, i) => {
      if (doc === null || !isCompact(doc)) return;
      const spaceId = refs[i]!.spaceId;
      const list = slotsBySpace.get(spaceId);
      if (list) list.push(...slotsOf(doc));
      else slotsBySpace.set(spaceId, slotsOf(doc));
    });
    for (const [spaceId, slots] of slotsBySpace) await this.slots.ensureSlots(spaceId, slots);
    return docs.map((doc, i) => this.parse(refs[i]!, doc));
  }

  private parse(ref: ProfileRef, doc: CompactState | StoredProfile | null): StoredProfile {
    if (doc === null) {
      const fresh = emptyProfile(ref);
      this.historyLoaded.add(fresh); // nothing stored: the empty history is the whole history
      this.storedWakeAt.set(fresh, null); // nor a wake-up (a deleted profile's went with it)
      return fresh;
    }
    // Documents of the readable form (saved before the compact one) are the profile itself.
    const p = isCompact(doc) ? decodeState(doc, ref, (slot) => this.slots.idOf(ref.spaceId, slot)) : doc;
    this.stored.add(p);
    // Documents saved before the history moved to its own key carry it inline: that is the whole history.
    if (p.events?.length) this.historyLoaded.add(p);
    else p.events = [];
    return p;
  }

  /**
   * Saves profiles, their next wake-up (null: none) and audience memberships
   * atomically (one MULTI of a script and an MSET: AtomicWrites). A profile this repository loaded whole (load, or
   * loadHistory) has its history stored as it is; any other profile object
   * (loadForEvents, or built by the caller) has its `events` appended to the
   * stored history. NOTE: so do not save a copy ({...p}) of a wholly loaded
   * profile: the copy is not known as whole, and its history would be
   * appended a second time.
   */
  async save(
    profiles: Array<{ profile: StoredProfile; wakeAt: number | null }>,
    memberships: MembershipUpdate[],
    deleted: Array<ProfileRef & { mergedInto?: string }> = [],
  ): Promise<void> {
    if (profiles.length === 0 && memberships.length === 0 && deleted.length === 0) return;
    // Every computation a document names needs its slot. Almost always all are known: the documents
    // are encoded with the known slots, and only a profile naming a computation without one (a new
    // computation: one call per space, rarely) is encoded again once its slots are assigned (below).
    const idsBySpace = new Map<string, Set<string>>();
    const unslotted: StoredProfile[] = [];
    const encodeKnown = (profile: StoredProfile): CompactState | null => {
      let missing = false;
      const doc = encodeState(profile, (id) => {
        const slot = this.slots.knownSlotOf(profile.spaceId, id);
        if (slot !== undefined) return slot;
        missing = true;
        let ids = idsBySpace.get(profile.spaceId);
        if (!ids) idsBySpace.set(profile.spaceId, (ids = new Set()));
        ids.add(id);
        return -1;
      });
      return missing ? null : doc;
    };
    // On a Cluster the states go last: see AtomicWrites.
    const tx = new AtomicWrites({ commitLast: (key) => key.endsWith(':state') });
    const saved: Array<{ profile: StoredProfile; token: string; idsJson: string; wholeHistory: boolean; wakeAt: number | null }> = [];
    // The profiles' historyLength before this save: put back if the write fails, so that a
    // caller still holding them (the evaluator's write-behind) can save them again unchanged.
    const lengths = new Map<StoredProfile, number | undefined>();
    for (const { profile, wakeAt } of profiles) {
      lengths.set(profile, profile.historyLength);
      const events = profile.events;
      const tok = profile.incremental?.tok;
      profile.unseenEvents = events.some((e) => !tok || e.inc !== tok) || undefined;
      const wholeHistory = this.historyLoaded.has(profile);
      const hist = this.histKey(profile);
      const seen = this.seenKey(profile);
      if (this.historyLoaded.has(profile)) {
        // The whole history is in memory (merges, backfills, expiry): store it as it is.
        tx.del(hist, seen);
      }
      if (events.length > 0) {
        tx.rpush(
          hist,
          events.map((e) => JSON.stringify(e)),
        );
        tx.zadd(
          seen,
          events.map((e) => [e.arrivedAt ?? e.timestamp, eventIdOf(e)]),
        );
      }
      if (this.historyLoaded.has(profile)) profile.historyLength = events.length;
      else {
        // Appended: keep the newest `maxEvents` (the bound the engine keeps in memory),
        // trimming only once the list outgrows it (unknown length: trim).
        const length = profile.historyLength === undefined ? Infinity : profile.historyLength + events.length;
        if (length > this.maxEvents) {
          tx.keepNewest(hist, seen, this.maxEvents);
        }
        profile.historyLength = Math.min(length, this.maxEvents);
      }
      const doc = encodeKnown(profile);
      if (doc) tx.set(this.stateKey(profile), packState(doc));
      else unslotted.push(profile);
      // A new token with every save, whoever the writer: a cached copy is current only while the token is its own.
      const token = this.tokenPrefix + (++this.tokenCounter).toString(36);
      tx.set(this.verKey(profile), token);
      const idsJson = this.identifiersJsonOf(profile.externalIds);
      // The identifiers rarely change: a cached copy knows what is stored.
      if (this.storedIdentifiers.get(profile) !== idsJson) tx.set(this.idsKey(profile), idsJson);
      saved.push({ profile, token, idsJson, wholeHistory, wakeAt });
      const member = `${profile.spaceId}|${profile.profileId}`;
      // Unchanged since this process stored it (most events leave the next window edge where it was): no write.
      // NOTE: a scheduler's claim moves the score without a save; left as it is, it still wakes the profile, a lease later at most.
      if (this.storedWakeAt.get(profile) !== wakeAt) {
        if (wakeAt === null) tx.zrem(this.wakeKeyOf(profile), member);
        else tx.zadd(this.wakeKeyOf(profile), [[wakeAt, member]]);
      }
      // Indexed once, when first saved (a profile read from Redis is in the index already).
      if (!profile.users && !this.stored.has(profile)) tx.sadd(this.spaceProfilesKey(profile.spaceId), profile.profileId);
    }
    for (const m of memberships) {
      if (m.member) tx.sadd(this.membersKey(m.computationId), m.profileId);
      else tx.srem(this.membersKey(m.computationId), m.profileId);
    }
    for (const ref of deleted) {
      tx.del(this.stateKey(ref), this.idsKey(ref), this.histKey(ref), this.seenKey(ref), this.verKey(ref));
      if (ref.mergedInto) tx.set(this.mergedIntoKey(ref), ref.mergedInto);
      tx.zrem(this.wakeKeyOf(ref), `${ref.spaceId}|${ref.profileId}`);
      tx.srem(this.spaceProfilesKey(ref.spaceId), ref.profileId);
      this.cache.take(this.stateKey(ref));
    }
    try {
      // The profiles naming new computations: their slots assigned, encoded again (a string write: sent with the others).
      for (const [spaceId, ids] of idsBySpace) await this.slots.ensureIds(spaceId, ids);
      for (const profile of unslotted)
        tx.set(this.stateKey(profile), packState(encodeState(profile, (id) => this.slots.slotOf(profile.spaceId, id))));
      await tx.exec(this.deps.redis);
    } catch (err) {
      for (const [profile, length] of lengths) profile.historyLength = length;
      throw err;
    }
    for (const { profile, token, idsJson, wholeHistory, wakeAt } of saved) {
      // What was appended is now stored: a second save of this object must not append it again.
      if (!wholeHistory) profile.events = [];
      const key = this.stateKey(profile);
      this.storedWakeAt.set(profile, wakeAt);
      if (!this.cacheable.has(profile)) {
        this.cache.take(key); // its token is stale now
        continue;
      }
      // What is stored now is the whole history: the copy goes back to the
      // realtime shape (no history in memory, later events appended).
      if (wholeHistory) {
        profile.events = [];
        this.historyLoaded.delete(profile);
      }
      this.stored.add(profile);
      this.cache.put(key, { token, profile, idsJson });
    }
  }

  /**
   * Claims profiles whose wake-up time has come: atomically pushes each one's
   * score `leaseMs` into the future, so another scheduler replica does not
   * take it too, and a replica that dies mid-way only delays it by the lease.
   * The commit of the evaluation then sets the real next wake-up.
   */
  async claimDue(now: number, limit: number, leaseMs: number): Promise<DueProfile[]> {
    const out: DueProfile[] = [];
    // Start at a random shard so replicas spread over the sets.
    const first = Math.floor(Math.random() * this.shards);
    for (let i = 0; i < this.shards && out.length < limit; i++) {
      const key = this.wakeShardKey((first + i) % this.shards);
      const flat = await this.scripts.claimDue(key, now, limit - out.length, now + leaseMs);
      for (let j = 0; j < flat.length; j += 2) {
        const m = flat[j]!;
        const k = m.indexOf('|');
        out.push({ spaceId: m.slice(0, k), profileId: m.slice(k + 1), dueAt: Number(flat[j + 1]) });
      }
    }
    return out;
  }

  /**
   * Takes the write locks of these profiles (all or none), retrying with
   * jitter until `waitMs`, runs `fn`, then releases them. Every writer of
   * profile state (events, merges, expiry, backfills) goes through this, so a
   * load-compute-produce-save cycle never overwrites another's save.
   * NOTE: the locks expire after `ttlMs` (a dead holder frees them); ttlMs is
   * far above a chunk's processing time. On a Redis Cluster each lock is its
   * own script call (RedisLock.acquireAll), still all or none.
   */
  /**
   * One attempt at these profiles' write locks for `owner` (all or none), for
   * a holder that keeps them across calls (the evaluator's write-behind):
   * true when all are taken. Release them with releaseLocks.
   */
  async tryLocks(refs: ProfileRef[], owner: string, ttlMs?: number): Promise<boolean> {
    const keys = [...new Set(refs.map((r) => this.lockKey(r)))];
    if (keys.length === 0) return true;
    return (await this.locks.acquireAll(keys, owner, ttlMs ?? this.config.lockTtlMs ?? 30_000)) === 0;
  }

  /** Releases the locks tryLocks took for `owner` (a lock another owner holds now is left alone). */
  async releaseLocks(refs: ProfileRef[], owner: string): Promise<void> {
    const keys = [...new Set(refs.map((r) => this.lockKey(r)))];
    if (keys.length > 0) await this.locks.releaseAll(keys, owner);
  }

  async withLocks<T>(refs: ProfileRef[], fn: () => Promise<T>, opts: { ttlMs?: number; waitMs?: number } = {}): Promise<T> {
    const ttlMs = opts.ttlMs ?? this.config.lockTtlMs ?? 30_000;
    const deadline = Date.now() + (opts.waitMs ?? 60_000);
    const keys = [...new Set(refs.map((r) => this.lockKey(r)))];
    if (keys.length === 0) return fn();
    const owner = lockOwner();
    for (let attempt = 0; ; attempt++) {
      const held = await this.locks.acquireAll(keys, owner, ttlMs);
      if (held === 0) break;
      if (Date.now() > deadline)
        throw Object.assign(new Error(`profile lock ${keys[held - 1]} still held after ${opts.waitMs ?? 60_000} ms`), { retriable: true });
      await new Promise((r) => setTimeout(r, Math.min(200, 5 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random())));
    }
    try {
      return await fn();
    } finally {
      await this.locks.releaseAll(keys, owner);
    }
  }

  /** GET of many keys as Buffers: one MGET on one node, one GET per key on a Cluster, all at once. */
  private async getBuffers(keys: string[]): Promise<Array<Buffer | null>> {
    if (!isCluster(this.deps.redis)) return this.deps.redis.mgetBuffer(...keys);
    return (await acrossSlots(
      this.deps.redis,
      keys.map((k) => ['get', k]),
      { buffers: true },
    )) as Array<Buffer | null>;
  }

  /** LOAD_FOR_EVENTS_LUA over the chunk: one call on one node, one per profile (its own slot) on a Cluster. */
  private async loadForEventsScript(
    refs: ProfileRef[],
    eventIds: string[][],
    keys: string[],
    args: Array<string | number>,
  ): Promise<[Array<Buffer | number | null>, number[]]> {
    const redis = this.scripts;
    if (!isCluster(this.deps.redis))
      return (await redis.loadForEvents(keys.length, ...keys, ...args)) as [Array<Buffer | number | null>, number[]];
    let a = 0;
    const calls = refs.map((_, i) => {
      const n = eventIds[i]!.length;
      const own = args.slice(a, a + 2 + n);
      a += 2 + n;
      return redis.loadForEvents(3, ...keys.slice(3 * i, 3 * i + 3), ...own) as Promise<[Array<Buffer | number | null>, number[]]>;
    });
    const answers = await Promise.all(calls);
    // Lua drops a trailing nil from a table: a profile with no document answers an empty list.
    return [answers.map(([docs]) => docs[0] ?? null), answers.flatMap(([, seen]) => seen)];
  }

  /**
   * Where each profile's state lives now: its own id, or the survivor of the
   * merges it went through (followed to the end, at most `maxHops`). One MGET
   * per hop; most chunks need one. Call it under the profiles' locks: a merge
   * writes :into under the same locks.
   */
  async liveProfileIds(refs: ProfileRef[], maxHops = 16): Promise<string[]> {
    const live = refs.map((r) => r.profileId);
    let todo = refs.map((_, i) => i);
    for (let hop = 0; todo.length > 0 && hop < maxHops; hop++) {
      const into = (await this.getBuffers(todo.map((i) => this.mergedIntoKey({ spaceId: refs[i]!.spaceId, profileId: live[i]! })))).map(
        (b) => b?.toString('utf8') ?? null,
      );
      const next: number[] = [];
      todo.forEach((i, k) => {
        const survivor = into[k];
        if (survivor) {
          live[i] = survivor;
          next.push(i);
        }
      });
      todo = next;
    }
    return live;
  }

  /** Stored user profiles of one space, a page at a time (SSCAN of the space index). */
  async *scanSpace(spaceId: string, pageSize = 500): AsyncGenerator<ProfileRef[]> {
    for await (const ids of this.scanMembers(this.spaceProfilesKey(spaceId), pageSize))
      yield ids.map((profileId) => ({ spaceId, profileId }));
  }

  async countSpace(spaceId: string): Promise<number> {
    return this.deps.redis.scard(this.spaceProfilesKey(spaceId));
  }

  /** Every stored profile, a page at a time (SCAN: no blocking of Redis). */
  async *scanProfiles(pageSize = 500): AsyncGenerator<ProfileRef[]> {
    let cursor = '0';
    const pattern = `${this.config.keyPrefix}rt:{*}:state`;
    const re = /rt:\{([^:}]+):([^}]+)\}:state$/;
    do {
      const [next, keys] = await this.deps.redis.scan(cursor, 'MATCH', pattern, 'COUNT', pageSize);
      cursor = next;
      const refs = keys
        .map((k) => re.exec(k))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ spaceId: m[1]!, profileId: m[2]! }));
      if (refs.length > 0) yield refs;
    } while (cursor !== '0');
  }

  async clearMembers(computationId: string): Promise<void> {
    await this.deps.redis.del(this.membersKey(computationId));
  }

  async memberCount(computationId: string): Promise<number> {
    return this.deps.redis.scard(this.membersKey(computationId));
  }

  /**
   * A point-in-time copy of an audience's members (COPY is atomic), so an
   * export reads one consistent membership however long it takes while the
   * evaluator keeps changing the live set. Expires by itself if the reader dies.
   */
  async snapshotMembers(computationId: string, ttlSeconds: number): Promise<string> {
    const key = `${this.membersKey(computationId)}:snapshot:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const tx = this.deps.redis.multi();
    tx.copy(this.membersKey(computationId), key);
    tx.expire(key, ttlSeconds);
    await tx.exec();
    return key;
  }

  /** Members of a set (live or snapshot), a page at a time with SSCAN. */
  async *scanMembers(key: string, pageSize = 1000, options: { ownConnection?: boolean } = {}): AsyncGenerator<string[]> {
    // ownConnection: a reader that queues big commands on the shared client
    // (an export's MGETs) would otherwise hold each SSCAN behind them.
    const redis = options.ownConnection ? this.deps.redis.duplicate() : this.deps.redis;
    try {
      let cursor = '0';
      do {
        const [next, members] = await redis.sscan(key, cursor, 'COUNT', pageSize);
        cursor = next;
        if (members.length > 0) yield members;
      } while (cursor !== '0');
    } finally {
      if (redis !== this.deps.redis) redis.disconnect();
    }
  }

  /** identifiersJson bytes of each profile (null when none is stored yet), one MGET: for exports, which copy them as they are. */
  async identifierBytesOf(spaceId: string, profileIds: string[]): Promise<Array<Buffer | null>> {
    if (profileIds.length === 0) return [];
    return this.getBuffers(profileIds.map((profileId) => this.idsKey({ spaceId, profileId })));
  }

  async dropSnapshot(key: string): Promise<void> {
    await this.deps.redis.unlink(key);
  }
}

/**
 * Hot states this process saved last, by state key, each with the token its
 * save wrote to the profile's :ver key. The realtime evaluator sees the same
 * profiles chunk after chunk (its partitions are keyed by profile), so most
 * loads find their document here and skip reading and parsing ~4 KB of JSON:
 * a load sends the token and Redis answers "current" or the stored document
 * (LOAD_FOR_EVENTS_LUA). Any other writer's save (a merge, the expiry job, a
 * backfill, another replica after a rebalance) writes another token, so a
 * stale copy is never used. Least recently saved entries go first.
 * NOTE: a copy is handed out (taken) by a load and comes back only with a
 * successful save, so two users never hold one object and a chunk that
 * failed halfway leaves nothing mutated behind.
 */
class HotStateCache {
  private readonly entries = new Map<string, { token: string; profile: StoredProfile; idsJson: string }>();
  hits = 0;
  misses = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  take(key: string): { token: string; profile: StoredProfile; idsJson: string } | undefined {
    const entry = this.entries.get(key);
    if (entry) this.entries.delete(key);
    return entry;
  }

  put(key: string, entry: { token: string; profile: StoredProfile; idsJson: string }): void {
    if (this.capacity <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }
}
