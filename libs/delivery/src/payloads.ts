// The calls an event destination receives for one change, exactly in
// Segment's shapes (CONTRACT.md section 5): Identify and/or Track per the
// connection's settings, one call per identifier of a matched type.
import { createHash } from 'node:crypto';
import type { ConnectionSettings, DestinationConfig } from '@engage/config-store';
import type { ComputationChange } from '@engage/schemas';
import { allOfIdSyncTypes, selectIdSync } from './trait-activation';

/**
 * context.personas: Engage's strings (computation_id, computation_key, ...,
 * external_audience_id) and, for audience destinations with audience
 * settings, audience_settings as the connection keeps them.
 */
export type Personas = { [key: string]: string | Record<string, unknown> | undefined } & { audience_settings?: Record<string, unknown> };

export interface SegmentCall {
  type: 'identify' | 'track' | 'group';
  userId?: string;
  groupId?: string;
  anonymousId?: string;
  messageId: string;
  timestamp: string;
  event?: string;
  traits?: Record<string, unknown>;
  properties?: Record<string, unknown>;
  context: { personas: Personas; traits?: Record<string, unknown> };
  integrations: Record<string, boolean>;
}

/** The value of a change as destinations see it (lists travel as JSON text). */
export function changeValue(change: Pick<ComputationChange, 'value' | 'value_is_json'>): unknown {
  return change.value_is_json && typeof change.value === 'string' ? JSON.parse(change.value) : change.value;
}

/** Deterministic per (change, destination, call, identifier): destinations dedupe redeliveries on it. */
export function callMessageId(changeId: string, destinationId: string, kind: string, identifier: string): string {
  return `personas_${createHash('sha1').update([changeId, destinationId, kind, identifier].join('\u0000')).digest('hex').slice(0, 32)}`;
}

/**
 * The identifiers to send: one call per value of each matched type other
 * than user_id / anonymous_id (those ride on every call). With no such value
 * (or no such type asked for) a single call.
 */
export function identifierTargets(change: ComputationChange, identifierTypes: string[]): Array<{ type: string; id: string } | null> {
  const extra = identifierTypes.filter((t) => t !== 'user_id' && t !== 'anonymous_id');
  const targets = change.external_ids.filter((x) => extra.includes(x.type)).map((x) => ({ type: x.type, id: x.id }));
  return targets.length > 0 ? targets : [null];
}

/**
 * The identifiers to send under ID Sync (CONTRACT.md section 5): the ones its
 * strategies pick, for an audience exit every one of its types (Segment sends
 * all ID combinations for exits). user_id / anonymous_id ride on every call,
 * so they are never a target of their own. With no such value a single call.
 */
export function idSyncTargets(
  change: ComputationChange,
  idSync: NonNullable<ConnectionSettings['idSync']>,
  exit: boolean,
): Array<{ type: string; id: string } | null> {
  const ids = change.external_ids.filter((x) => x.type !== 'user_id' && x.type !== 'anonymous_id');
  const targets = (exit ? allOfIdSyncTypes(ids, idSync) : selectIdSync(ids, idSync)).map((x) => ({ type: x.type, id: x.id }));
  return targets.length > 0 ? targets : [null];
}

/**
 * What an event destination's connection matches on when it names nothing:
 * the user id (or anonymous id) on every call, plus each email, as Segment's
 * Engage sends it (the email trait in CONTRACT.md section 5's identify).
 */
export const DEFAULT_EVENT_IDENTIFIER_TYPES: readonly string[] = ['user_id', 'email'];

/**
 * A journey send step's change (CONTRACT.md section 9): a user reaching the
 * step. Destinations see it as an audience entry under the step's key.
 */
export const isJourneyStep = (change: Pick<ComputationChange, 'computation_class'>): boolean => change.computation_class === 'journey_step';

/**
 * Whether a change is delivered at all. Journey steps only ever enter (the
 * runner emits `value: true` and never an exit): anything else of a journey
 * step would read as an exit or a list removal, so it is not sent.
 */
export const isDeliverable = (change: Pick<ComputationChange, 'computation_class' | 'value'>): boolean =>
  !isJourneyStep(change) || change.value === true;

/**
 * context.personas of every call of a change. Journey steps go out as
 * audiences (`computation_class: "audience"`), as Segment's Journeys send
 * them: the step key is the audience key, the journey id the computation id.
 */
export function personasOf(
  change: Pick<ComputationChange, 'computation_class' | 'computation_id' | 'computation_key' | 'space_id'>,
): Record<string, string> {
  return {
    computation_class: isJourneyStep(change) ? 'audience' : change.computation_class,
    computation_id: change.computation_id,
    computation_key: change.computation_key,
    namespace: change.space_id,
    space_id: change.space_id,
  };
}

/**
 * Identify and/or Track per the connection's settings. Audiences and journey
 * steps: `Audience Entered` / `Audience Exited` (journey steps never exit:
 * see isDeliverable, no calls for them); computed traits: `Trait Computed`.
 * `enrichment`: the Trait Enrichment traits of the profile (enrichmentTraits),
 * added to identify `traits` and track `context.traits`; the change's own
 * key/value and the call's identifier win over an enriched trait of that name.
 * With `settings.idSync` the identifiers follow it (idSyncTargets) instead of
 * identifierTypes.
 */
export function buildEventCalls(
  change: ComputationChange,
  destination: Pick<DestinationConfig, 'id' | 'name'>,
  settings: ConnectionSettings,
  enrichment: Record<string, unknown> = {},
): SegmentCall[] {
  if (!isDeliverable(change)) return [];
  const value = changeValue(change);
  const key = change.computation_key;
  const isAudience = change.computation_class !== 'trait';
  const personas = personasOf(change);
  const who = change.user_id ? { userId: change.user_id } : change.anonymous_id ? { anonymousId: change.anonymous_id } : {};
  const base = { ...who, timestamp: new Date(change.emitted_at).toISOString(), integrations: { All: false, [destination.name]: true } };
  // The change's own value wins over an enriched trait of its key (identify: it is the call's point).
  const enriched = Object.hasOwn(enrichment, key) ? { ...enrichment, [key]: value } : enrichment;
  const targets = settings.idSync
    ? idSyncTargets(change, settings.idSync, isAudience && value !== true)
    : identifierTargets(change, settings.identifierTypes ?? [...DEFAULT_EVENT_IDENTIFIER_TYPES]);
  const calls: SegmentCall[] = [];
  for (const target of targets) {
    const idTraits = target ? { [target.type]: target.id } : {};
    const ident = target ? `${target.type}:${target.id}` : 'profile';
    if (settings.identify) {
      calls.push({
        type: 'identify',
        ...base,
        messageId: callMessageId(change.change_id, destination.id, 'identify', ident),
        traits: { ...enriched, [key]: value, ...idTraits },
        context: { personas },
      });
    }
    if (settings.track) {
      const event = isAudience
        ? value === true
          ? (settings.enteredEvent ?? 'Audience Entered')
          : (settings.exitedEvent ?? 'Audience Exited')
        : 'Trait Computed';
      calls.push({
        type: 'track',
        ...base,
        event,
        messageId: callMessageId(change.change_id, destination.id, 'track', ident),
        properties: isAudience ? { audience_key: key, [key]: value } : { trait_key: key, [key]: value },
        context: { personas, ...(target || Object.keys(enriched).length > 0 ? { traits: { ...enriched, ...idTraits } } : {}) },
      });
    }
  }
  return calls;
}

/** Who a user of an account is, as the dispatcher loads it for account-level changes. */
export interface AccountUser {
  profileId: string;
  userId: string | null;
  anonymousId: string | null;
  externalIds: Array<{ type: string; id: string }>;
  /** The user's custom traits (Trait Enrichment); absent: the account change's traits_json stays. */
  traits?: Record<string, unknown>;
}

/**
 * Account-level audiences and traits, as Segment delivers them: a Group call
 * per account (the audience as a boolean trait, a trait's value directly),
 * and/or Identify / Track calls for each user of the account. Null when the
 * account has no group id to address it by.
 */
export function buildGroupCall(change: ComputationChange, destination: Pick<DestinationConfig, 'id' | 'name'>): SegmentCall | null {
  if (!isDeliverable(change)) return null;
  const groupId = change.external_ids.find((x) => x.type === 'group_id')?.id;
  if (!groupId) return null;
  return {
    type: 'group',
    groupId,
    messageId: callMessageId(change.change_id, destination.id, 'group', `group_id:${groupId}`),
    timestamp: new Date(change.emitted_at).toISOString(),
    traits: { [change.computation_key]: changeValue(change) },
    context: { personas: personasOf(change) },
    integrations: { All: false, [destination.name]: true },
  };
}

/** The account's change as one of its users receives it: the same value, the user's identifiers, its own change id. */
export function changeForAccountUser(change: ComputationChange, user: AccountUser): ComputationChange {
  return {
    ...change,
    level: 'user',
    profile_id: user.profileId,
    change_id: `${change.change_id}:${user.profileId}`,
    user_id: user.userId,
    anonymous_id: user.anonymousId,
    external_ids: user.externalIds.map((x) => ({ type: x.type, id: x.id })),
    ...(user.traits ? { traits_json: JSON.stringify(user.traits) } : {}),
  };
}
