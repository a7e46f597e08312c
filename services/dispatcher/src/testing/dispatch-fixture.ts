// The dispatcher's steps wired for fast tests: an in-memory configuration,
// a clock the test moves, real Redis (a fresh key prefix) and the real
// delivery service calling a local HTTP receiver. Dead letters are recorded
// in memory (the DLQ writer's own behaviour is libs/kafka's to test).
import type { ConfigStore, ConnectionConfig, DestinationConfig } from '@engage/config-store';
import type { ConsumedMessage, DeadLetter, DeadLetterWriter } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { CHANGE_SEQ_HEADER, ProfileStateRepository } from '@engage/profile-store';
import type { RedisClient } from '@engage/redis';
import type { ComputationChange } from '@engage/schemas';
import { uniqueName } from '@engage/testing';
import { Registry } from 'prom-client';
import { DeliveryStatus } from '../delivery-status';
import { DeliveryService, type ActionRunner } from '../delivery.service';
import { DispatchStep } from '../dispatch.step';
import { FullAudienceSync } from '../full-audience-sync';
import { Handover } from '../handover';
import { ListBuffer } from '../list-buffer';
import { RateLimiter } from '../rate-limiter';
import { ResyncJob } from '../resync.job';
import { RetryLoop } from '../retry-loop';
import { RetrySchedule } from '../retry-schedule';
import { SentCalls } from '../sent-calls';

export const SPACE = 'spa_1';
export const AUDIENCE = { id: 'aud_1', key: 'vip' };

export interface Fixture {
  keyPrefix: string;
  /** The in-memory configuration (a pipeline built around the fixture's objects reads it). */
  store: ConfigStore;
  /** The fixture's delivery service (its Actions runtime, throttle and status). */
  delivery: DeliveryService;
  status: DeliveryStatus;
  clock: { now: number };
  step: DispatchStep;
  loop: RetryLoop;
  resync: ResyncJob;
  schedule: RetrySchedule;
  /** List and full-audience destinations' buffer (flushDue: their cadence, "sync now"). */
  lists: ListBuffer;
  profiles: ProfileStateRepository;
  letters: DeadLetter[];
  /** Runs the retry loop until nothing more is due at the current time. */
  drain(): Promise<number>;
  /** A consumed record of `change`, as the changes consumer hands it to the step (with the profile's changeSeq header when given). */
  consumed(change: ComputationChange, offset: number, changeSeq?: number): ConsumedMessage<ComputationChange>;
}

export function dispatchFixture(
  redis: RedisClient,
  opts: {
    url: string;
    retryWindowMs?: number;
    /** The destination as the test needs it (an Actions destination: type, slug, settings, mappings). */
    destination?: Partial<DestinationConfig>;
    connection?: Partial<ConnectionConfig['settings']>;
    /** Audience destinations: the vendor's id of the audience, as the control plane keeps it on the connection. */
    externalAudienceId?: string;
    /** Audience destinations: the connection's audience settings (TikTok's advertiserId). */
    audienceSettings?: Record<string, unknown>;
    actions?: ActionRunner;
    /** The connection's other fields (a journey step's: computationClass, computationId, computationKey). */
    connectionConfig?: Partial<ConnectionConfig>;
    /** More connections (to the same destination unless they say otherwise). */
    extraConnections?: Array<Partial<ConnectionConfig> & { id: string }>;
    /** Computed traits of the space (Trait Enrichment reads their values by key). */
    computedTraits?: Array<{ id: string; key: string; definitionVersion: number }>;
  },
): Fixture {
  const keyPrefix = `${uniqueName('dfx')}:`;
  const clock = { now: 1_000_000 };
  const now = () => clock.now;
  const log = silentLogger();
  const iso = new Date(0).toISOString();
  const destination: DestinationConfig = {
    id: 'dst_1',
    spaceId: SPACE,
    name: 'Hook',
    type: 'webhook',
    settings: { url: opts.url },
    enabled: true,
    createdAt: iso,
    updatedAt: iso,
    ...opts.destination,
  };
  const connection: ConnectionConfig = {
    id: 'con_1',
    spaceId: SPACE,
    computationId: AUDIENCE.id,
    computationClass: 'audience',
    destinationId: destination.id,
    settings: { identify: true, track: false, ...opts.connection },
    ...(opts.externalAudienceId ? { externalAudienceId: opts.externalAudienceId } : {}),
    ...(opts.audienceSettings ? { audienceSettings: opts.audienceSettings } : {}),
    enabled: true,
    createdAt: iso,
    updatedAt: iso,
    ...opts.connectionConfig,
  };
  const extra = (opts.extraConnections ?? []).map((c) => ({ ...connection, ...c }));
  const objects: Record<string, Array<{ id: string; spaceId?: string }>> = {
    destination: [destination],
    connection: [connection, ...extra],
    audience: [{ id: AUDIENCE.id, spaceId: SPACE, key: AUDIENCE.key } as { id: string; spaceId: string }],
    computed_trait: (opts.computedTraits ?? []).map((t) => ({ ...t, spaceId: SPACE })),
  };
  const store = {
    list: (kind: string, spaceId?: string) => (objects[kind] ?? []).filter((o) => spaceId === undefined || o.spaceId === spaceId),
    get: (kind: string, id: string) => (objects[kind] ?? []).find((o) => o.id === id),
  } as unknown as ConfigStore;
  const letters: DeadLetter[] = [];
  const deadLetters = { write: async (ls: DeadLetter[]) => void letters.push(...ls) } as unknown as DeadLetterWriter;
  const status = new DeliveryStatus({ keyPrefix }, { redis, metrics: new Registry(), now });
  const delivery = new DeliveryService(
    { retryWindowMs: opts.retryWindowMs ?? 4 * 3600 * 1000, initialBackoffMs: 500, maxBackoffMs: 60_000, timeoutMs: 5000 },
    // Jitter pinned to its maximum: backoffs are exactly 500, 1000, 2000 ... ms.
    { limiter: new RateLimiter({ keyPrefix, marginMs: 40 }, { redis }), status, now, random: () => 1, actions: opts.actions },
  );
  const sent = new SentCalls({ keyPrefix, ttlSeconds: 3600 }, { redis });
  const schedule = new RetrySchedule({ keyPrefix, destinationId: destination.id }, { redis });
  const handover = new Handover({ keyPrefix }, { redis });
  const profiles = new ProfileStateRepository({ keyPrefix }, { redis });
  const fullSync = new FullAudienceSync({ store, profiles, delivery, status, log, now });
  const lists = new ListBuffer(
    { keyPrefix, destinationId: destination.id },
    { store, redis, adapters: new Map(), status, deadLetters, log, fullSync },
  );
  const step = new DispatchStep(
    { destinationId: destination.id, keyPrefix, concurrency: 4 },
    { store, delivery, status, lists, redis, log, profiles, sent, schedule, handover, now },
  );
  const loop = new RetryLoop(
    { destinationId: destination.id, batchSize: 4, leaseMs: 60_000, maxRounds: 10 },
    { store, schedule, delivery, sent, status, deadLetters, log, now },
  );
  const resync = new ResyncJob(
    { keyPrefix, destinationId: destination.id },
    { store, profiles, step, status, redis, deadLetters, handover, log, now },
  );
  return {
    keyPrefix,
    store,
    delivery,
    status,
    clock,
    step,
    loop,
    resync,
    schedule,
    lists,
    profiles,
    letters,
    drain: async () => {
      let total = 0;
      for (let n = await loop.run(); n > 0; n = await loop.run()) total += n;
      return total;
    },
    consumed: (change, offset, changeSeq) => ({
      topic: 'changes',
      partition: 0,
      offset: String(offset),
      key: change.profile_id,
      timestamp: clock.now,
      headers: changeSeq === undefined ? {} : { [CHANGE_SEQ_HEADER]: Buffer.from(String(changeSeq)) },
      value: change,
      raw: { key: Buffer.from(change.profile_id), value: Buffer.from(JSON.stringify(change)), headers: {} } as never,
    }),
  };
}

let seq = 0;

/** A live audience change record for `profileId` (user id `u-<profileId>`). */
export function audienceChange(profileId: string, value: boolean, over: Partial<ComputationChange> = {}): ComputationChange {
  return {
    change_id: `chg_${++seq}`,
    space_id: SPACE,
    computation_id: AUDIENCE.id,
    computation_key: AUDIENCE.key,
    computation_class: 'audience',
    level: 'user',
    profile_id: profileId,
    value,
    previous: !value,
    value_is_json: false,
    reason: 'realtime',
    occurred_at: 0,
    emitted_at: Date.parse('2026-11-22T10:00:00Z'),
    external_ids: [{ type: 'user_id', id: `u-${profileId}` }],
    user_id: `u-${profileId}`,
    anonymous_id: null,
    traits_json: '{}',
    ...over,
  };
}
