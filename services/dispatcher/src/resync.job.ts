// Initial sync and re-sync:
// - a new connection to an existing computation sends every current member
//   (audiences) or value (traits) once, then only changes flow. The live path
//   keeps delivering meanwhile: each (connection, profile) is claimed
//   atomically before either sends (Handover), so a transition both see
//   reaches the destination once, under one messageId;
// (A new external id on a profile re-sends its current values to the new id:
// the evaluator emits those as `resync` change records in the profile's order,
// and DispatchStep sends them to connections matching the ids' types.)
// Journey send steps' connections have neither: they are marked synced with
// nothing sent (isSettledByDesign in dispatch.step.ts).
import { createHash } from 'node:crypto';
import type { ConfigStore, ConnectionConfig } from '@engage/config-store';
import type { DeadLetterWriter } from '@engage/kafka';
import type { Logger } from '@engage/logging';
import type { ProfileStateRepository, StoredProfile } from '@engage/profile-store';
import { RedisLock, type RedisClient } from '@engage/redis';
import type { ComputationChange } from '@engage/schemas';
import type { DeliveryStatus } from './delivery-status';
import { isSettledByDesign, liveValueText, type DispatchStep } from './dispatch.step';
import type { Handover } from './handover';

type StoredValueOf = StoredProfile['values'][string]['value'];

/** The value a connection's destination should hold for this profile (null: nothing to send). */
const currentValueOf = (profile: StoredProfile, connection: ConnectionConfig): StoredValueOf | null => {
  const value = profile.values[connection.computationId]?.value;
  return value === undefined || value === null || value === false ? null : value;
};

/** A stored value as a change record carries it (lists as JSON text). */
const valueField = (value: StoredValueOf): ComputationChange['value'] =>
  Array.isArray(value) ? JSON.stringify(value) : (value as boolean | number | string);

function valueChange(
  profile: StoredProfile,
  connection: ConnectionConfig,
  key: string,
  changeId: string,
  externalIds: ComputationChange['external_ids'],
  value: StoredValueOf,
  previous: boolean | null = null,
  at = Date.now(),
): ComputationChange {
  return {
    change_id: changeId,
    space_id: profile.spaceId,
    computation_id: connection.computationId,
    computation_key: key,
    computation_class: connection.computationClass,
    level: 'user',
    profile_id: profile.profileId,
    value: valueField(value),
    previous,
    value_is_json: Array.isArray(value),
    reason: 'resync',
    occurred_at: at,
    emitted_at: at,
    external_ids: externalIds,
    user_id: profile.userId,
    anonymous_id: profile.anonymousId,
    traits_json: JSON.stringify(profile.traits),
  };
}

/** How long a replica's claim on a connection's initial sync lasts without renewal. */
const SYNC_LOCK_MS = 5 * 60_000;

/**
 * How long a finished sync's claims are kept: live records still in the topic
 * behind the sync (consumer lag) meet them and are not sent twice.
 */
const HANDOVER_GRACE_MS = 24 * 3600 * 1000;

/** The sync's change id for a value: deterministic, so a restarted sync sends the same call; per value, so a new value is a new call. */
const syncChangeId = (kind: 'sync' | 'sync_fix', connectionId: string, profileId: string, valueText: string) =>
  `${kind}_${connectionId}_${profileId}_${createHash('sha1').update(valueText).digest('hex').slice(0, 16)}`;

export class ResyncJob {
  constructor(
    private readonly config: { keyPrefix: string; destinationId: string },
    private readonly deps: {
      store: ConfigStore;
      profiles: ProfileStateRepository;
      step: DispatchStep;
      status: DeliveryStatus;
      redis: RedisClient;
      deadLetters: DeadLetterWriter;
      handover: Handover;
      log: Logger;
      now?: () => number;
    },
  ) {}

  private now() {
    return this.deps.now?.() ?? Date.now();
  }

  private keyOf(connection: ConnectionConfig): string | undefined {
    return this.deps.store.get(connection.computationClass === 'audience' ? 'audience' : 'computed_trait', connection.computationId)?.key;
  }

  /** Sends current members/values for connections that have not had their initial sync. */
  async syncNewConnections(): Promise<void> {
    for (const connection of this.deps.store.list('connection')) {
      if (connection.destinationId !== this.config.destinationId) continue;
      if (!connection.enabled || (await this.deps.step.syncMarkers.isSynced(connection.id))) continue;
      if (isSettledByDesign(connection)) {
        // A journey step has no members to sync (see isSettledByDesign): done, nothing sent, no handover claims.
        // Also what happens when someone clears its synced marker to ask for a sync again.
        await this.deps.step.syncMarkers.markSynced(connection.id, this.now());
        await this.deps.status.connection(connection.id, { state: 'Synced' });
        this.deps.log.info({ connectionId: connection.id }, 'initial_sync_not_needed');
        continue;
      }
      const key = this.keyOf(connection);
      if (!key) continue;
      // One replica syncs a connection; the lock is renewed while the sync runs
      // (a page may retry for hours) and expires by itself if its holder dies
      // (another replica then starts over, and the deterministic messageIds let
      // the destination drop repeats).
      await new RedisLock(this.deps.redis).withLock(
        this.deps.step.syncMarkers.lockKey(connection.id),
        SYNC_LOCK_MS,
        async () => {
          const { sent, failed } = await this.initialSync(connection, key);
          await this.deps.step.syncMarkers.markSynced(connection.id, this.now());
          await this.deps.handover.finish(connection.id, HANDOVER_GRACE_MS);
          await this.deps.status.connection(connection.id, {
            state: failed > 0 ? 'Partially Synced' : 'Synced',
            matched: sent + failed,
            sent,
            failed,
          });
          this.deps.log.info({ connectionId: connection.id, sent, failed }, 'initial_sync_done');
        },
        { autoRenew: true },
      );
    }
  }

  private async initialSync(connection: ConnectionConfig, key: string): Promise<{ sent: number; failed: number }> {
    let sent = 0;
    let failed = 0;
    await this.deps.status.connection(connection.id, { state: 'Syncing' });
    for await (const refs of this.profileRefs(connection)) {
      const profiles = await this.deps.profiles.load(refs);
      const candidates = profiles.flatMap((p) => {
        const value = currentValueOf(p, connection);
        if (value === null) return [];
        const valueText = liveValueText(valueField(value));
        return [{ profile: p, value, valueText, id: syncChangeId('sync', connection.id, p.profileId, valueText) }];
      });
      // Claimed first: a profile the live path has claimed is its to carry (its later changes follow through it).
      const granted = await this.deps.handover.claim(
        'sync',
        candidates.map((c) => ({
          connectionId: connection.id,
          profileId: c.profile.profileId,
          id: c.id,
          valueText: c.valueText,
          at: this.now(),
          // Live records this state already holds are older than what we send: they are not sent after it.
          seq: c.profile.changeSeq,
        })),
      );
      const changes = candidates.flatMap((c, i) =>
        granted[i] === null ? [] : [valueChange(c.profile, connection, key, c.id, c.profile.externalIds, c.value, null, granted[i]!)],
      );
      const lost = await this.deliver(changes, connection.id);
      sent += changes.length - lost;
      failed += lost;
      failed += await this.correctRaces(connection, key, changes);
    }
    return { sent, failed };
  }

  /**
   * TRICKY: the change consumer keeps delivering while a sync runs. If a
   * profile's value changed between our read and our call, the live change
   * carrying the new value is sent after ours when it claimed after our call
   * was done (or queued behind our scheduled retry): then nothing to do. But
   * if the live path claimed the profile while our call was in flight, its
   * call may have reached the destination first, and our older value would
   * stay there: send the current value again (a rare duplicate of the latest
   * state, so the latest value is the last to arrive).
   * Returns how many corrections were dead-lettered.
   */
  private async correctRaces(connection: ConnectionConfig, key: string, sentChanges: ComputationChange[]): Promise<number> {
    if (sentChanges.length === 0) return 0;
    const after = await this.deps.profiles.load(sentChanges.map((c) => ({ spaceId: c.space_id, profileId: c.profile_id })));
    const owners = await this.deps.handover.owners(
      connection.id,
      sentChanges.map((c) => c.profile_id),
    );
    const corrections: ComputationChange[] = [];
    const seqs: Array<number | undefined> = [];
    after.forEach((profile, i) => {
      const sentChange = sentChanges[i]!;
      const now = currentValueOf(profile, connection);
      const nowValue = now === null ? (connection.computationClass === 'audience' ? false : null) : now;
      if (nowValue === null) return;
      const nowText = liveValueText(valueField(nowValue));
      if (nowText === liveValueText(sentChange.value) || owners[i] === sentChange.change_id) return;
      const id = syncChangeId('sync_fix', connection.id, profile.profileId, nowText);
      corrections.push(valueChange(profile, connection, key, id, profile.externalIds, nowValue, now === null ? true : null, this.now()));
      seqs.push(profile.changeSeq);
    });
    if (corrections.length === 0) return 0;
    this.deps.log.info({ connectionId: connection.id, corrections: corrections.length }, 'initial_sync_corrected');
    const granted = await this.deps.handover.claim(
      'correct',
      corrections.map((c, i) => ({
        connectionId: connection.id,
        profileId: c.profile_id,
        id: c.change_id,
        valueText: liveValueText(c.value),
        at: c.emitted_at,
        seq: seqs[i],
      })),
    );
    // A correction restarted after a crash keeps the timestamp it was first sent with.
    return this.deliver(
      corrections.map((c, i) => ({ ...c, occurred_at: granted[i]!, emitted_at: granted[i]! })),
      connection.id,
    );
  }

  private async *profileRefs(connection: ConnectionConfig) {
    if (connection.computationClass === 'audience') {
      const members = await this.deps.redis.smembers(this.deps.profiles.membersKey(connection.computationId));
      for (let i = 0; i < members.length; i += 500)
        yield members.slice(i, i + 500).map((profileId) => ({ spaceId: connection.spaceId, profileId }));
    } else {
      // The space's profile index, not a SCAN of every key in Redis.
      yield* this.deps.profiles.scanSpace(connection.spaceId);
    }
  }

  /** Delivers through the dispatch step (event calls or list buffer); returns how many changes were dead-lettered. */
  private async deliver(changes: ComputationChange[], connectionId: string): Promise<number> {
    if (changes.length === 0) return 0;
    const failures = await this.deps.step.dispatch(changes, {
      onlyConnectionId: connectionId,
      handover: 'none',
      letterOf: (i) => ({ key: changes[i]!.profile_id, value: Buffer.from(JSON.stringify(changes[i])).toString('base64'), step: 'resync' }),
    });
    await this.deps.deadLetters.write(
      [...failures].map(([i, { reason }]) => ({ key: changes[i]!.profile_id, value: JSON.stringify(changes[i]), reason, step: 'resync' })),
    );
    for (const { reason, destinationId } of failures.values()) this.deps.status.count(destinationId, 'dead_lettered', reason);
    return failures.size;
  }
}
