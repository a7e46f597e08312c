// List destinations: adds and removes accumulate per (destination, audience)
// in a Redis hash (profile -> last change wins) and are flushed through the
// destination type's adapter on its cadence, chunked to its batch limit.
//
// Cadence: destination settings.syncIntervalSeconds (or cadenceMinutes),
// default hourly. "Sync now": the control plane SETs
// `<prefix>dispatch:list:syncnow:<destinationId>` (any value); the next flush
// loop tick (1 s) flushes every list connection of that destination and
// deletes the key.
//
// Redis keys (prefix = REDIS_KEY_PREFIX):
//   dispatch:list:{<dst>:<list>}            HASH profileId -> {member, ids} pending
//   dispatch:list:{<dst>:<list>}:flushing   the batch being sent (survives a crash: resent first)
//   dispatch:list:flushed:<connectionId>  last flush time (ms)
//   dispatch:list:lock:<dst>:<list>       one replica flushes a list at a time
//   dispatch:list:audience:<dst>:<list>   the destination's audience {id, name}
//   dispatch:list:syncnow:<dst>           "sync now" trigger
// <list> is the computation id; for a journey send step, `<journey id>.<step key>`
// (listOf): each step of a journey is its own list. The hash tag keeps a list's
// pending and flushing hashes in one slot, so the RENAME between them works on
// a Redis Cluster. Until 2026-12 they were `dispatch:list:<dst>:<list>` and
// `...:flushing` (no tag): a flush first folds such legacy hashes into the
// tagged one (mergeLegacy), so buffers written before the upgrade are sent.
//
// Full-audience destinations (FullAudienceSync: The Trade Desk CRM, whose
// uploads replace the vendor's segment) are lists too: their changes are
// buffered (and so acknowledged) here, and a due flush is a full sync of the
// audience's members, whatever is pending.
//
// Journey steps only ever add: their changes are all entries (value true;
// DispatchStep.connectionsFor passes nothing else of a journey), so nothing
// here removes a user from a journey step's list.
//
// Outcomes are per item: an identifier the adapter cannot normalise, or one
// the destination refuses, goes to engage.dispatch.dlq with its reason and
// the rest are sent; a request refused as a whole (a non-retriable 4xx) is
// bisected until the bad items are isolated; a chunk whose retry window ran
// out is dead-lettered whole. Nothing is dropped silently.
import { StatusStore, type ConfigStore, type ConnectionConfig, type DestinationConfig } from '@engage/config-store';
import {
  chunk,
  flushIntervalMs,
  splitMembers,
  type ExternalAudience,
  type ExternalId,
  type ListDestinationAdapter,
  type ListMember,
  type NormalisedId,
} from '@engage/delivery';
import type { DeadLetter, DeadLetterWriter } from '@engage/kafka';
import type { Logger } from '@engage/logging';
import { acrossSlots, RedisLock, type RedisClient } from '@engage/redis';
import type { ComputationChange } from '@engage/schemas';
import { ListRequestError } from './adapters/list-adapter-error';
import type { DeliveryStatus } from './delivery-status';
import type { FullAudienceSync } from './full-audience-sync';

type Pending = Omit<ListMember, 'profileId'>;

/** Which list of the destination a connection fills: its computation's, or for a journey its send step's. */
export const listOf = (connection: Pick<ConnectionConfig, 'computationClass' | 'computationId' | 'computationKey'>): string =>
  connection.computationClass === 'journey_step'
    ? `${connection.computationId}.${connection.computationKey ?? ''}`
    : connection.computationId;
type Op = 'add' | 'remove';
const LOCK_MS = 5 * 60_000;

export class ListBuffer {
  constructor(
    private readonly config: { keyPrefix: string; destinationId: string },
    private readonly deps: {
      store: ConfigStore;
      redis: RedisClient;
      adapters: Map<string, ListDestinationAdapter>;
      status: DeliveryStatus;
      deadLetters: DeadLetterWriter;
      log: Logger;
      /** Full-audience destinations (The Trade Desk CRM): their changes are buffered here, their flush is a full sync. */
      fullSync?: Pick<FullAudienceSync, 'handles' | 'sync'>;
      now?: () => number;
    },
  ) {}

  private key = (destinationId: string, list: string) => `${this.config.keyPrefix}dispatch:list:{${destinationId}:${list}}`;
  /** The untagged pending hash of before (its `:flushing` too): read once by mergeLegacy, then gone. */
  private legacyKey = (destinationId: string, list: string) => `${this.config.keyPrefix}dispatch:list:${destinationId}:${list}`;
  private lastFlushKey = (connectionId: string) => `${this.config.keyPrefix}dispatch:list:flushed:${connectionId}`;
  private lockKey = (destinationId: string, list: string) => `${this.config.keyPrefix}dispatch:list:lock:${destinationId}:${list}`;
  private audienceKey = (destinationId: string, list: string) => `${this.config.keyPrefix}dispatch:list:audience:${destinationId}:${list}`;
  /** Set by the control plane's "sync now". */
  /** "Sync now" requests from the control plane (the status keyspace's owner holds them). */
  private get status(): StatusStore {
    return (this.statusStore ??= new StatusStore({ keyPrefix: this.config.keyPrefix }, { redis: this.deps.redis }));
  }
  private statusStore: StatusStore | undefined;

  isList(destination: DestinationConfig): boolean {
    return this.deps.adapters.has(destination.type) || (this.deps.fullSync?.handles(destination) ?? false);
  }

  defaultIdentifierTypes(destination: DestinationConfig): string[] | undefined {
    const adapter = this.deps.adapters.get(destination.type);
    return adapter ? [...adapter.identifierTypes] : undefined;
  }

  /**
   * Buffers changes (one round trip per Redis node: the lists of a batch lie
   * in several slots, so acrossSlots); the last change per profile wins until
   * the next flush.
   */
  async add(items: Array<{ change: ComputationChange; connection: ConnectionConfig; destination: DestinationConfig }>): Promise<void> {
    await acrossSlots(
      this.deps.redis,
      items.map(({ change, connection, destination }) => {
        const entry: Pending = {
          member: change.value !== false && change.value !== null,
          // All of them, in the order the profile gained them: the flush picks per the connection (ID Sync's first/last).
          ids: change.external_ids.map((x) => ({ type: x.type, id: x.id })),
        };
        return ['hset', this.key(destination.id, listOf(connection)), change.profile_id, JSON.stringify(entry)];
      }),
    );
  }

  /**
   * Folds the untagged hashes of before the hash tag (pending, then an
   * interrupted flush's batch) into the tagged pending hash, never over an
   * entry already there (newer: the last change per profile wins), then drops
   * them. Under the list's lock; a crash half way only repeats it (HSETNX).
   * NOTE: one command per key (the legacy keys lie in other slots): Cluster-safe.
   * Remove once every deployment has flushed each list since the upgrade.
   */
  private async mergeLegacy(destinationId: string, list: string, key: string): Promise<void> {
    const legacy = this.legacyKey(destinationId, list);
    for (const old of [legacy, `${legacy}:flushing`]) {
      const entries = await this.deps.redis.hgetall(old);
      const fields = Object.entries(entries);
      if (fields.length === 0) continue;
      await Promise.all(fields.map(([profileId, raw]) => this.deps.redis.hsetnx(key, profileId, raw)));
      await this.deps.redis.del(old);
      this.deps.log.info({ destinationId, list, key: old, entries: fields.length }, 'list_buffer_legacy_merged');
    }
  }

  /** Flushes every list connection of this dispatcher that is due (cadence or "sync now"); returns how many were flushed. */
  async flushDue(): Promise<number> {
    const now = this.deps.now?.() ?? Date.now();
    let flushed = 0;
    const syncNow = new Set<string>();
    for (const connection of this.deps.store.list('connection')) {
      if (connection.destinationId !== this.config.destinationId) continue;
      const destination = this.deps.store.get('destination', connection.destinationId);
      if (!destination || !this.isList(destination) || !destination.enabled || !connection.enabled) continue;
      if (!syncNow.has(destination.id) && (await this.status.takeSyncNow(destination.id))) syncNow.add(destination.id);
      const last = Number((await this.deps.redis.get(this.lastFlushKey(connection.id))) ?? 0);
      if (!syncNow.has(destination.id) && now - last < flushIntervalMs(destination.settings)) continue;
      if (await this.flush(destination, connection)) flushed++;
      await this.deps.redis.set(this.lastFlushKey(connection.id), String(now));
    }
    return flushed;
  }

  /** One list's flush under a lock; false when another replica holds it or nothing was pending. */
  private async flush(destination: DestinationConfig, connection: ConnectionConfig): Promise<boolean> {
    // NOTE: one chunk may retry for the whole retry window (hours): the lock is
    // renewed while this flush runs, so no other replica takes the list and
    // sends the same batch meanwhile.
    const lock = this.lockKey(destination.id, listOf(connection));
    const result = await new RedisLock(this.deps.redis).withLock(lock, LOCK_MS, () => this.flushLocked(destination, connection), {
      autoRenew: true,
    });
    return result.acquired && result.value;
  }

  private async flushLocked(destination: DestinationConfig, connection: ConnectionConfig): Promise<boolean> {
    const key = this.key(destination.id, listOf(connection));
    const flushing = `${key}:flushing`;
    if (this.deps.fullSync?.handles(destination)) {
      // Its changes only say that the audience changed: each due flush sends the whole membership of the
      // moment (whether changes are pending or not), then drops them; one changed meanwhile is in the next sync.
      await this.deps.fullSync.sync(destination, connection);
      await this.deps.redis.del(key, flushing);
      return true;
    }
    const adapter = this.deps.adapters.get(destination.type)!;
    await this.mergeLegacy(destination.id, listOf(connection), key);
    // A flush interrupted by a crash left its batch in `flushing`: send it first (at least once).
    if ((await this.deps.redis.exists(flushing)) === 0) {
      if ((await this.deps.redis.exists(key)) === 0) return false;
      await this.deps.redis.rename(key, flushing);
    }
    const entries = await this.deps.redis.hgetall(flushing);
    const members: ListMember[] = Object.entries(entries).map(([profileId, raw]) => ({ profileId, ...(JSON.parse(raw) as Pending) }));
    let audience: ExternalAudience;
    try {
      audience = await this.audienceFor(adapter, destination, connection);
    } catch (err) {
      // No audience to write to (bad credentials, account): keep the batch for the next flush, show the error.
      const reason = (err as Error).message;
      this.deps.log.error({ destinationId: destination.id, connectionId: connection.id, reason }, 'list_audience_failed');
      await this.deps.status.connection(connection.id, { state: 'Failed', error: reason });
      return false;
    }
    const { add, remove } = splitMembers(
      members,
      connection.settings.identifierTypes ?? adapter.identifierTypes,
      connection.settings.idSync,
    );
    const letters: DeadLetter[] = [];
    let sent = 0;
    for (const [op, items] of [
      ['remove', remove],
      ['add', add],
    ] as const) {
      // Normalise first: an identifier that cannot be sent is a dead letter, and chunks are filled with sendable ones only.
      const sendable: Array<{ item: (typeof items)[number]; id: NormalisedId }> = [];
      for (const item of items) {
        const id = adapter.normalise(item.id);
        if (id.ok) sendable.push({ item, id });
        else letters.push(this.letter(destination, connection, op, item.member.profileId, item.id, id.reason));
      }
      for (const part of chunk(sendable, adapter.batchLimit(destination))) {
        const failed = await this.send(
          adapter,
          op,
          destination,
          audience,
          part.map((x) => x.id),
        );
        sent += part.length - failed.length;
        for (const f of failed)
          letters.push(this.letter(destination, connection, op, part[f.index]!.item.member.profileId, part[f.index]!.item.id, f.reason));
      }
    }
    await this.deps.deadLetters.write(letters);
    await this.deps.redis.del(flushing);
    for (const l of letters) this.deps.status.count(destination.id, 'dead_lettered', l.reason);
    await this.deps.status.connection(connection.id, {
      state: letters.length > 0 ? 'Partially Synced' : 'Synced',
      matched: members.length,
      sent,
      failed: letters.length,
      error: letters[0]?.reason,
    });
    this.deps.log.info(
      {
        destinationId: destination.id,
        connectionId: connection.id,
        add: add.length,
        remove: remove.length,
        deadLettered: letters.length,
      },
      'list_flushed',
    );
    return true;
  }

  /** The destination's audience for this computation: the one we made before if it still exists, else a new one. */
  private async audienceFor(
    adapter: ListDestinationAdapter,
    destination: DestinationConfig,
    connection: ConnectionConfig,
  ): Promise<ExternalAudience> {
    const key = this.audienceKey(destination.id, listOf(connection));
    const known = await this.deps.redis.get(key);
    if (known) {
      const found = await adapter.getAudience(destination, (JSON.parse(known) as ExternalAudience).id);
      if (found) return found;
    }
    // A journey step's list is named by the step key (as its calls' audience key), its id the journey's.
    const computation =
      connection.computationClass === 'journey_step'
        ? { key: connection.computationKey, name: connection.computationKey }
        : this.deps.store.get(connection.computationClass === 'audience' ? 'audience' : 'computed_trait', connection.computationId);
    const created = await adapter.createAudience(destination, {
      computationId: connection.computationId,
      key: computation?.key ?? connection.computationId,
      name: computation?.name ?? connection.computationId,
    });
    await this.deps.redis.set(key, JSON.stringify(created));
    return created;
  }

  /** Sends one chunk; returns the items that failed for good (by index in `items`). */
  private async send(
    adapter: ListDestinationAdapter,
    op: Op,
    destination: DestinationConfig,
    audience: ExternalAudience,
    items: NormalisedId[],
  ): Promise<Array<{ index: number; reason: string }>> {
    if (items.length === 0) return [];
    try {
      return (await adapter[op](destination, audience, items)).failed;
    } catch (err) {
      if (!(err instanceof ListRequestError)) throw err;
      // Retry window spent, or a single refused item: these items are dead letters.
      if (err.retriable || items.length === 1) return items.map((_, index) => ({ index, reason: err.message }));
      // Refused as a whole: halve until the bad items are alone, so the good ones still go.
      const half = Math.ceil(items.length / 2);
      const left = await this.send(adapter, op, destination, audience, items.slice(0, half));
      const right = await this.send(adapter, op, destination, audience, items.slice(half));
      return [...left, ...right.map((f) => ({ ...f, index: f.index + half }))];
    }
  }

  private letter(
    destination: DestinationConfig,
    connection: ConnectionConfig,
    op: Op,
    profileId: string,
    id: ExternalId,
    reason: string,
  ): DeadLetter {
    const value = {
      destination_id: destination.id,
      connection_id: connection.id,
      computation_id: connection.computationId,
      profile_id: profileId,
      op,
      identifier: id,
    };
    return { key: profileId, value: JSON.stringify(value), reason, step: 'list-flush' };
  }
}
