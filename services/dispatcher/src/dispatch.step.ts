// engage.computations.changes -> the calls this destination should receive.
// Per chunk: plan every call (connections from config), skip calls already
// delivered (one EXISTS pipeline on their deterministic messageIds), deliver
// with bounded concurrency across profiles and in order within a profile, then
// one outcome per change: ok, or dlq with the reason when a call failed for good.
import type { ConfigStore, ConnectionConfig, DestinationConfig } from '@engage/config-store';
import {
  DEFAULT_EVENT_IDENTIFIER_TYPES,
  buildEventCalls,
  buildGroupCall,
  changeForAccountUser,
  type AccountUser,
  type SegmentCall,
} from '@engage/delivery';
import { dlq, ok, type ChunkContext, type ConsumedMessage, type MessageOutcome } from '@engage/kafka';
import type { Logger } from '@engage/logging';
import type { ProfileStateRepository } from '@engage/profile-store';
import type { RedisClient } from '@engage/redis';
import type { ComputationChange } from '@engage/schemas';
import type { DeliveryStatus } from './delivery-status';
import type { DeliveryService, HttpRequest } from './delivery.service';
import type { ListBuffer } from './list-buffer';

/** Why a change failed for good, and at which destination (several in DESTINATION_ID=* mode). */
export interface DispatchFailure {
  reason: string;
  destinationId: string;
}

interface PlannedCall {
  index: number;
  profileId: string;
  connectionId: string;
  destination: DestinationConfig;
  messageId: string;
  request: HttpRequest;
}

/** A value as the live path and the initial sync compare it (lists are JSON text already). */
export const liveValueText = (value: ComputationChange['value']): string => JSON.stringify(value);

/** Far longer than an initial sync takes; the record is dropped when the sync finishes. */
const LIVE_VALUES_TTL_SECONDS = 7 * 24 * 3600;

export class DispatchStep {
  constructor(
    private readonly config: { destinationId: string; keyPrefix: string; dedupeTtlSeconds: number; concurrency: number },
    private readonly deps: {
      store: ConfigStore;
      delivery: DeliveryService;
      status: DeliveryStatus;
      lists: ListBuffer;
      redis: RedisClient;
      log: Logger;
      /** Account-level changes: the account's users are read from the evaluator's state. */
      profiles: ProfileStateRepository;
    },
  ) {}

  private sentKey = (destinationId: string, messageId: string) => `${this.config.keyPrefix}dispatch:sent:${destinationId}:${messageId}`;
  /** Connections whose initial sync is done (once done, never undone: a cache of the synced keys). */
  private readonly syncedConnections = new Set<string>();

  /** The initial sync's "done" marker of a connection (written by ResyncJob). */
  syncedKey = (connectionId: string) => `${this.config.keyPrefix}dispatch:synced:${connectionId}`;
  /**
   * Values the live path delivered to a connection whose initial sync has not
   * finished: profile id -> value as sent. The sync skips a profile whose
   * current value was already delivered this way, so a value is not sent twice.
   */
  liveValuesKey = (connectionId: string) => `${this.config.keyPrefix}dispatch:live:${connectionId}`;

  /** The identifier types a connection matches on: its own, else its list adapter's, else user_id and email. */
  identifierTypesOf(connection: ConnectionConfig): string[] {
    const destination = this.deps.store.get('destination', connection.destinationId);
    return (
      connection.settings.identifierTypes ??
      (destination ? this.deps.lists.defaultIdentifierTypes(destination) : undefined) ?? [...DEFAULT_EVENT_IDENTIFIER_TYPES]
    );
  }

  /** Connections of a computation this dispatcher serves, with live destinations. */
  connectionsFor(
    change: Pick<ComputationChange, 'space_id' | 'computation_id'>,
    onlyConnectionId?: string,
  ): Array<{ connection: ConnectionConfig; destination: DestinationConfig }> {
    return this.deps.store
      .list('connection', change.space_id)
      .filter((c) => c.computationId === change.computation_id && c.enabled && c.destinationId === this.config.destinationId)
      .filter((c) => onlyConnectionId === undefined || c.id === onlyConnectionId)
      .map((connection) => ({ connection, destination: this.deps.store.get('destination', connection.destinationId) }))
      .filter(
        (x): x is { connection: ConnectionConfig; destination: DestinationConfig } => x.destination !== undefined && x.destination.enabled,
      );
  }

  /**
   * The users of each account that has an account-level change in the chunk
   * (one MGET for the accounts, one for their users), keyed by account id.
   */
  async accountUsers(changes: ComputationChange[]): Promise<Map<string, AccountUser[]>> {
    const accounts = [
      ...new Map(
        changes.filter((c) => c.level === 'account').map((c) => [c.profile_id, { spaceId: c.space_id, profileId: c.profile_id }]),
      ).values(),
    ];
    const out = new Map<string, AccountUser[]>();
    if (accounts.length === 0) return out;
    const docs = await this.deps.profiles.load(accounts);
    const userRefs = docs.flatMap((a) => (a.users ?? []).map((profileId) => ({ spaceId: a.spaceId, profileId })));
    const users = new Map((await this.deps.profiles.load(userRefs)).map((u) => [`${u.spaceId}|${u.profileId}`, u]));
    for (const a of docs) {
      out.set(
        a.profileId,
        (a.users ?? [])
          .map((id) => users.get(`${a.spaceId}|${id}`)!)
          .map((u) => ({ profileId: u.profileId, userId: u.userId, anonymousId: u.anonymousId, externalIds: u.externalIds })),
      );
    }
    return out;
  }

  /** Segment's calls for one change: per user for user-level changes; for accounts a Group call and/or the calls of each user. */
  callsFor(
    change: ComputationChange,
    destination: DestinationConfig,
    connection: ConnectionConfig,
    accountUsers: Map<string, AccountUser[]>,
  ): SegmentCall[] {
    if (change.level !== 'account') return buildEventCalls(change, destination, connection.settings);
    const calls: SegmentCall[] = [];
    if (connection.settings.group) {
      const group = buildGroupCall(change, destination);
      if (group) calls.push(group);
    }
    for (const user of accountUsers.get(change.profile_id) ?? [])
      calls.push(...buildEventCalls(changeForAccountUser(change, user), destination, connection.settings));
    return calls;
  }

  plan(
    changes: ComputationChange[],
    onlyConnectionId?: string,
    accountUsers = new Map<string, AccountUser[]>(),
  ): { calls: PlannedCall[]; failures: Map<number, DispatchFailure> } {
    const calls: PlannedCall[] = [];
    const failures = new Map<number, DispatchFailure>();
    changes.forEach((change, index) => {
      for (const { connection, destination } of this.connectionsFor(change, onlyConnectionId)) {
        if (this.deps.lists.isList(destination)) continue; // buffered by ListBuffer, flushed on cadence
        const url = destination.settings.url;
        if (typeof url !== 'string') {
          failures.set(index, {
            reason: `destination ${destination.id} (${destination.type}) has no adapter and no settings.url to post to`,
            destinationId: destination.id,
          });
          continue;
        }
        const headers = (destination.settings.headers as Record<string, string> | undefined) ?? {};
        for (const call of this.callsFor(change, destination, connection, accountUsers)) {
          calls.push({
            index,
            profileId: change.profile_id,
            connectionId: connection.id,
            destination,
            messageId: call.messageId,
            request: { url, method: 'POST', headers, body: call },
          });
        }
      }
    });
    return { calls, failures };
  }

  async handle(messages: Array<ConsumedMessage<ComputationChange>>, ctx: ChunkContext): Promise<MessageOutcome[]> {
    const changes = messages.map((m) => m.value);
    const failures = await this.dispatch(changes, ctx.heartbeat);
    return changes.map((change, i) => {
      const failure = failures.get(i);
      if (!failure) return ok;
      this.deps.log.warn(
        { changeId: change.change_id, destinationId: failure.destinationId, reason: failure.reason },
        'change_dead_lettered',
      );
      this.deps.status.count(failure.destinationId, 'dead_lettered', failure.reason);
      return dlq(failure.reason, 'deliver');
    });
  }

  /** Delivers the changes; returns the reasons of those that failed for good, by index. */
  async dispatch(
    changes: ComputationChange[],
    keepAlive?: () => Promise<void>,
    onlyConnectionId?: string,
  ): Promise<Map<number, DispatchFailure>> {
    await this.deps.lists.add(
      changes.flatMap((change) =>
        this.connectionsFor(change, onlyConnectionId)
          .filter((x) => this.deps.lists.isList(x.destination))
          .map((x) => ({ change, ...x })),
      ),
    );
    const { calls, failures } = this.plan(changes, onlyConnectionId, await this.accountUsers(changes));

    // Calls already delivered before a crash or redelivery are not sent again.
    const pipeline = this.deps.redis.pipeline();
    for (const c of calls) pipeline.exists(this.sentKey(c.destination.id, c.messageId));
    const sent = ((await pipeline.exec()) ?? []).map(([, n]) => n === 1);
    const todo = calls.filter((_, i) => !sent[i]);

    // Per profile in order; profiles in parallel, bounded.
    const byProfile = new Map<string, PlannedCall[]>();
    for (const c of todo) byProfile.set(c.profileId, [...(byProfile.get(c.profileId) ?? []), c]);
    const queues = [...byProfile.values()];
    // A worker that throws (a heartbeat during a rebalance, Redis down) stops the
    // others from taking new calls, and the chunk only returns once every worker
    // has stopped: no call of a redelivered chunk is still in flight here.
    let aborted = false;
    const marks: Array<Promise<unknown>> = [];
    const worker = async () => {
      for (let q = queues.shift(); q && !aborted; q = queues.shift()) {
        for (const call of q) {
          if (aborted) return;
          if (failures.has(call.index)) continue; // this change already failed: the DLQ gets it whole
          const result = await this.deps.delivery.deliver(call.destination, call.request, keepAlive);
          // Not awaited one by one (auto-pipelined); all are awaited before the chunk's offsets commit.
          if (result.ok)
            marks.push(this.deps.redis.set(this.sentKey(call.destination.id, call.messageId), '1', 'EX', this.config.dedupeTtlSeconds));
          else failures.set(call.index, { reason: result.reason, destinationId: call.destination.id });
        }
      }
    };
    const settled = await Promise.allSettled(
      Array.from({ length: Math.min(this.config.concurrency, queues.length) }, () =>
        worker().catch((err) => {
          aborted = true;
          throw err;
        }),
      ),
    );
    await Promise.all(marks);
    const error = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (error) throw error.reason;
    if (onlyConnectionId === undefined) await this.noteLiveValues(changes, calls, failures);
    return failures;
  }

  /** Records what the live path delivered to connections still waiting for (or in) their initial sync. */
  private async noteLiveValues(changes: ComputationChange[], calls: PlannedCall[], failures: Map<number, DispatchFailure>): Promise<void> {
    const delivered = calls.filter((c) => !failures.has(c.index) && changes[c.index]!.level === 'user');
    const unknown = [...new Set(delivered.map((c) => c.connectionId))].filter((id) => !this.syncedConnections.has(id));
    if (unknown.length === 0) return;
    const exists = await this.deps.redis.pipeline(unknown.map((id) => ['exists', this.syncedKey(id)])).exec();
    unknown.forEach((id, i) => exists?.[i]?.[1] === 1 && this.syncedConnections.add(id));
    const pending = delivered.filter((c) => !this.syncedConnections.has(c.connectionId));
    if (pending.length === 0) return;
    const tx = this.deps.redis.pipeline();
    for (const c of pending) {
      const change = changes[c.index]!;
      tx.hset(this.liveValuesKey(c.connectionId), change.profile_id, liveValueText(change.value));
      tx.expire(this.liveValuesKey(c.connectionId), LIVE_VALUES_TTL_SECONDS);
    }
    await tx.exec();
  }
}
