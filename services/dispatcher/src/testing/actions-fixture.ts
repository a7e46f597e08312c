// The dispatch fixture for an Actions destination: its runtime reaching the
// vendor hosts through overrides to local emulators, mappings as a user adds
// them, and the destination's status hash. One builder for the Actions
// emulator tests (each test file keeps its own Redis client and cleanup).
import { loadDefinition } from '@engage/actions';
import { defaultValues } from '@segment/actions-core';
import type { ActionMapping, DestinationConfig } from '@engage/config-store';
import type { ChunkContext } from '@engage/kafka';
import { createRedis, type RedisClient } from '@engage/redis';
import { testInfrastructure } from '@engage/testing';
import type { ComputationChange } from '@engage/schemas';
import { ActionsRuntime } from '../adapters/actions.runtime';
import { audienceChange, dispatchFixture, type Fixture } from './dispatch-fixture';
import type { Emulator } from './vendor-emulators';

export function actionsFixture(
  redis: RedisClient,
  opts: {
    slug: string;
    /** Vendor host -> the emulator standing in for it. */
    hosts: Record<string, Emulator>;
    settings: Record<string, unknown>;
    mappings: ActionMapping[];
    connection?: { identify: boolean; track: boolean };
    externalAudienceId?: string;
    audienceSettings?: Record<string, unknown>;
  },
): Fixture & { actions: ActionsRuntime } {
  const overrides = Object.fromEntries(Object.entries(opts.hosts).map(([host, e]) => [host, e.target]));
  const actions = new ActionsRuntime({ overrides });
  const destination: Partial<DestinationConfig> = {
    name: opts.slug,
    type: 'actions',
    slug: opts.slug,
    settings: opts.settings,
    mappings: opts.mappings,
  };
  const fx = dispatchFixture(redis, {
    url: 'unused',
    destination,
    connection: opts.connection ?? { identify: true, track: false },
    actions,
    externalAudienceId: opts.externalAudienceId,
    audienceSettings: opts.audienceSettings,
  });
  return { ...fx, actions };
}

/** A mapping a user adds: the action's defaults (as Segment's editor fills them in) under `over`. */
export function mappingOf(slug: string, actionId: string, subscribe: string, over: Record<string, unknown> = {}): ActionMapping[] {
  const fields = loadDefinition(slug).actions[actionId]!.fields;
  return [{ id: `map_${slug}_${actionId}`, actionId, subscribe, mapping: { ...defaultValues(fields), ...over }, enabled: true }];
}

/** The destination's delivery status hash (sent, retried, credentialsError ...). */
export async function statusHash(redis: RedisClient, fx: Fixture): Promise<Record<string, string>> {
  await fx.status.flush();
  return redis.hgetall(`${fx.keyPrefix}status:destination:dst_1`);
}

/** An audience change whose identifiers hold an email too (identify traits.email `<profileId>@example.com`). */
export function withEmail(profileId: string, value: boolean, over: Partial<ComputationChange> = {}): ComputationChange {
  return audienceChange(profileId, value, {
    external_ids: [
      { type: 'user_id', id: `u-${profileId}` },
      { type: 'email', id: `${profileId}@example.com` },
    ],
    ...over,
  });
}

/**
 * What every Actions emulator test file shares: one Redis client, the chunk
 * context the dispatch step is handed, and the runtimes and emulators the
 * file starts, closed and stopped after its tests (registers afterAll: call
 * it at the top level of a test file).
 */
export function actionsTestbed(): {
  redis: RedisClient;
  ctx: ChunkContext;
  emulators: Emulator[];
  runtimes: ActionsRuntime[];
} {
  const bed = {
    redis: createRedis({ url: testInfrastructure().redisUrl }),
    ctx: { topic: 'changes', partition: 0, heartbeat: async () => undefined, isActive: () => true },
    emulators: [] as Emulator[],
    runtimes: [] as ActionsRuntime[],
  };
  afterAll(async () => {
    bed.redis.disconnect();
    bed.runtimes.forEach((r) => r.close());
    await Promise.all(bed.emulators.map((e) => e.receiver.stop()));
  });
  return bed;
}
