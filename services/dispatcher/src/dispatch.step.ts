// engage.computations.changes -> the calls this destination should receive.
// Per chunk: plan every call (connections from config), claim each
// (connection, profile) against a running initial sync (Handover), skip calls
// already delivered (SentCalls), then deliver with bounded concurrency across
// profiles and in order within a profile: one attempt each. A call that gets a
// retriable answer goes to the destination's retry schedule (RetrySchedule),
// and a profile's later calls queue behind it there, so the chunk never sleeps
// through a backoff: its offsets commit once each call is delivered, failed for
// good (dlq outcome) or durably scheduled.
import type { ConfigStore, ConnectionConfig, DestinationConfig } from '@engage/config-store';
import {
  DEFAULT_EVENT_IDENTIFIER_TYPES,
  buildEventCalls,
  idSyncTypes,
  buildGroupCall,
  changeForAccountUser,
  isDeliverable,
  planActionInvocations,
  withExternalAudience,
  type AccountUser,
  type SegmentCall,
} from '@engage/delivery';
import { dlq, ok, type ChunkContext, type ConsumedMessage, type IHeaders, type MessageOutcome } from '@engage/kafka';
import type { Logger } from '@engage/logging';
import { CHANGE_SEQ_HEADER, type ProfileStateRepository } from '@engage/profile-store';
import type { RedisClient } from '@engage/redis';
import type { ComputationChange } from '@engage/schemas';
import type { DeliveryStatus } from './delivery-status';
import type { ActionRequest, AttemptResult, DeliveryService, OutboundRequest } from './delivery.service';
import type { Handover } from './handover';
import type { ListBuffer } from './list-buffer';
import type { RetrySchedule, ScheduledCall, StoredLetter } from './retry-schedule';
import type { SentCalls } from './sent-calls';
import { TraitEnrichment, type EnrichmentOf } from './trait-enrichment';
import { SyncMarkers } from './sync-markers';

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
  request: OutboundRequest;
}

export interface DispatchOptions {
  /** Heartbeats the consumer while a throttle wait runs inline. */
  keepAlive?: () => Promise<void>;
  /** Only this connection's calls (initial sync, re-sync). */
  onlyConnectionId?: string;
  /**
   * 'live': change records from the topic, claimed against a connection's
   * initial sync (Handover); 'none': the caller claimed them (the initial
   * sync) or they need no claim (a re-sync on a new external id).
   */
  handover: 'live' | 'none';
  /** Live records: the profile's changeSeq each was made at (CHANGE_SEQ_HEADER), when it carries one. */
  seqOf?: (index: number) => number | undefined;
  /** The original record of change `index`, dead-lettered if its retries run out. */
  letterOf: (index: number) => StoredLetter;
}

/** The profile's changeSeq a change record was made at (absent on records from before it existed). */
function changeSeqOf(m: ConsumedMessage<unknown>): number | undefined {
  const raw = m.headers?.[CHANGE_SEQ_HEADER];
  const text = Buffer.isBuffer(raw) ? raw.toString() : typeof raw === 'string' ? raw : undefined;
  const seq = text === undefined ? NaN : Number(text);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

/** A value as the live path and the initial sync compare it (lists are JSON text already). */
export const liveValueText = (value: ComputationChange['value']): string => JSON.stringify(value);

/** A record's headers as text, as the DLQ writes them back. */
function headersText(headers: IHeaders | undefined): Record<string, string> | undefined {
  if (!headers) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.map(String).join(',') : String(v);
  return out;
}

/** A consumed record as the retry schedule keeps it for the DLQ: its bytes untouched. */
export function letterOfRecord(m: ConsumedMessage<unknown>, step: string): StoredLetter {
  return {
    key: m.key,
    value: (m.raw.value ?? Buffer.alloc(0)).toString('base64'),
    headers: headersText(m.raw.headers),
    step,
    source: { topic: m.topic, partition: m.partition, offset: m.offset },
  };
}

/** A connection of a journey's send step (CONTRACT.md section 9), written by the control plane at publish. */
export const isJourneyConnection = (connection: Pick<ConnectionConfig, 'computationClass'>): boolean =>
  connection.computationClass === 'journey_step';

/**
 * Connections that never have an initial sync, handover claims or re-syncs:
 * journey send steps. Their changes are events (a user reached the step),
 * not a membership with current members: there is nothing to sync when the
 * connection is made, and nothing for the live path to hand over with. So
 * the live path sends them without claiming (DispatchStep.claimLive), the
 * initial-sync loop marks them synced with nothing sent (ResyncJob), and
 * re-syncs on new external ids never reach them (connectionsFor).
 * NOTE: without this, a journey connection would never be marked synced
 * (there is no audience or trait to read members of), and every live call
 * would take a handover claim: a user reaching the same step again (re-entry)
 * would then be refused as "the same value already sent".
 */
export const isSettledByDesign = isJourneyConnection;

export class DispatchStep {
  constructor(
    private readonly config: { destinationId: string; keyPrefix: string; concurrency: number },
    private readonly deps: {
      store: ConfigStore;
      delivery: DeliveryService;
      status: DeliveryStatus;
      lists: ListBuffer;
      redis: RedisClient;
      log: Logger;
      /** Account-level changes: the account's users are read from the evaluator's state. */
      profiles: ProfileStateRepository;
      sent: SentCalls;
      schedule: RetrySchedule;
      handover: Handover;
      now?: () => number;
    },
  ) {
    this.enrichment = new TraitEnrichment({ store: deps.store, profiles: deps.profiles });
  }

  private readonly enrichment: TraitEnrichment;

  private now() {
    return this.deps.now?.() ?? Date.now();
  }

  /**
   * Connections whose initial sync is done and whose handover claims are gone:
   * the live path sends without claiming (once settled, never unsettled).
   */
  private readonly settledConnections = new Set<string>();

  /** The initial syncs' markers (written by ResyncJob, which reaches them through this step). */
  get syncMarkers(): SyncMarkers {
    return (this.markers ??= new SyncMarkers({ keyPrefix: this.config.keyPrefix }, { redis: this.deps.redis }));
  }
  private markers: SyncMarkers | undefined;

  /** The identifier types a connection matches on: its ID Sync's, else its own, else its list adapter's, else user_id and email. */
  identifierTypesOf(connection: ConnectionConfig): string[] {
    const destination = this.deps.store.get('destination', connection.destinationId);
    return (
      idSyncTypes(connection.settings) ??
      connection.settings.identifierTypes ??
      (destination ? this.deps.lists.defaultIdentifierTypes(destination) : undefined) ?? [...DEFAULT_EVENT_IDENTIFIER_TYPES]
    );
  }

  /**
   * Connections of a computation this dispatcher serves, with live
   * destinations. A re-sync (the current value, to ids a profile just
   * gained) goes only to connections that match on one of those ids' types.
   * Journey connections (one per send step and destination) take only their
   * step's changes (same journey id and step key), only entries, and never a
   * re-sync: a journey step has no current value to send again
   * (isSettledByDesign).
   */
  connectionsFor(
    change: Pick<
      ComputationChange,
      'space_id' | 'computation_id' | 'computation_key' | 'computation_class' | 'reason' | 'external_ids' | 'value'
    >,
    onlyConnectionId?: string,
  ): Array<{ connection: ConnectionConfig; destination: DestinationConfig }> {
    if (!isDeliverable(change)) return [];
    return this.deps.store
      .list('connection', change.space_id)
      .filter((c) => c.computationId === change.computation_id && c.enabled && c.destinationId === this.config.destinationId)
      .filter((c) => onlyConnectionId === undefined || c.id === onlyConnectionId)
      .filter((c) => (c.computationKey === undefined ? !isJourneyConnection(c) : c.computationKey === change.computation_key))
      .filter((c) => !isJourneyConnection(c) || (change.computation_class === 'journey_step' && change.reason !== 'resync'))
      .filter((c) => change.reason !== 'resync' || this.identifierTypesOf(c).some((t) => change.external_ids.some((x) => x.type === t)))
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
          .map((u) => ({
            profileId: u.profileId,
            userId: u.userId,
            anonymousId: u.anonymousId,
            externalIds: u.externalIds,
            traits: u.traits,
          })),
      );
    }
    return out;
  }

  /** The changes a change's calls are built of: itself for user-level changes, one per user of the account for accounts. */
  private userChanges(change: ComputationChange, accountUsers: Map<string, AccountUser[]>): ComputationChange[] {
    if (change.level !== 'account') return [change];
    return (accountUsers.get(change.profile_id) ?? []).map((user) => changeForAccountUser(change, user));
  }

  /** Segment's calls for one change: per user for user-level changes; for accounts a Group call and/or the calls of each user. */
  callsFor(
    change: ComputationChange,
    destination: DestinationConfig,
    connection: ConnectionConfig,
    accountUsers: Map<string, AccountUser[]>,
    enrichmentOf: EnrichmentOf = () => ({}),
  ): SegmentCall[] {
    const calls: SegmentCall[] = [];
    if (change.level === 'account' && connection.settings.group) {
      const group = buildGroupCall(change, destination);
      if (group) calls.push(group);
    }
    for (const c of this.userChanges(change, accountUsers))
      calls.push(...buildEventCalls(c, destination, connection.settings, enrichmentOf(c, connection)));
    return calls;
  }

  /** Trait Enrichment of the chunk's event calls (list destinations send identifiers only). */
  private loadEnrichment(
    changes: ComputationChange[],
    onlyConnectionId: string | undefined,
    accountUsers: Map<string, AccountUser[]>,
  ): Promise<EnrichmentOf> {
    return this.enrichment.load(
      changes.flatMap((change) =>
        this.connectionsFor(change, onlyConnectionId)
          .filter((x) => !this.deps.lists.isList(x.destination) && x.connection.settings.traitEnrichment?.length)
          .flatMap(({ connection }) => this.userChanges(change, accountUsers).map((c) => ({ change: c, connection }))),
      ),
    );
  }

  plan(
    changes: ComputationChange[],
    onlyConnectionId?: string,
    accountUsers = new Map<string, AccountUser[]>(),
    enrichmentOf: EnrichmentOf = () => ({}),
  ): { calls: PlannedCall[]; failures: Map<number, DispatchFailure> } {
    const calls: PlannedCall[] = [];
    const failures = new Map<number, DispatchFailure>();
    changes.forEach((change, index) => {
      for (const { connection, destination } of this.connectionsFor(change, onlyConnectionId)) {
        if (this.deps.lists.isList(destination)) continue; // buffered by ListBuffer, flushed on cadence
        if (destination.type === 'actions') {
          // The calls Segment's pipeline would send, each run by the mappings it matches (none: nothing to send).
          const mappings = destination.mappings ?? [];
          const segmentCalls = withExternalAudience(
            this.callsFor(change, destination, connection, accountUsers, enrichmentOf),
            connection.externalAudienceId,
            connection.audienceSettings,
          );
          for (const invocation of planActionInvocations(segmentCalls, mappings)) {
            calls.push({
              index,
              profileId: change.profile_id,
              connectionId: connection.id,
              destination,
              messageId: invocation.messageId,
              request: { kind: 'action', mapping: mappings.find((m) => m.id === invocation.mappingId)!, event: invocation.event },
            });
          }
          continue;
        }
        const url = destination.settings.url;
        if (typeof url !== 'string') {
          failures.set(index, {
            reason: `destination ${destination.id} (${destination.type}) has no adapter and no settings.url to post to`,
            destinationId: destination.id,
          });
          continue;
        }
        const headers = (destination.settings.headers as Record<string, string> | undefined) ?? {};
        for (const call of this.callsFor(change, destination, connection, accountUsers, enrichmentOf)) {
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
    const failures = await this.dispatch(changes, {
      keepAlive: ctx.heartbeat,
      handover: 'live',
      seqOf: (i) => changeSeqOf(messages[i]!),
      letterOf: (i) => letterOfRecord(messages[i]!, 'deliver'),
    });
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

  /**
   * Delivers the changes (one attempt per call; retries are scheduled);
   * returns the reasons of those that failed for good, by index.
   */
  async dispatch(changes: ComputationChange[], options: DispatchOptions): Promise<Map<number, DispatchFailure>> {
    const { onlyConnectionId, keepAlive } = options;
    await this.deps.lists.add(
      changes.flatMap((change) =>
        this.connectionsFor(change, onlyConnectionId)
          .filter((x) => this.deps.lists.isList(x.destination))
          .map((x) => ({ change, ...x })),
      ),
    );
    const accountUsers = await this.accountUsers(changes);
    const enrichmentOf = await this.loadEnrichment(changes, onlyConnectionId, accountUsers);
    const planned = this.plan(changes, onlyConnectionId, accountUsers, enrichmentOf);
    const failures = planned.failures;
    const calls = options.handover === 'live' ? await this.claimLive(changes, planned.calls, options.seqOf) : planned.calls;

    // Calls already delivered before a crash or redelivery are not sent again.
    const sent = await this.deps.sent.delivered(calls.map((c) => ({ destinationId: c.destination.id, messageId: c.messageId })));
    const todo = calls.filter((_, i) => !sent[i]);
    // Profiles with a call waiting for its retry: their calls queue behind it.
    const waiting = await this.deps.schedule.waiting(todo.map((c) => c.profileId));

    // Per profile in order; profiles in parallel, bounded.
    const byProfile = new Map<string, PlannedCall[]>();
    for (const c of todo) byProfile.set(c.profileId, [...(byProfile.get(c.profileId) ?? []), c]);
    const queues = [...byProfile.values()];
    const marks: Array<Promise<unknown>> = [];
    /** What one attempt's result means for the call: delivered, failed for good, or scheduled (its profile then waits). */
    const settle = async (call: PlannedCall, result: AttemptResult, since: number): Promise<'blocked' | 'done'> => {
      if (result.kind === 'delivered') {
        // Not awaited one by one (auto-pipelined); all are awaited before the chunk's offsets commit.
        marks.push(this.deps.sent.mark(call.destination.id, call.messageId));
        return 'done';
      }
      if (result.kind === 'fail') {
        failures.set(call.index, { reason: result.reason, destinationId: call.destination.id });
        return 'done';
      }
      const next = this.deps.delivery.nextRetry(call.destination, result, 0, since);
      if (next.kind === 'give-up') {
        failures.set(call.index, { reason: next.reason, destinationId: call.destination.id });
        return 'done';
      }
      await this.deps.schedule.enqueue([{ call: this.stored(call, options, since, 1, result.reason), dueAt: next.dueAt }]);
      return 'blocked';
    };
    /** Never sent ahead of the profile's waiting call: it is tried when that one is done. */
    const queueBehind = async (calls: PlannedCall[]) => {
      const since = this.now();
      await this.deps.schedule.enqueue(calls.map((call) => ({ call: this.stored(call, options, since, 0), dueAt: since })));
    };
    const actions = queues[0]?.[0]?.request.kind === 'action';
    const run = actions
      ? () => this.deliverBatched(queues, waiting, failures, settle, queueBehind, keepAlive)
      : () => this.deliverEach(queues, waiting, failures, settle, queueBehind, keepAlive);
    try {
      await run();
    } finally {
      await Promise.allSettled(marks);
    }
    await Promise.all(marks);
    return failures;
  }

  /**
   * Webhooks: one request per call. Workers take a profile's queue each and
   * send its calls in order.
   */
  private async deliverEach(
    queues: PlannedCall[][],
    waiting: Set<string>,
    failures: Map<number, DispatchFailure>,
    settle: (call: PlannedCall, result: AttemptResult, since: number) => Promise<'blocked' | 'done'>,
    queueBehind: (calls: PlannedCall[]) => Promise<void>,
    keepAlive?: () => Promise<void>,
  ): Promise<void> {
    // A worker that throws (a heartbeat during a rebalance, Redis down) stops the
    // others from taking new calls, and the chunk only returns once every worker
    // has stopped: no call of a redelivered chunk is still in flight here.
    let aborted = false;
    const worker = async () => {
      for (let q = queues.shift(); q && !aborted; q = queues.shift()) {
        let blocked = waiting.has(q[0]!.profileId);
        for (const call of q) {
          if (aborted) return;
          if (failures.has(call.index)) continue; // this change already failed: the DLQ gets it whole
          if (blocked) {
            await queueBehind([call]);
            continue;
          }
          const since = this.now();
          const result = await this.deps.delivery.attempt(call.destination, call.request, keepAlive);
          blocked = (await settle(call, result, since)) === 'blocked';
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
    const error = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (error) throw error.reason;
  }

  /**
   * Actions destinations: rounds, each taking the next call of every profile
   * (so a profile's calls stay in order), grouped by mapping into requests of
   * the action's batch size (onBatch, a status per item: one refused item
   * fails alone, a retriable one is scheduled and retried alone). Requests of
   * a round run in parallel, bounded by the concurrency.
   */
  private async deliverBatched(
    queues: PlannedCall[][],
    waiting: Set<string>,
    failures: Map<number, DispatchFailure>,
    settle: (call: PlannedCall, result: AttemptResult, since: number) => Promise<'blocked' | 'done'>,
    queueBehind: (calls: PlannedCall[]) => Promise<void>,
    keepAlive?: () => Promise<void>,
  ): Promise<void> {
    const blocked = new Set([...waiting]);
    let live = queues.map((q) => [...q]);
    while (live.length > 0) {
      const heads: PlannedCall[] = [];
      for (const q of live) {
        while (q.length > 0 && failures.has(q[0]!.index)) q.shift(); // its change already failed: the DLQ gets it whole
        if (q.length === 0) continue;
        if (blocked.has(q[0]!.profileId)) await queueBehind(q.splice(0));
        else heads.push(q.shift()!);
      }
      live = live.filter((q) => q.length > 0);
      const groups = new Map<string, PlannedCall[]>();
      for (const call of heads) {
        const request = call.request as ActionRequest;
        groups.set(request.mapping.id, [...(groups.get(request.mapping.id) ?? []), call]);
      }
      const batches = [...groups.values()].flatMap((calls) => {
        const { mapping } = calls[0]!.request as ActionRequest;
        const size = Math.max(1, this.deps.delivery.batchSize(calls[0]!.destination, mapping));
        return Array.from({ length: Math.ceil(calls.length / size) }, (_, i) => calls.slice(i * size, (i + 1) * size));
      });
      const work = async (batch: PlannedCall[]) => {
        const since = this.now();
        const { mapping } = batch[0]!.request as ActionRequest;
        const events = batch.map((c) => (c.request as ActionRequest).event);
        const results = await this.deps.delivery.attemptActions(batch[0]!.destination, mapping, events, keepAlive);
        for (const [i, call] of batch.entries()) {
          if ((await settle(call, results[i]!, since)) === 'blocked') blocked.add(call.profileId);
        }
      };
      for (let i = 0; i < batches.length; i += this.config.concurrency) {
        const settled = await Promise.allSettled(batches.slice(i, i + this.config.concurrency).map(work));
        const error = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (error) throw error.reason;
      }
    }
  }

  private stored(call: PlannedCall, options: DispatchOptions, since: number, attempts: number, lastReason?: string): ScheduledCall {
    return {
      messageId: call.messageId,
      profileId: call.profileId,
      connectionId: call.connectionId,
      body: call.request.kind === 'action' ? call.request.event : call.request.body,
      ...(call.request.kind === 'action' ? { mappingId: call.request.mapping.id } : {}),
      since,
      attempts,
      lastReason,
      letter: options.letterOf(call.index),
    };
  }

  /**
   * Live calls to connections whose initial sync is pending, running or just
   * finished: claimed per (change, connection) first (Handover), and dropped
   * when the sync (or an earlier record) already sent that state.
   */
  private async claimLive(changes: ComputationChange[], calls: PlannedCall[], seqOf: DispatchOptions['seqOf']): Promise<PlannedCall[]> {
    for (const id of new Set(calls.map((c) => c.connectionId))) {
      const connection = this.deps.store.get('connection', id);
      if (connection && isSettledByDesign(connection)) this.settledConnections.add(id);
    }
    const unknown = [...new Set(calls.map((c) => c.connectionId))].filter((id) => !this.settledConnections.has(id));
    if (unknown.length === 0) return calls;
    const [synced, active] = await Promise.all([this.syncMarkers.synced(unknown), this.deps.handover.active(unknown)]);
    unknown.forEach((id, i) => synced[i] && !active[i] && this.settledConnections.add(id));
    // The sync sends user-level values; account-level changes fan out to users it does not claim.
    // A re-sync goes to ids the profile just gained, which the sync's claim (same value, older ids) does not cover.
    const claimable = (c: PlannedCall) =>
      !this.settledConnections.has(c.connectionId) && changes[c.index]!.level === 'user' && changes[c.index]!.reason !== 'resync';
    const keys = [...new Set(calls.filter(claimable).map((c) => `${c.index}|${c.connectionId}`))];
    if (keys.length === 0) return calls;
    const granted = await this.deps.handover.claim(
      'live',
      keys.map((k) => {
        const [index, connectionId] = [Number(k.slice(0, k.indexOf('|'))), k.slice(k.indexOf('|') + 1)];
        const change = changes[index]!;
        return {
          connectionId,
          profileId: change.profile_id,
          id: change.change_id,
          valueText: liveValueText(change.value),
          at: change.emitted_at,
          seq: seqOf?.(index),
        };
      }),
    );
    const refused = new Set(keys.filter((_, i) => granted[i] === null));
    if (refused.size > 0) this.deps.log.debug({ refused: refused.size }, 'live_calls_already_sent_by_initial_sync');
    return calls.filter((c) => !refused.has(`${c.index}|${c.connectionId}`));
  }
}
