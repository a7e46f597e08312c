// What the catalog shows of a definition (CONTRACT.md section 8), the
// mappings a new destination starts with (the definition's presets), and its
// settings checked against the definition's own schema.
import { defaultValues, fieldsToJsonSchema, validateSchema } from '@segment/actions-core';
import type { ActionMapping } from '@engage/config-store';
import { actionsDefaultRateLimit, fqlIssue, type DefaultRateLimit } from '@engage/delivery';
import { ACTIONS_SLUGS, getsTokenFromSettings, loadDefinition, type AnyDefinition } from './registry';

type Json = unknown;

export interface CatalogAction {
  id: string;
  title: string;
  description?: string;
  /** The action's fields as the definition declares them (label, type, required, default mapping, ...). */
  fields: Record<string, Json>;
  defaultSubscription: string | null;
  /** Whether the action sends batches (onBatch, per-item status). */
  batching: boolean;
}

export interface CatalogPreset {
  name: string;
  actionId: string;
  subscribe: string;
  mapping: Record<string, Json>;
}

export interface CatalogDestination {
  slug: string;
  name: string;
  description?: string;
  /** `list`: an audience destination (the definition has an audience configuration); `event`: identify/track calls. */
  category: 'event' | 'list';
  /** JSON schema of the settings; secret fields carry `writeOnly: true` and `x-secret: true`. */
  settings: Record<string, Json>;
  actions: CatalogAction[];
  presets: CatalogPreset[];
  /**
   * The default rate of a destination of this slug (its own rateLimit wins):
   * Segment's documented figure for the vendor (`source: "segment"`), or this
   * system's own default where none is documented (`source: "engage"`), and a
   * note saying which; null: no default.
   */
  rateLimit: DefaultRateLimit | null;
}

/** Functions (dynamic field loaders, hooks) dropped: what is left is the field's declaration. */
const plain = (value: Json): Record<string, Json> => JSON.parse(JSON.stringify(value ?? {})) as Record<string, Json>;

/**
 * Settings of a definition not offered here, by slug: Salesforce's
 * username-password flow logs in through a request client of its own
 * (sf-operations authenticateWithPassword), which DESTINATION_HTTP_OVERRIDES
 * and our agent do not reach, with an OAuth app read from the process
 * environment: untested, so refused as unknown settings (OAuth tokens only).
 */
const UNSUPPORTED_SETTINGS: Record<string, readonly string[]> = {
  salesforce: ['username', 'auth_password', 'security_token'],
};

/** The definition's settings fields that may be given here. */
function settingFields(slug: string): Record<string, unknown> {
  const fields = (loadDefinition(slug).authentication?.fields ?? {}) as Record<string, unknown>;
  const unsupported = UNSUPPORTED_SETTINGS[slug] ?? [];
  return Object.fromEntries(Object.entries(fields).filter(([name]) => !unsupported.includes(name)));
}

/** Settings whose type is `password` (API keys, site ids, tokens): write-only in the API. */
export function secretFieldsOf(slug: string): string[] {
  const fields = settingFields(slug) as Record<string, { type?: string }>;
  return Object.entries(fields)
    .filter(([, f]) => f.type === 'password')
    .map(([name]) => name);
}

/**
 * Definitions that authenticate with OAuth take their tokens in `settings.oauth`
 * (actions-core's getAuthData), but those that get them from their own settings (Marketo's client credentials).
 */
const usesOAuth = (slug: string, definition: AnyDefinition) =>
  (definition.authentication?.scheme === 'oauth2' || definition.authentication?.scheme === 'oauth-managed') && !getsTokenFromSettings(slug);

/** `settings.oauth` as actions-core reads it; refreshing needs the refresh token and the OAuth app's client. */
const OAUTH_SCHEMA = {
  type: 'object',
  title: 'OAuth tokens',
  description: "The access token, and to refresh it: the refresh token and the OAuth app's clientId and clientSecret",
  properties: {
    access_token: { type: 'string' },
    refresh_token: { type: 'string' },
    clientId: { type: 'string' },
    clientSecret: { type: 'string' },
  },
  required: ['access_token'],
  writeOnly: true,
  'x-secret': true,
};

function settingsSchema(slug: string, definition: AnyDefinition, secrets: string[]): Record<string, Json> {
  const schema = plain(fieldsToJsonSchema(settingFields(slug) as never)) as {
    properties?: Record<string, Record<string, Json>>;
    required?: string[];
  };
  for (const name of secrets) if (schema.properties?.[name]) Object.assign(schema.properties[name], { writeOnly: true, 'x-secret': true });
  if (usesOAuth(slug, definition)) {
    schema.properties = { ...schema.properties, oauth: OAUTH_SCHEMA };
    schema.required = [...(schema.required ?? []), 'oauth'];
  }
  return schema as Record<string, Json>;
}

/** The definition's automatic presets (the ones Segment adds to a new destination). */
function presetsOf(definition: AnyDefinition): CatalogPreset[] {
  return (definition.presets ?? [])
    .filter((p): p is Extract<typeof p, { type: 'automatic' }> => p.type === 'automatic' && typeof p.subscribe === 'string')
    .map((p) => ({ name: p.name ?? p.partnerAction, actionId: p.partnerAction, subscribe: p.subscribe.trim(), mapping: plain(p.mapping) }));
}

/**
 * Audience destinations whose definition has no audience configuration (the
 * audience is named by the event itself: Braze Cohorts' cohort is the
 * computation's id and key, LinkedIn's DMP segment is found or created by the
 * audience key on each sync), listed as `list` like the others.
 */
const AUDIENCE_SYNC_SLUGS: readonly string[] = ['braze-cohorts', 'linkedin-audiences'];

export function catalogEntry(slug: string): CatalogDestination {
  const definition = loadDefinition(slug);
  return {
    slug,
    name: definition.name,
    description: definition.description,
    category: definition.audienceFields || definition.audienceConfig || AUDIENCE_SYNC_SLUGS.includes(slug) ? 'list' : 'event',
    settings: settingsSchema(slug, definition, secretFieldsOf(slug)),
    actions: Object.entries(definition.actions).map(([id, action]) => ({
      id,
      title: action.title,
      description: action.description,
      fields: plain(action.fields),
      defaultSubscription: action.defaultSubscription?.trim() ?? null,
      batching: typeof action.performBatch === 'function',
    })),
    presets: presetsOf(definition),
    rateLimit: actionsDefaultRateLimit(slug) ?? null,
  };
}

/** Every available Actions destination, by slug. */
export function catalog(): CatalogDestination[] {
  return ACTIONS_SLUGS.map(catalogEntry);
}

/** A new destination's mappings: the definition's presets, enabled, with ids from `newId`. */
export function presetMappings(slug: string, newId: () => string): ActionMapping[] {
  return presetsOf(loadDefinition(slug)).map((p) => ({
    id: newId(),
    name: p.name,
    actionId: p.actionId,
    subscribe: p.subscribe,
    mapping: p.mapping,
    enabled: true,
  }));
}

/** `settings` with the definition's defaults for those left out (Braze's endpoint, Iterable's data center), as Segment fills them in. */
export function withDefaultSettings(slug: string, settings: Record<string, Json>): Record<string, Json> {
  const fields = settingFields(slug) as Record<string, { default?: Json }>;
  const defaults = Object.entries(fields).filter(([name, f]) => f.default !== undefined && settings[name] === undefined);
  return { ...Object.fromEntries(defaults.map(([name, f]) => [name, f.default])), ...settings };
}

/** `settings.oauth` of an OAuth definition: an object of non-empty strings with at least the access token. */
function oauthIssues(tokens: Json): Array<[string, string]> {
  if (typeof tokens !== 'object' || tokens === null || Array.isArray(tokens))
    return [['settings.oauth', 'is required: {access_token, refresh_token?, clientId?, clientSecret?}']];
  const issues: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(tokens)) {
    if (!(name in OAUTH_SCHEMA.properties))
      issues.push([`settings.oauth.${name}`, 'is not an OAuth setting (access_token, refresh_token, clientId, clientSecret)']);
    else if (typeof value !== 'string' || value === '') issues.push([`settings.oauth.${name}`, 'must be a non-empty string']);
  }
  if (!('access_token' in tokens)) issues.push(['settings.oauth.access_token', 'is required']);
  return issues;
}

/**
 * `settings` checked against the definition's settings schema with
 * actions-core's validator: [field, reason] pairs naming each bad field
 * (`settings.api_key`), empty when valid. Unknown settings are refused too.
 */
export function settingsIssues(slug: string, settings: Record<string, Json>): Array<[string, string]> {
  const definition = loadDefinition(slug);
  const fields = settingFields(slug) as never;
  const oauth = usesOAuth(slug, definition);
  const known = [...Object.keys(fields), ...(oauth ? ['oauth'] : [])];
  const issues: Array<[string, string]> = Object.keys(settings)
    .filter((k) => !known.includes(k))
    .map((k) => [`settings.${k}`, `is not a setting of ${slug} (${known.join(', ') || 'none'})`]);
  if (oauth) issues.push(...oauthIssues(settings.oauth));
  // The rest against the definition's own fields.
  settings = Object.fromEntries(Object.entries(settings).filter(([k]) => k !== 'oauth'));
  issues.push(...fieldIssues('settings', settings, fields));
  return issues;
}

/**
 * A value checked against a definition's fields (actions-core's validator):
 * [field, reason] pairs named under `prefix` (`settings.apiKey`), empty when valid.
 */
function fieldIssues(prefix: string, value: Record<string, unknown>, fields: never): Array<[string, string]> {
  const issues: Array<[string, string]> = [];
  try {
    // NOTE: the validator coerces and strips in place: it gets a copy.
    validateSchema(structuredClone(value), fieldsToJsonSchema(fields), { throwIfInvalid: true });
  } catch (err) {
    const errors = (err as { errors?: Array<{ pointer?: string; message?: string }> }).errors;
    if (!errors) throw err;
    for (const e of errors) {
      const required = /required field '([^']+)'/.exec(e.message ?? '');
      const path = required ? required[1]! : (e.pointer ?? '').split('/').filter(Boolean).join('.');
      issues.push([path ? `${prefix}.${path}` : prefix, required ? 'is required' : (e.message ?? 'is invalid')]);
    }
  }
  return issues;
}

/**
 * A connection's audience settings (Segment's audience_settings) checked
 * against the definition's audienceFields: [field, reason] pairs naming each
 * bad one (`audienceSettings.advertiserId`), empty when valid. A definition
 * without audienceFields takes none.
 */
export function audienceSettingsIssues(slug: string, audienceSettings: Record<string, Json>): Array<[string, string]> {
  const fields = (loadDefinition(slug).audienceFields ?? {}) as never;
  const known = Object.keys(fields);
  const issues: Array<[string, string]> = Object.keys(audienceSettings)
    .filter((k) => !known.includes(k))
    .map((k) => [`audienceSettings.${k}`, `is not an audience setting of ${slug} (${known.join(', ') || 'none'})`]);
  issues.push(...fieldIssues('audienceSettings', audienceSettings, fields));
  return issues;
}

/**
 * A new mapping's fields: the action's defaults (as Segment's editor fills
 * them in) under what the request gave. An unknown action gets none.
 */
export function mappingWithDefaults(slug: string, actionId: string, mapping: Record<string, Json>): Record<string, Json> {
  const action = loadDefinition(slug).actions[actionId];
  return action ? { ...(plain(defaultValues(action.fields)) as Record<string, Json>), ...mapping } : mapping;
}

/** A mapping's issues against the definition: an unknown action or unreadable FQL ([field, reason]). */
export function mappingIssues(slug: string, mapping: Pick<ActionMapping, 'actionId' | 'subscribe'>): Array<[string, string]> {
  const definition = loadDefinition(slug);
  const issues: Array<[string, string]> = [];
  if (!(mapping.actionId in definition.actions))
    issues.push(['actionId', `is not an action of ${slug} (${Object.keys(definition.actions).join(', ')})`]);
  const fql = fqlIssue(mapping.subscribe);
  if (fql) issues.push(['subscribe', fql]);
  return issues;
}
