// Which external ids an event carries, in priority order, with blocked values
// removed. Pure: the resolver service feeds it decoded RawEvents.
// Locations follow Segment's default identifiers
// (segment-docs src/unify/identity-resolution/identity-resolution-onboarding.md).
import type { CompiledIdentityRules } from './rules';

export interface ExternalId {
  type: string;
  id: string;
}

/** The parts of a raw event that carry identity (JSON parts already parsed). */
export interface IdentitySource {
  type: string;
  userId: string | null;
  anonymousId: string | null;
  groupId?: string | null;
  traits: Record<string, unknown>;
  context: Record<string, unknown>;
  /** Only needed when the rules have custom identifiers (they may live in properties). */
  properties?: Record<string, unknown>;
  /** The call's top-level integrations object (Google Analytics clientId). */
  integrations?: Record<string, unknown>;
  externalIds: Array<{ type: string; id: string; collection?: string | null }>;
}

export interface EventIdentifiers {
  /** User-level ids, highest priority first: these find, create and merge profiles. */
  user: ExternalId[];
  /** Account-level ids (group_id of group calls, externalIds with collection "accounts"): they name the account, never merge users. */
  account: ExternalId[];
}

const obj = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
/** Longest identifier value used; longer values are ignored (they are not ids, and would bloat keys). */
export const MAX_ID_LENGTH = 1024;
/** What an identifier type may look like (as the control plane accepts them). */
export const ID_TYPE = /^[a-z0-9_.-]{1,64}$/;
// A lone surrogate (from a "\ud800" escape in JSON) is no text: it cannot be a key, nor
// survive the UTF-8 round trips to Redis and back.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
function str(v: unknown): string | null {
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : null;
  if (typeof v !== 'string') return null;
  const s = v.trim();
  return s === '' || s.length > MAX_ID_LENGTH || LONE_SURROGATE.test(s) ? null : s;
}
const snake = (key: string) => key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
const camel = (key: string) => key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** ios / android from context.device.type (Segment's rule), else from context.os.name. */
function platformOf(context: Record<string, unknown>): 'ios' | 'android' | null {
  const device = obj(context.device);
  for (const hint of [device.type, obj(context.os).name]) {
    const h = String(hint ?? '').toLowerCase();
    if (h.includes('android')) return 'android';
    if (h.includes('ios') || h.includes('iphone') || h.includes('ipad')) return 'ios';
  }
  return null;
}

export function extractIdentifiers(event: IdentitySource, rules: CompiledIdentityRules): EventIdentifiers {
  const user: ExternalId[] = [];
  const account: ExternalId[] = [];
  const seen = new Set<string>();
  const push = (into: ExternalId[], type: string, value: unknown) => {
    const id = str(value);
    if (id === null || rules.isBlocked(id)) return;
    const x = { type, id: type === 'email' ? id.toLowerCase() : id };
    const k = `${into === account ? 'a' : 'u'}${x.type}\u0000${x.id}`;
    if (!seen.has(k)) {
      seen.add(k);
      into.push(x);
    }
  };

  push(user, 'user_id', event.userId);
  const contextTraits = obj(event.context.traits);
  push(user, 'email', event.traits.email ?? contextTraits.email);

  const device = obj(event.context.device);
  const platform = platformOf(event.context);
  push(user, platform ? `${platform}.id` : 'device.id', device.id);
  // Segment promotes the advertising id only while ad tracking is on.
  if (device.adTrackingEnabled !== false) push(user, platform ? `${platform}.idfa` : 'advertisingId', device.advertisingId);
  if (platform) push(user, `${platform}.push_token`, device.token);

  const ga = obj(obj(event.integrations)['Google Analytics'] ?? obj(event.context.integrations)['Google Analytics']);
  push(user, 'ga_client_id', ga.clientId);

  for (const c of rules.rules.customIdentifiers) {
    for (const source of [event.traits, contextTraits, event.properties ?? {}]) {
      const v = source[c.key] ?? source[camel(c.key)] ?? source[snake(c.key)];
      if (v !== undefined && v !== null) {
        push(user, c.type, v);
        break;
      }
    }
  }
  for (const x of event.externalIds) {
    // NOTE: Segment matches externalIds types in lowercase only.
    const type = String(x.type ?? '')
      .trim()
      .toLowerCase();
    if (!ID_TYPE.test(type)) continue;
    push(x.collection === 'accounts' ? account : user, type, x.id);
  }
  push(user, 'anonymous_id', event.anonymousId);
  if (event.type === 'group') push(account, 'group_id', event.groupId);
  // NOTE: alias calls (previousId) do not merge profiles: Segment's Unify ignores them for identity resolution.

  // Stable sort: equal types keep their order of appearance.
  user.sort((a, b) => rules.compare(a.type, b.type));
  return { user, account };
}

/** The user-level ids only (kept for callers that do not link accounts). */
export function extractExternalIds(event: IdentitySource, rules: CompiledIdentityRules): ExternalId[] {
  return extractIdentifiers(event, rules).user;
}
