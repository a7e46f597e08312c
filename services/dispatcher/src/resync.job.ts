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
import type { DispatchStep } from './dispatch.step';

function currentValueChange(
  profile: StoredProfile,
  connection: ConnectionConfig,
  key: string,
  changeId: string,
  externalIds: ComputationChange['external_ids'],
): ComputationChange | null {
  const stored = profile.values[connection.computationId];
  if (!stored || stored.value === null || stored.value === false) return null;
  const list = Array.isArray(stored.value);
  return {
    change_id: changeId,
    space_id: profile.spaceId,
    computation_id: connection.computationId,
    computation_key: key,
    computation_class: connection.computationClass,
    level: 'user',
    profile_id: profile.profileId,
    value: list ? JSON.stringify(stored.value) : (stored.value as boolean | number | string),
    previous: null,
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

  private syncedKey = (connectionId: string) => `${this.config.keyPrefix}dispatch:synced:${connectionId}`;

  private keyOf(connection: ConnectionConfig): string | undefined {
    return this.deps.store.get(connection.computationClass === 'audience' ? 'audience' : 'computed_trait', connection.computationId)?.key;
  }

  /** Sends current members/values for connections that have not had their initial sync. */
  async syncNewConnections(): Promise<void> {
    for (const connection of this.deps.store.list('connection')) {
      if (this.config.destinationId !== '*' && connection.destinationId !== this.config.destinationId) continue;
      if (!connection.enabled || (await this.deps.redis.exists(this.syncedKey(connection.id))) === 1) continue;
      const key = this.keyOf(connection);
      if (!key) continue;
      let sent = 0;
      let failed = 0;
      await this.deps.status.connection(connection.id, { state: 'Syncing' });
      for await (const refs of this.profileRefs(connection)) {
        const profiles = await this.deps.profiles.load(refs);
        const changes = profiles
          .map((p) => currentValueChange(p, connection, key, `sync_${connection.id}_${p.profileId}`, p.externalIds))
          .filter((c): c is ComputationChange => c !== null);
        const lost = await this.deliver(changes, connection.id);
        sent += changes.length - lost;
        failed += lost;
      }
      await this.deps.redis.set(this.syncedKey(connection.id), String(Date.now()));
      await this.deps.status.connection(connection.id, {
        state: failed > 0 ? 'Partially Synced' : 'Synced',
        matched: sent + failed,
        sent,
        failed,
      });
      this.deps.log.info({ connectionId: connection.id, sent, failed }, 'initial_sync_done');
    }
  }

  private async *profileRefs(connection: ConnectionConfig) {
    if (connection.computationClass === 'audience') {
      const members = await this.deps.redis.smembers(this.deps.profiles.membersKey(connection.computationId));
      for (let i = 0; i < members.length; i += 500)
        yield members.slice(i, i + 500).map((profileId) => ({ spaceId: connection.spaceId, profileId }));
    } else {
      for await (const page of this.deps.profiles.scanProfiles()) yield page.filter((r) => r.spaceId === connection.spaceId);
    }
  }

  /** engage.identity.changes handler: re-sync on new external ids. */
  async handleIdentity(messages: Array<ConsumedMessage<IdentityChange>>): Promise<MessageOutcome[]> {
    for (const { value: c } of messages) {
      if (c.kind !== 'external_id_added' || c.added_external_ids.length === 0) continue;
      const [profile] = await this.deps.profiles.load([{ spaceId: c.space_id, profileId: c.profile_id }]);
      const addedTypes = new Set(c.added_external_ids.map((x) => x.type));
      for (const connection of this.deps.store.list('connection', c.space_id)) {
        if (this.config.destinationId !== '*' && connection.destinationId !== this.config.destinationId) continue;
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
      [...failures].map(([i, reason]) => ({ key: changes[i]!.profile_id, value: JSON.stringify(changes[i]), reason, step: 'resync' })),
    );
    return failures.size;
  }
}
