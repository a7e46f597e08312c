// The configuration objects every service reads, as the control plane API
// returns them (CONTRACT.md section 2). They travel as JSON in ConfigRecord.body_json.
import type { ConfigKind } from '@engage/schemas';

export interface SpaceConfig {
  id: string;
  name: string;
  /**
   * The space's Profile API access tokens (CONTRACT.md section 7). Kept with
   * the space so no new config kind is needed; the API never shows this field.
   */
  accessTokens?: AccessTokenConfig[];
  createdAt: string;
  updatedAt: string;
}

/** A Profile API access token: only its sha256 is stored, the token is shown once at creation. */
export interface AccessTokenConfig {
  id: string;
  name: string;
  /** Hex sha256 of the token. */
  tokenHash: string;
  createdAt: string;
}

export interface RateLimit {
  requestsPerSecond: number;
  burst?: number;
}

export interface SourceConfig {
  id: string;
  spaceId: string;
  name: string;
  writeKey: string;
  enabled: boolean;
  rateLimit?: RateLimit;
  createdAt: string;
  updatedAt: string;
}

export type ComputeMode = 'realtime' | 'batch';
export type ComputationStatus = 'Preparing' | 'Computing' | 'Live' | 'Not Computing' | 'Disabled' | 'Failed';

export interface ComputationDefinition {
  query: string;
  type: 'users' | 'accounts';
}

export interface ComputationOptions {
  includeHistoricalData: boolean;
  computeMode: ComputeMode;
}

/** Audiences and computed traits share a shape; `kind` tells them apart. */
export interface ComputationConfig {
  id: string;
  spaceId: string;
  name: string;
  key: string;
  description: string;
  enabled: boolean;
  definition: ComputationDefinition;
  options: ComputationOptions;
  /** Set on the audiences a journey's publish made of its entry and split queries (hidden from lists, never edited by hand). */
  journeyId?: string;
  /** Bumped by every definition edit: state of an older definition is discarded. */
  definitionVersion: number;
  /** When the definition last changed (creation or edit): without historical data, only later events count. */
  definitionUpdatedAt: string;
  createdAt: string;
  updatedAt: string;
}

export type AudienceConfig = ComputationConfig;
export type ComputedTraitConfig = ComputationConfig;

export interface DestinationConfig {
  id: string;
  spaceId: string;
  name: string;
  type: string;
  /** type `actions`: the definition's slug in @segment/action-destinations (CONTRACT.md section 8). */
  slug?: string;
  settings: Record<string, unknown>;
  /**
   * Settings that are secret by the destination's own schema (an Actions
   * definition's `password` fields), masked like the names SECRET_SETTING
   * matches (destination-secrets.ts). Set by the control plane.
   */
  secretFields?: string[];
  /** type `actions`: which action each call runs (CONTRACT.md section 8). */
  mappings?: ActionMapping[];
  rateLimit?: RateLimit;
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
}

/** An Actions destination's mapping: calls matching `subscribe` (Segment's FQL) run `actionId` with `mapping`. */
export interface ActionMapping {
  id: string;
  name?: string;
  actionId: string;
  subscribe: string;
  mapping: Record<string, unknown>;
  enabled: boolean;
}

/**
 * ID Sync ("Customized Setup"): of the profile's identifiers of `type` (in the
 * order it gained them), send the `last` added, the `first` added, or `all`
 * of them (up to `limit`, 1..10, default 10; at most three entries use `all`).
 */
export interface IdSyncEntry {
  type: string;
  strategy: 'last' | 'first' | 'all';
  limit?: number;
}

/** Trait Activation (Segment's trait-activation docs): validated by @engage/delivery's traitActivationFields. */
export interface TraitActivationSettings {
  /** Trait Enrichment: computed trait keys of the space or custom trait names, added to identify traits / track context.traits. */
  traitEnrichment?: string[];
  /** ID Sync: replaces identifierTypes for entries and list adds (exits and removals reach every id of these types). */
  idSync?: IdSyncEntry[];
}

export interface ConnectionSettings extends TraitActivationSettings {
  identify: boolean;
  track: boolean;
  /** Account-level computations: a Group call per account (identify/track then go to each user of the account). */
  group?: boolean;
  enteredEvent?: string;
  exitedEvent?: string;
  identifierTypes?: string[];
}

export interface ConnectionConfig {
  id: string;
  spaceId: string;
  computationId: string;
  computationClass: 'audience' | 'trait' | 'journey_step';
  /**
   * Journey connections (computationClass journey_step, computationId the
   * journey's id): only the changes of this send step's key. Written by the
   * control plane when a journey is published, one per (send step, destination).
   */
  computationKey?: string;
  destinationId: string;
  settings: ConnectionSettings;
  /**
   * Actions destinations whose definition creates audiences (an audienceConfig):
   * the vendor's id of the audience, created when the connection was made;
   * events carry it as context.personas.external_audience_id.
   */
  externalAudienceId?: string;
  /**
   * Actions audience destinations: the audience's settings on the vendor's
   * side, as the definition's audienceFields name them (TikTok's advertiserId),
   * validated when the connection is made; events carry them as
   * context.personas.audience_settings, as Segment's do.
   */
  audienceSettings?: Record<string, unknown>;
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface ConfigObjects {
  space: SpaceConfig;
  source: SourceConfig;
  audience: AudienceConfig;
  computed_trait: ComputedTraitConfig;
  destination: DestinationConfig;
  connection: ConnectionConfig;
  journey_step: Record<string, unknown>;
  identity_rules: Record<string, unknown>;
  journey: JourneyConfig;
}

// ---- journeys (CONTRACT.md section 9) ----

export type JourneyStatus = 'Draft' | 'Live' | 'Paused' | 'Archived';

/** Where a journey's users come from: an audience, or a query the control plane makes a (journey-owned) audience of. */
export type JourneyEntry = { audienceId: string } | { query: string };

export interface JourneySendDestination {
  destinationId: string;
  settings: { identify: boolean; track: boolean } & TraitActivationSettings;
}

export type JourneyStep =
  | { id: string; type: 'send'; name: string; destinations: JourneySendDestination[]; next: string }
  | { id: string; type: 'wait'; duration: string; next: string }
  /** True/false split: `query` is any audience query, evaluated when the user reaches the step. */
  | { id: string; type: 'split'; query: string; true: string; false: string }
  /** Multi-branch data split: the first branch whose query holds, else `else`. */
  | { id: string; type: 'branch'; branches: Array<{ name?: string; query: string; next: string }>; else: string }
  | { id: string; type: 'exit' };

/**
 * A published, frozen version: what users who entered under it walk, whatever
 * later edits do. Queries are resolved to the audiences that compute them
 * (created by the control plane at publish, owned by the journey).
 */
export interface JourneyVersion {
  version: number;
  publishedAt: string;
  /** The audience whose entries enter users. */
  entryComputationId: string;
  start: string;
  steps: JourneyStep[];
  /** Split and branch steps: the audience id of each condition, by step id (branches in order). */
  conditions: Record<string, string[]>;
  /** Send steps' keys by step id (the journey's stepKeys at publish). */
  stepKeys: Record<string, string>;
}

export interface JourneyConfig {
  id: string;
  spaceId: string;
  name: string;
  /** snake_case, unique in the space: part of every send step's key. */
  key: string;
  status: JourneyStatus;
  /** The draft: what the next publish freezes. */
  entry: JourneyEntry;
  /** 'never': a user walks the journey once; 'after_exit': again after each exit, on a new entry. */
  reentry: 'never' | 'after_exit';
  /** On the first publish, also enter the entry audience's current members (else only new entrants). */
  includeExistingMembers: boolean;
  start: string;
  steps: JourneyStep[];
  /** Send steps' keys by step id (`j_o_<journey key>__<step name>_<6 chars>`), kept across edits. */
  stepKeys: Record<string, string>;
  /** Published versions, oldest first; the last one is live (new entrants walk it). */
  versions: JourneyVersion[];
  createdAt: string;
  updatedAt: string;
}

export type { ConfigKind };

/** One materialised object with its record metadata. */
export interface StoredObject<K extends ConfigKind = ConfigKind> {
  kind: K;
  id: string;
  spaceId: string;
  deleted: boolean;
  version: number;
  updatedAt: number;
  body: ConfigObjects[K];
}
