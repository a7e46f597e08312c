// Audience destinations among the definitions (an `audienceConfig` with
// createAudience: Iterable Lists, ...): the audience is created on the
// vendor's side when a connection is made (the control plane calls this),
// and its id, kept on the connection, rides on every event as
// context.personas.external_audience_id (issue 19 item 1).
import type https from 'node:https';
import { Destination } from '@segment/actions-core';
import type { DestinationConfig } from '@engage/config-store';
import { overrideAgent, type HttpOverrides } from './http-overrides';
import { isActionsSlug, loadDefinition, type AnyDefinition } from './registry';

/** Whether the slug's definition creates audiences on the vendor's side (its audienceConfig has createAudience). */
export function createsAudiences(slug: string | undefined): boolean {
  if (!isActionsSlug(slug)) return false;
  const config = loadDefinition(slug).audienceConfig as { createAudience?: unknown } | undefined;
  return typeof config?.createAudience === 'function';
}

/**
 * Creates (or finds, as the definition does) the vendor's audience for an
 * Engage audience, through the definition's createAudience: its external id.
 * Throws the definition's error (the vendor's status and message).
 */
export async function createExternalAudience(
  destination: Pick<DestinationConfig, 'slug' | 'settings'>,
  audience: { id: string; key: string; name: string; spaceId: string },
  overrides: HttpOverrides,
  /** The connection's audience settings (the definition's audienceFields: TikTok's advertiserId). */
  audienceSettings?: Record<string, unknown>,
): Promise<string> {
  const definition = loadDefinition(destination.slug ?? '');
  const agent = overrideAgent(overrides);
  const extendRequest = definition.extendRequest;
  const wrapped: AnyDefinition = {
    ...definition,
    extendRequest: (data) => ({ ...(extendRequest?.(data) ?? {}), agent: agent as unknown as https.Agent }),
  };
  try {
    const result = await new Destination(wrapped).createAudience({
      settings: structuredClone(destination.settings) as never,
      audienceName: audience.name,
      ...(audienceSettings ? { audienceSettings: structuredClone(audienceSettings) as never } : {}),
      personas: { computation_id: audience.id, computation_key: audience.key, namespace: audience.spaceId },
    });
    if (!result?.externalId) throw new Error(`${definition.name} created no audience (no external id returned)`);
    return String(result.externalId);
  } finally {
    agent.close();
  }
}
