// Journeys in real time: users enter when the entry audience says they
// entered, walk sends and splits at once, wait on timers, exit. Every step a
// user reaches is a ComputationChange (class journey_step, value true) on
// engage.computations.changes: a send step's under its key
// (`j_o_<journey>__<step name>_<6>`), which its connections deliver like an
// audience entry (CONTRACT.md section 9); any other step's under
// `<journey key>__<step id>` (journeyStepRecordKey), which no connection
// names: the journey's trail, for replays and audits.
//
// Keys (this runner owns them; the control plane only reads the stats), all of
// one journey on one cluster slot ({journeyId} hash tag), so a transition is
// one script:
//   jrn:p:{J}:<profileId>   the user's JourneyProgress (JSON); kept after the
//                           exit, it is what re-entry rules read
//   jrn:due:{J}             wait timers: score the due time, member
//                           JSON [profileId, run, stepId]
//   jrn:stats:{J}           `<step>:entered` (users who reached it) and
//                           `<step>:current` (users waiting at it);
//                           its builder is statusKeys (config-store)
//   jrn:seeded:{J}          set once the existing members were entered
//
// Crash rule: a transition produces its change records first, then commits
// the progress with a compare-and-set on the record it started from. A crash
// in between repeats the same walk on redelivery (the consumer's offset, or
// the timer's lease), whose records carry the same change_ids: dispatchers
// drop the copies. A walk that loses the compare-and-set (another replica, or
// the consumer and a timer at once) is dropped; what it produced has the ids
// of the walk that won, or of a walk that never committed (never delivered
// twice either way).
import { statusKeys, type ConfigStore, type JourneyConfig, type JourneyVersion } from '@engage/config-store';
import {
  afterWait,
  conditionAudiences,
  entryRun,
  journeyStepRecordKey,
  walkJourney,
  type JourneyProgress,
  type Walk,
} from '@engage/journeys';
import { ok, type ConsumedMessage, type MessageOutcome } from '@engage/kafka';
import type { Logger } from '@engage/logging';
import { changeExternalIds, changeId, changeTraitsJson, type ProfileStateRepository } from '@engage/profile-store';
import { acrossSlots, luaScript, type LuaScript, type RedisClient } from '@engage/redis';
import { valueSubject, type ChangeReason, type ComputationChange, type SchemaCodec } from '@engage/schemas';
import type { Producer } from 'kafkajs';

export interface JourneyRunnerConfig {
  keyPrefix: string;
  changesTopic: string;
  /** Timers claimed per journey per tick. */
  batchSize: number;
  /** A claimed timer comes back after this long if its replica dies (ms). */
  leaseMs: number;
}

/** Compare-and-set of one transition: progress, its timer, its counters. */
const COMMIT = `
local current = redis.call('GET', KEYS[1])
if (current or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[3], ARGV[3]) end
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4]) end
for i = 6, #ARGV, 2 do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1`;

/** Due timers, each moved a lease ahead so one replica takes it. */
const CLAIM = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], m) end
return due`;

type TimerMember = [profileId: string, run: number, stepId: string];

/** The ids and traits a record names (as change records carry them). */
interface RecordIdentity {
  userId: string | null;
  anonymousId: string | null;
  externalIds: Array<{ type: string; id: string }>;
  traitsJson: string;
}

export class JourneyRunner {
  constructor(
    private readonly config: JourneyRunnerConfig,
    private readonly deps: {
      store: ConfigStore;
      redis: RedisClient;
      producer: Producer;
      codec: SchemaCodec;
      profiles: ProfileStateRepository;
      log: Logger;
      now?: () => number;
    },
  ) {
    // Called by SHA (luaScript: the text only on NOSCRIPT).
    this.claimTimers = luaScript<string[]>(deps.redis, CLAIM, { keys: 1 });
    this.commitProgress = luaScript(deps.redis, COMMIT, { keys: 3 });
  }

  private readonly claimTimers: LuaScript<string[]>;
  private readonly commitProgress: LuaScript;

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  progressKey = (journeyId: string, profileId: string) => `${this.config.keyPrefix}jrn:p:{${journeyId}}:${profileId}`;
  dueKey = (journeyId: string) => `${this.config.keyPrefix}jrn:due:{${journeyId}}`;
  /** Read by the control plane: built where the other status keys are. */
  statsKey = (journeyId: string) => statusKeys(this.config.keyPrefix).journeyStats(journeyId);
  seededKey = (journeyId: string) => `${this.config.keyPrefix}jrn:seeded:{${journeyId}}`;

  /** Live journeys whose current version enters on `audienceId`. */
  private journeysEnteringOn(spaceId: string, audienceId: string): Array<{ journey: JourneyConfig; version: JourneyVersion }> {
    const out: Array<{ journey: JourneyConfig; version: JourneyVersion }> = [];
    for (const journey of this.deps.store.list('journey', spaceId)) {
      const version = journey.versions.at(-1);
      if (journey.status === 'Live' && version?.entryComputationId === audienceId) out.push({ journey, version });
    }
    return out;
  }

  /** A chunk of engage.computations.changes: entries into entry audiences enter users. */
  async handle(messages: Array<ConsumedMessage<ComputationChange>>): Promise<MessageOutcome[]> {
    // Per profile in order (the topic is keyed by profile); profiles one after another: entries are rare.
    for (const { value: change } of messages) {
      if (change.computation_class !== 'audience' || change.level !== 'user' || change.value !== true || change.previous === true) continue;
      for (const { journey, version } of this.journeysEnteringOn(change.space_id, change.computation_id)) {
        // Existing members only when asked: a new audience's backfill (and a
        // re-sync or edit) reports members who were there before the journey.
        if (change.reason !== 'realtime' && change.reason !== 'expiry' && change.reason !== 'batch' && !journey.includeExistingMembers)
          continue;
        // Made before the journey was first published: history, not an entry (existing members come from the seeding scan).
        if (change.emitted_at < Date.parse(journey.versions[0]!.publishedAt)) continue;
        // Who they are as the entry record says: the evaluator produces it before it saves the profile, so
        // the stored profile may not have these ids yet.
        const identity = {
          userId: change.user_id,
          anonymousId: change.anonymous_id,
          externalIds: change.external_ids,
          traitsJson: change.traits_json,
        };
        await this.enter(journey, version, change.profile_id, change.reason === 'realtime' ? 'realtime' : 'batch', identity);
      }
    }
    return messages.map(() => ok);
  }

  /** Enters one user (if the re-entry rule lets them) and walks them to their first wait or exit. */
  async enter(
    journey: JourneyConfig,
    version: JourneyVersion,
    profileId: string,
    reason: ChangeReason,
    identity?: RecordIdentity,
  ): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const key = this.progressKey(journey.id, profileId);
      const raw = await this.deps.redis.get(key);
      const progress = raw ? (JSON.parse(raw) as JourneyProgress) : null;
      const run = entryRun(progress, journey.reentry);
      if (run === null) return false;
      const now = this.now();
      const walk = walkJourney(version, version.start, now, await this.membership(version, profileId));
      const t = { liveId: profileId, identity, raw, run, walk, now, reason, enteredAt: now, leaving: null };
      if (await this.transition(journey, version, profileId, t)) return true;
    }
    this.deps.log.warn({ journeyId: journey.id, profileId }, 'journey_entry_contended');
    return false;
  }

  /** Due timers of every live journey: each user moves on from their wait step. Returns how many moved. */
  async tick(): Promise<number> {
    let moved = 0;
    for (const journey of this.deps.store.list('journey')) {
      if (journey.status !== 'Live') continue; // paused: timers wait; archived: nobody moves
      await this.seedExistingMembers(journey);
      const now = this.now();
      const claimed = (await this.claimTimers(
        this.dueKey(journey.id),
        String(now),
        String(this.config.batchSize),
        String(now + this.config.leaseMs),
      )) as string[];
      for (const member of claimed) if (await this.resume(journey, member)) moved++;
    }
    return moved;
  }

  private async resume(journey: JourneyConfig, member: string): Promise<boolean> {
    const [profileId, run, stepId] = JSON.parse(member) as TimerMember;
    const key = this.progressKey(journey.id, profileId);
    const raw = await this.deps.redis.get(key);
    const progress = raw ? (JSON.parse(raw) as JourneyProgress) : null;
    const version = progress && journey.versions.find((v) => v.version === progress.version);
    if (!progress || !version || progress.run !== run || progress.status !== 'waiting' || progress.step !== stepId) {
      // A timer of a walk that moved on (or of state that is gone): nothing to do.
      await this.deps.redis.zrem(this.dueKey(journey.id), member);
      return false;
    }
    const now = this.now();
    // Merged while waiting: the survivor is who the splits ask about and who the sends address.
    const [liveId] = await this.deps.profiles.liveProfileIds([{ spaceId: journey.spaceId, profileId }]);
    const walk = walkJourney(version, afterWait(version, stepId), now, await this.membership(version, liveId!));
    return this.transition(journey, version, profileId, {
      liveId: liveId!,
      raw,
      run,
      walk,
      now,
      reason: 'batch',
      enteredAt: progress.enteredAt,
      leaving: { stepId, member },
    });
  }

  /**
   * On a journey's first publish with includeExistingMembers: the entry
   * audience's current members enter (once; a crash part-way scans again,
   * and users already inside are not entered twice).
   */
  private async seedExistingMembers(journey: JourneyConfig): Promise<void> {
    const first = journey.versions[0];
    if (!journey.includeExistingMembers || !first || (await this.deps.redis.exists(this.seededKey(journey.id))) === 1) return;
    const version = journey.versions.at(-1)!;
    let entered = 0;
    for await (const ids of this.deps.profiles.scanMembers(this.deps.profiles.membersKey(version.entryComputationId)))
      for (const profileId of ids) if (await this.enter(journey, version, profileId, 'batch')) entered++;
    await this.deps.redis.set(this.seededKey(journey.id), String(this.now()));
    this.deps.log.info({ journeyId: journey.id, entered }, 'journey_existing_members_entered');
  }

  /** The user's membership of the version's condition audiences, now. */
  private async membership(version: JourneyVersion, profileId: string): Promise<(audienceId: string) => boolean> {
    const ids = conditionAudiences(version);
    if (ids.length === 0) return () => false;
    // Each audience's member set has its own slot: acrossSlots (one pipeline on one node).
    const answers = await acrossSlots(
      this.deps.redis,
      ids.map((id) => ['sismember', this.deps.profiles.membersKey(id), profileId]),
    );
    const member = new Map(ids.map((id, i) => [id, answers[i] === 1]));
    return (audienceId) => member.get(audienceId) ?? false;
  }

  /** Emits the walk's send steps, then commits the progress if nobody moved the user meanwhile. */
  private async transition(
    journey: JourneyConfig,
    version: JourneyVersion,
    profileId: string,
    t: {
      /** The profile the user's records go out as: `profileId`, or its survivor after a merge. */
      liveId: string;
      /** Who the records name, when known without reading the profile (an entry record carries it). */
      identity?: RecordIdentity;
      raw: string | null;
      run: number;
      walk: Walk;
      now: number;
      reason: ChangeReason;
      enteredAt: number;
      leaving: { stepId: string; member: string } | null;
    },
  ): Promise<boolean> {
    const { walk, run } = t;
    await this.emit(
      journey,
      version,
      { profileId, liveId: t.liveId, identity: t.identity },
      run,
      walk.reached.map((s) => s.key ?? journeyStepRecordKey(journey.key, s.stepId)),
      t.now,
      t.reason,
    );
    const end = walk.end;
    const progress: JourneyProgress = {
      version: version.version,
      run,
      status: end.type === 'wait' ? 'waiting' : 'exited',
      step: end.stepId,
      ...(end.type === 'wait' ? { dueAt: end.dueAt } : {}),
      enteredAt: t.enteredAt,
    };
    const stats: string[] = [];
    if (t.leaving) stats.push(`${t.leaving.stepId}:current`, '-1');
    for (const s of walk.reached) stats.push(`${s.stepId}:entered`, '1');
    if (end.type === 'wait') stats.push(`${end.stepId}:current`, '1');
    const timer = end.type === 'wait' ? JSON.stringify([profileId, run, end.stepId] satisfies TimerMember) : '';
    const committed = await this.commitProgress(
      this.progressKey(journey.id, profileId),
      this.statsKey(journey.id),
      this.dueKey(journey.id),
      t.raw ?? '',
      JSON.stringify(progress),
      t.leaving?.member ?? '',
      timer,
      end.type === 'wait' ? String(end.dueAt) : '0',
      ...stats,
    );
    return committed === 1;
  }

  /** One journey_step change per send step reached (value true; journeys never exit a step). */
  private async emit(
    journey: JourneyConfig,
    version: JourneyVersion,
    who: { profileId: string; liveId: string; identity?: RecordIdentity },
    run: number,
    keys: string[],
    now: number,
    reason: ChangeReason,
  ): Promise<void> {
    const { profileId, liveId } = who;
    let identity = who.identity;
    if (!identity) {
      const [profile] = await this.deps.profiles.load([{ spaceId: journey.spaceId, profileId: liveId }]);
      identity = {
        userId: profile?.userId ?? null,
        anonymousId: profile?.anonymousId ?? null,
        externalIds: changeExternalIds(profile?.externalIds ?? []),
        traitsJson: changeTraitsJson(profile?.traits ?? {}),
      };
    }
    const traitsJson = identity.traitsJson;
    const subject = valueSubject(this.config.changesTopic);
    const messages = await Promise.all(
      keys.map(async (key) => {
        const record: ComputationChange = {
          // The same walk (journey, version, user's run, step) always has the same id: redelivery dedupes.
          change_id: changeId({ computationId: journey.id, version: version.version, profileId, value: true, cause: `${run}:${key}` }),
          space_id: journey.spaceId,
          computation_id: journey.id,
          computation_key: key,
          computation_class: 'journey_step',
          level: 'user',
          profile_id: liveId,
          value: true,
          previous: null,
          value_is_json: false,
          reason,
          occurred_at: now,
          emitted_at: now,
          external_ids: identity.externalIds,
          user_id: identity.userId,
          anonymous_id: identity.anonymousId,
          traits_json: traitsJson,
        };
        return { key: liveId, value: await this.deps.codec.encode(subject, record) };
      }),
    );
    await this.deps.producer.send({ topic: this.config.changesTopic, messages });
  }
}
