// Which external ids an event carries, in priority order, with blocked values
// removed. Pure: the resolver service feeds it decoded RawEvents.
import { blockedValueTest, type IdentityRules } from './rules';

export interface ExternalId {
  type: string;
  id: string;
}

/** The parts of a raw event that carry identity (JSON parts already parsed). */
export interface IdentitySource {
  type: string;
  userId: string | null;
  anonymousId: string | null;
  traits: Record<string, unknown>;
  context: Record<string, unknown>;
  externalIds: Array<{ type: string; id: string }>;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v.trim() : typeof v === 'number' ? String(v) : null);

function deviceIds(context: Record<string, unknown>): ExternalId[] {
  const device = (context.device ?? {}) as Record<string, unknown>;
  const os = String(((context.os ?? {}) as Record<string, unknown>).name ?? '').toLowerCase();
  const out: ExternalId[] = [];
  const id = str(device.id);
  if (id) out.push({ type: os.includes('android') ? 'android.id' : os.includes('ios') || os.includes('iphone') ? 'ios.id' : 'device.id', id });
  const ad = str(device.advertisingId);
  if (ad) out.push({ type: 'advertisingId', id: ad });
  return out;
}

export function extractExternalIds(event: IdentitySource, rules: IdentityRules, isBlocked = blockedValueTest(rules)): ExternalId[] {
  const found: ExternalId[] = [];
  const push = (type: string, value: unknown) => {
    const id = str(value);
    if (id && !isBlocked(id)) found.push({ type, id: type === 'email' ? id.toLowerCase() : id });
  };
  push('user_id', event.userId);
  const contextTraits = (event.context.traits ?? {}) as Record<string, unknown>;
  push('email', event.traits.email ?? contextTraits.email);
  push('phone', event.traits.phone ?? contextTraits.phone);
  for (const d of deviceIds(event.context)) push(d.type, d.id);
  for (const x of event.externalIds) push(x.type, x.id);
  push('anonymous_id', event.anonymousId);

  // One entry per (type, id); order by the rules' priority, then first appearance.
  const seen = new Set<string>();
  const unique = found.filter((x) => {
    const k = `${x.type}\u0000${x.id}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
  const rank = (type: string) => {
    const i = rules.priority.indexOf(type);
    return i === -1 ? rules.priority.length : i;
  };
  return unique.map((x, i) => ({ x, i })).sort((a, b) => rank(a.x.type) - rank(b.x.type) || a.i - b.i).map(({ x }) => x);
}
