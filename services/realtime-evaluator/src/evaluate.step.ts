// engage.events.resolved -> per-profile state -> engage.computations.changes.
// Per chunk: one pipeline loading the profiles it touches without their
// history (and which of the chunk's event ids each already holds; a profile
// this process saved last is reused from memory once Redis confirms nobody
// saved it since: ProfileStateRepository's HotStateCache), events applied in
// offset order (per-profile order holds: the topic is keyed by
// profile), then one sendBatch of the changes and one atomic save of the state
// (ChangeCommitter) that appends the new events to the stored history. The
// history is read only for profiles that need it (a new or edited
// computation, events a merge or backfill left unseen).
//
// Crash safety (tested by test/evaluation-restart.test.ts, SIGKILL mid-stream):
// - offsets are committed only after a chunk's changes are acked by Kafka AND
//   its state is saved (BatchConsumer resolves after handle() returns);
// - changes are produced BEFORE the state is saved (ChangeCommitter): a crash
//   in between leaves the old state, the chunk is redelivered, the same events
//   produce the same changes with the same change_id (a hash of computation,
//   version, profile, value and the causing message id): a duplicate carries
//   the id of the original, and dispatchers drop it; a change is never lost;
// - a crash after the save: redelivered events are already in the stored
//   history (their event ids in the profile's :seen set): no change twice;
//   the event id (eventKey: source, messageId, receive time), not the
//   messageId: another event that reuses a messageId is not a redelivery;
// - every writer of a profile (this step, merges, expiry, backfills) holds the
//   profile's lock for its load-compute-produce-save cycle, so none overwrites
//   another's state with a stale copy.
import { addExternalId, applyEvent, eventIdOf, needsHistory, type CompiledComputation, type EngineEvent } from '@engage/engine';
import { dlq, ok, type ConsumedMessage, type MessageOutcome } from '@engage/kafka';
import {
  noteMetadata,
  resyncChanges,
  toEngineEvent,
  type ChangeCommitter,
  type ComputationsRegistry,
  type PendingChange,
  type ProfileRef,
  type ProfileStateRepository,
  type StoredProfile,
  restoreHeld,
  snapshotHeld,
  type HeldSnapshot,
  type WriteBehindProfiles,
} from '@engage/profile-store';
import type { AccountStep, AccountWork } from './account.step';
import { eventKey, type ResolvedEvent } from '@engage/schemas';

/** Identifiers a profile is known by, from its events (destinations match on them); `traits`: the event's, over its context's. */
export function noteIdentifiers(profile: StoredProfile, e: ResolvedEvent, traits: { email?: unknown }): void {
  // Bounded (PROFILE_LIMITS.externalIds): an id past the limit is not kept for destinations.
  const add = (type: string, id: unknown) => {
    if (typeof id !== 'string' || id === '') return;
    addExternalId(profile.externalIds, type, id);
  };
  if (e.user_id) profile.userId = e.user_id;
  if (e.anonymous_id && !profile.anonymousId) profile.anonymousId = e.anonymous_id;
  add('user_id', e.user_id);
  add('anonymous_id', e.anonymous_id);
  add('email', typeof traits.email === 'string' ? traits.email.toLowerCase() : undefined);
  for (const x of e.external_ids) add(x.type, x.id);
}

type Chunk = Array<ConsumedMessage<ResolvedEvent>>;

/** One pass over a chunk under its profiles' locks: evaluated, or (nothing changed, locks released) the profiles a merge moved. */
type Pass = { outcomes: MessageOutcome[] } | { moved: Map<string, string> };

/** What the per-chunk save and the write-behind do differently around handle()'s merge re-addressing loop. */
interface SaveMode {
  pass(chunk: Chunk, refs: ProfileRef[], work: AccountWork): Promise<Pass>;
  /** After the last pass, the users' locks released: the account work. */
  accounts(work: AccountWork): Promise<void>;
}

export class EvaluateStep {
  constructor(
    private readonly config: { maxEventsPerProfile: number },
    private readonly deps: {
      profiles: ProfileStateRepository;
      registry: ComputationsRegistry;
      committer: ChangeCommitter;
      accounts: AccountStep;
      /** Save states every interval instead of every chunk (EVALUATOR_FLUSH_MS; write-behind.ts). */
      writeBehind?: WriteBehindProfiles;
      now?: () => number;
    },
  ) {}

  async handle(messages: Chunk): Promise<MessageOutcome[]> {
    const mode = this.deps.writeBehind ? this.heldMode(this.deps.writeBehind) : this.savedMode();
    const work: AccountWork = {
      links: [],
      users: [],
      cause: messages.length > 0 ? eventKey(messages.at(-1)!.value) : '',
      occurredAt: messages.at(-1)?.value.timestamp ?? 0,
    };
    // TRICKY: an event resolved to a profile that a merge has since folded into
    // another (the merge travels on the survivor's partition and may be
    // evaluated first) belongs to the survivor: applied to the merged
    // profile's id it would recreate a profile nobody reads and be lost from
    // the survivor. Where each profile lives is read under its lock (a merge
    // writes it under the same lock); when some moved, the locks are released
    // and the chunk is taken again with the events re-addressed.
    let chunk = messages;
    for (let round = 0; ; round++) {
      const refs = new Map<string, ProfileRef>();
      for (const m of chunk)
        refs.set(`${m.value.space_id}|${m.value.profile_id}`, { spaceId: m.value.space_id, profileId: m.value.profile_id });
      const result = await mode.pass(chunk, [...refs.values()], work);
      if ('outcomes' in result) {
        await mode.accounts(work);
        return result.outcomes;
      }
      // A merge chain moves each profile at most once per round; a chain longer than this is a loop.
      if (round >= 16) throw new Error(`profiles still moving after ${round} rounds of merges: ${[...result.moved.keys()].join(', ')}`);
      chunk = chunk.map((m) => {
        const survivor = result.moved.get(`${m.value.space_id}|${m.value.profile_id}`);
        return survivor ? { ...m, value: { ...m.value, profile_id: survivor } } : m;
      });
    }
  }

  /** The default: each chunk's profiles are locked for its pass and saved with its changes (ChangeCommitter.commit). */
  private savedMode(): SaveMode {
    return {
      pass: (chunk, refs, work) =>
        this.deps.profiles.withLocks(refs, async () => {
          const moved = await this.movedProfiles(refs);
          if (moved.size > 0) return { moved };
          return { outcomes: await this.evaluate(chunk, refs, work) };
        }),
      // Accounts after the users' locks are released (see account.step.ts).
      accounts: (work) => this.deps.accounts.handle(work),
    };
  }

  /**
   * With the write-behind: the chunk's profiles are taken from (or
   * locked into) what this process holds, evaluated, their changes produced,
   * and left held for the next flush (write-behind.ts). A chunk that fails
   * leaves the held profiles as they were before it (restored from a copy),
   * since their changes of this chunk may not be out.
   */
  private heldMode(held: WriteBehindProfiles): SaveMode {
    return {
      pass: async (chunk, list, work) => {
        // One snapshot of the computations for the chunk (see evaluate). A held profile that
        // needs its whole history is saved first: loadHistory reads what is stored.
        const spaces = new Map(list.map((r) => [r.spaceId, this.deps.registry.forSpace(r.spaceId)]));
        if (list.some((r) => needsHeldHistory(held.get(r), spaces.get(r.spaceId)!.ordered))) await held.flush();
        const locked = await held.enter(list);
        const before = new Map<StoredProfile, HeldSnapshot>();
        try {
          // Held profiles have been locked since they were loaded: no merge moved them.
          const moved = await this.movedProfiles(locked);
          if (moved.size > 0) {
            await held.release(locked);
            return { moved };
          }
          return { outcomes: await this.evaluate(chunk, list, work, { spaces, held, before }) };
        } catch (err) {
          for (const [profile, snapshot] of before) restoreHeld(profile, snapshot);
          await held.release(locked.filter((r) => !held.get(r))).catch(() => {});
          throw err;
        } finally {
          held.leave(list);
        }
      },
      accounts: async (work) => {
        if (work.links.length === 0 && work.users.length === 0) return;
        // Accounts read their users' saved states: saved first (spaces with accounts pay a save per chunk).
        await held.flush();
        await this.deps.accounts.handle(work);
      },
    };
  }

  /** Of these profiles (locked), those a merge folded into another: `space|profile` -> the survivor. */
  private async movedProfiles(refs: ProfileRef[]): Promise<Map<string, string>> {
    const live = await this.deps.profiles.liveProfileIds(refs);
    return new Map(refs.flatMap((r, i) => (live[i] !== r.profileId ? [[`${r.spaceId}|${r.profileId}`, live[i]!] as const] : [])));
  }

  private async evaluate(
    messages: Array<ConsumedMessage<ResolvedEvent>>,
    refs: ProfileRef[],
    work: AccountWork,
    options: {
      spaces?: Map<string, ReturnType<ComputationsRegistry['forSpace']>>;
      /** Write-behind: profiles come from and go back to it; `before` gets a copy of each held one before it changes. */
      held?: WriteBehindProfiles;
      before?: Map<StoredProfile, HeldSnapshot>;
    } = {},
  ): Promise<MessageOutcome[]> {
    const now = this.deps.now?.() ?? Date.now();
    const outcomes: MessageOutcome[] = [];
    const idsByRef = new Map<string, string[]>(refs.map((r) => [`${r.spaceId}|${r.profileId}`, []]));
    const eventIds = messages.map((m) => eventKey(m.value));
    // Each message's `space|profile`, built once (the loop below looks it up twice).
    const refKeys = messages.map((m) => `${m.value.space_id}|${m.value.profile_id}`);
    messages.forEach((_, i) => idsByRef.get(refKeys[i]!)!.push(eventIds[i]!));
    const heldCopies = options.held ? refs.map((r) => options.held!.get(r)) : undefined;
    const { profiles: loaded, seen } = await this.deps.profiles.loadForEvents(refs, [...idsByRef.values()], {
      cached: true,
      held: heldCopies,
    });
    const profiles = new Map(loaded.map((p) => [`${p.spaceId}|${p.profileId}`, p]));
    const seenByRef = new Map(loaded.map((p, i) => [`${p.spaceId}|${p.profileId}`, seen[i]!]));
    heldCopies?.forEach((p, i) => {
      if (!p) return;
      // Events evaluated since the last flush are not in the stored :seen yet.
      const ids = new Set(idsByRef.get(`${p.spaceId}|${p.profileId}`));
      for (const e of p.events) {
        const id = eventIdOf(e);
        if (ids.has(id)) seen[i]!.add(id);
      }
      options.before!.set(p, snapshotHeld(p));
    });
    // TRICKY: one snapshot of each space's computations for the whole chunk. The
    // registry follows engage.config and can change during an await; a
    // computation added after needsHistory() ran must not be built here from a
    // profile whose history is not in memory (the next chunk builds it whole).
    const spaces = options.spaces ?? new Map(refs.map((r) => [r.spaceId, this.deps.registry.forSpace(r.spaceId)]));
    await this.deps.profiles.loadHistory(loaded.filter((p) => needsHistory(p, spaces.get(p.spaceId)!.ordered)));

    const pending: PendingChange[] = [];
    /** Profiles with changes in `pending` (most gain ids on their first event, with none yet). */
    const changed = new Set<StoredProfile>();
    const accountUsers = new Set<StoredProfile>();
    for (const [i, m] of messages.entries()) {
      const e = m.value;
      const eventId = eventIds[i]!;
      let event: EngineEvent & { arrivedAt: number };
      try {
        event = toEngineEvent(e, eventId);
      } catch (err) {
        outcomes.push(dlq(`malformed JSON in event ${e.message_id}: ${(err as Error).message}`, 'evaluate'));
        continue;
      }
      const profile = profiles.get(refKeys[i]!)!;
      // A redelivery (crash after the save, or the resolver's own redelivery): already applied.
      // TRICKY: the account work runs after the users' save, so a crash in between left it
      // undone: a redelivered event still asks for it (links are idempotent, and an account
      // already up to date emits nothing).
      if (seenByRef.get(refKeys[i]!)!.has(eventId)) {
        if (e.account_id)
          work.links.push({
            user: profile,
            accountId: e.account_id,
            groupId: e.group_id,
            traits: e.type === 'group' ? event.traits : undefined,
            at: e.timestamp,
          });
        if (profile.accounts?.length) accountUsers.add(profile);
        outcomes.push(ok);
        continue;
      }
      const { ordered } = spaces.get(e.space_id)!;
      const before = { userId: profile.userId, anonymousId: profile.anonymousId, idCount: profile.externalIds.length };
      noteIdentifiers(profile, e, { email: emailOf(event) });
      if (profile.externalIds.length > before.idCount || profile.userId !== before.userId) {
        // TRICKY: records take the profile's ids when the chunk commits; the
        // changes this profile made earlier in the chunk keep the ids it had
        // then, and the current values go to the new ids now (re-sync), in order.
        const identity = {
          userId: before.userId,
          anonymousId: before.anonymousId,
          externalIds: profile.externalIds.slice(0, before.idCount),
        };
        if (changed.has(profile))
          for (let j = pending.length - 1; j >= 0; j--) if (pending[j]!.profile === profile) pending[j]!.identity ??= identity;
        pending.push(
          ...resyncChanges(profile, ordered, profile.externalIds.slice(before.idCount), { cause: eventId, occurredAt: e.timestamp }),
        );
      }
      noteMetadata(profile, event);
      if (e.account_id) {
        profile.accounts ??= [];
        if (!profile.accounts.includes(e.account_id)) profile.accounts.push(e.account_id);
        work.links.push({
          user: profile,
          accountId: e.account_id,
          groupId: e.group_id,
          traits: e.type === 'group' ? event.traits : undefined,
          at: e.timestamp,
        });
      }
      const changes = applyEvent(profile, event, ordered, { maxEvents: this.config.maxEventsPerProfile, now });
      for (const change of changes) pending.push({ profile, change, reason: 'realtime', occurredAt: e.timestamp, cause: eventId });
      if (changes.length > 0) changed.add(profile);
      if (profile.accounts?.length) accountUsers.add(profile);
      outcomes.push(ok);
    }
    const touched = [...profiles.values()].map((profile) => ({ profile, ordered: spaces.get(profile.spaceId)!.ordered }));
    if (options.held) {
      const { memberships } = await this.deps.committer.produce(pending);
      options.held.hold(touched, memberships);
    } else await this.deps.committer.commit(touched, pending);
    // Only spaces with account-level computations pay for account re-evaluation.
    work.users = [...accountUsers].filter((p) => spaces.get(p.spaceId)!.accounts.length > 0);
    return outcomes;
  }
}

/** The event's email trait: its traits' over its context's (as `{ ...context.traits, ...traits }` would give), without copying either. */
export function emailOf(event: EngineEvent): unknown {
  const traits = event.traits as Record<string, unknown> | null;
  if (traits && typeof traits === 'object' && 'email' in traits) return traits.email;
  const context = event.context.traits as Record<string, unknown> | undefined;
  return context && typeof context === 'object' ? context.email : undefined;
}

/** A held profile that the chunk's computations would rebuild from its whole history (needsHistory). */
function needsHeldHistory(profile: StoredProfile | undefined, ordered: CompiledComputation[]): boolean {
  return profile !== undefined && needsHistory(profile, ordered);
}
