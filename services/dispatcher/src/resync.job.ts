// Initial sync and re-sync:
// - a new connection to an existing computation sends every current member
//   (audiences) or value (traits) once, then only changes flow;
// - a new external id on a profile (engage.identity.changes, external_id_added)
//   re-sends that profile's current values to connections matching the id's type.
import type { ConfigStore, ConnectionConfig } from '@engage/config-store';
import { ok, type ConsumedMessage, type DeadLetterWriter, type MessageOutcome } from '@engage/kafka';
import type { Logger } from '@engage/logging';
import type { ProfileStateRepository, StoredProfile } from '@engage/profile-store';
import type { RedisClient } from '@engage/redis';
import type { ComputationChange, IdentityChange } from '@engage/schemas';
import type { DeliveryStatus } from './delivery-status';
import { liveValueText, type DispatchStep } from './dispatch.step';
import { withRenewedLock } from './renewed-lock';

type StoredValueOf = StoredProfile['values'][string]['value'];

/** The value a connection's destination should hold for this profile (null: nothing to send). */
const currentValueOf = (profile: StoredProfile, connection: ConnectionConfig): StoredValueOf | null => {
  const value = profile.values[connection.computationId]?.value;
  return value === undefined || value === null || value === false ? null : value;
};

function currentValueChange(
  profile: StoredProfile,
  connection: ConnectionConfig,
  key: string,
  changeId: string,
  externalIds: ComputationChange['external_ids'],
): ComputationChange | null {
  const value = currentValueOf(profile, connection);
  return value === null ? null : valueChange(profile, connection, key, changeId, externalIds, value);
}

function valueChange(
  profile: StoredProfile,
  connection: ConnectionConfig,
  key: string,
  changeId: string,
  externalIds: ComputationChange['external_ids'],
  value: StoredValueOf,
  previous: boolean | null = null,
): ComputationChange {
  const list = Array.isArray(value);
  return {
    change_id: changeId,
    space_id: profile.spaceId,
    computation_id: connection.computationId,
    computation_key: key,
    computation_class: connection.computationClass,
    level: 'user',
    profile_id: profile.profileId,
    value: list ? JSON.stringify(value) : (value as boolean | number | string),
    previous,
    value_is_json: list,
    reason: 'resync',
    occurred_at: Date.now(),
    emitted_at: Date.now(),
    external_ids: externalIds,
    user_id: profile.userId,
    anonymous_id: profile.anonymousId,
    traits_json: JSON.stringify(profile.traits),
  };
}

/** How long a replica's claim on a connection's initial sync lasts without renewal. */
const SYNC_LOCK_MS = 5 * 60_000;

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
      log: Logger;
    },
  ) {}

  private syncLockKey = (connectionId: string) => `${this.config.keyPrefix}dispatch:sync:lock:${connectionId}`;

  private keyOf(connection: ConnectionConfig): string | undefined {
    return this.deps.store.get(connection.computationClass === 'audience' ? 'audience' : 'computed_trait', connection.computationId)?.key;
  }

  /** Sends current members/values for connections that have not had their initial sync. */
  async syncNewConnections(): Promise<void> {
    for (const connection of this.deps.store.list('connection')) {
      if (connection.destinationId !== this.config.destinationId) continue;
      if (!connection.enabled || (await this.deps.redis.exists(this.deps.step.syncedKey(connection.id))) === 1) continue;
      const key = this.keyOf(connection);
      if (!key) continue;
      // One replica syncs a connection; the lock is renewed while the sync runs
      // (a page may retry for hours) and expires by itself if its holder dies
      // (another replica then starts over, and the deterministic messageIds let
      // the destination drop repeats).
      await withRenewedLock(this.deps.redis, this.syncLockKey(connection.id), SYNC_LOCK_MS, async () => {
        const { sent, failed } = await this.initialSync(connection, key);
        await this.deps.redis.set(this.deps.step.syncedKey(connection.id), String(Date.now()));
        await this.deps.redis.del(this.deps.step.liveValuesKey(connection.id));
        await this.deps.status.connection(connection.id, {
          state: failed > 0 ? 'Partially Synced' : 'Synced',
          matched: sent + failed,
          sent,
          failed,
        });
        this.deps.log.info({ connectionId: connection.id, sent, failed }, 'initial_sync_done');
      });
    }
  }

  private async initialSync(connection: ConnectionConfig, key: string): Promise<{ sent: number; failed: number }> {
    let sent = 0;
    let failed = 0;
    await this.deps.status.connection(connection.id, { state: 'Syncing' });
    for await (const refs of this.profileRefs(connection)) {
      const profiles = await this.deps.profiles.load(refs);
      // Values the live path has delivered to this connection meanwhile are not sent again.
      const liveValues = refs.length
        ? await this.deps.redis.hmget(this.deps.step.liveValuesKey(connection.id), ...refs.map((r) => r.profileId))
        : [];
      const live = new Map(refs.map((r, i) => [r.profileId, liveValues[i]]));
      const changes = profiles
        .map((p) => currentValueChange(p, connection, key, `sync_${connection.id}_${p.profileId}`, p.externalIds))
        .filter((c): c is ComputationChange => c !== null && live.get(c.profile_id) !== liveValueText(c.value));
      const lost = await this.deliver(changes, connection.id);
      sent += changes.length - lost;
      failed += lost;
      failed += await this.correctRaces(connection, key, changes);
    }
    return { sent, failed };
  }

  /**
   * TRICKY: the change consumer keeps delivering while a sync runs. If a
   * profile's value changed between our read and our call, its live change may
   * have reached the destination first, and our older value would then stay
   * there. Re-read what we sent and send the current value where it differs.
   * Returns how many corrections were dead-lettered.
   */
  private async correctRaces(connection: ConnectionConfig, key: string, sentChanges: ComputationChange[]): Promise<number> {
    if (sentChanges.length === 0) return 0;
    const after = await this.deps.profiles.load(sentChanges.map((c) => ({ spaceId: c.space_id, profileId: c.profile_id })));
    const corrections: ComputationChange[] = [];
    after.forEach((profile, i) => {
      const sentValue = sentChanges[i]!.value;
      const now = currentValueOf(profile, connection);
      const nowText = now === null ? null : Array.isArray(now) ? JSON.stringify(now) : now;
      if (nowText === sentValue) return;
      const id = `sync_${connection.id}_${profile.profileId}_${String(nowText)}`;
      if (now !== null) corrections.push(valueChange(profile, connection, key, id, profile.externalIds, now));
      else if (connection.computationClass === 'audience')
        corrections.push(valueChange(profile, connection, key, id, profile.externalIds, false, true));
    });
    if (corrections.length > 0)
      this.deps.log.info({ connectionId: connection.id, corrections: corrections.length }, 'initial_sync_corrected');
    return this.deliver(corrections, connection.id);
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

  /** engage.identity.changes handler: re-sync on new external ids. */
  async handleIdentity(messages: Array<ConsumedMessage<IdentityChange>>): Promise<MessageOutcome[]> {
    for (const { value: c } of messages) {
      if (c.kind !== 'external_id_added' || c.added_external_ids.length === 0) continue;
      const [profile] = await this.deps.profiles.load([{ spaceId: c.space_id, profileId: c.profile_id }]);
      const addedTypes = new Set(c.added_external_ids.map((x) => x.type));
      for (const connection of this.deps.store.list('connection', c.space_id)) {
        if (connection.destinationId !== this.config.destinationId) continue;
        const types = this.deps.step.identifierTypesOf(connection);
        if (!types.some((t) => addedTypes.has(t))) continue;
        const key = this.keyOf(connection);
        const change = key
          ? currentValueChange(profile!, connection, key, `resync_${c.change_id}_${connection.id}`, c.added_external_ids)
          : null;
        if (change) await this.deliver([change], connection.id);
      }
    }
    return messages.map(() => ok);
  }

  /** Delivers through the dispatch step (event calls or list buffer); returns how many changes were dead-lettered. */
  private async deliver(changes: ComputationChange[], connectionId: string): Promise<number> {
    if (changes.length === 0) return 0;
    const failures = await this.deps.step.dispatch(changes, undefined, connectionId);
    await this.deps.deadLetters.write(
      [...failures].map(([i, { reason }]) => ({ key: changes[i]!.profile_id, value: JSON.stringify(changes[i]), reason, step: 'resync' })),
    );
    for (const { reason, destinationId } of failures.values()) this.deps.status.count(destinationId, 'dead_lettered', reason);
    return failures.size;
  }
}
