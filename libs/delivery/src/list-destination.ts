// List destinations (ad audiences, email lists): what an adapter must provide,
// and the pure parts every adapter shares: the pending (last change wins)
// membership of one flush, identifier normalisation and hashing, chunking.
import { createHash } from 'node:crypto';
import type { DestinationConfig, IdSyncEntry } from '@engage/config-store';
import { allOfIdSyncTypes, selectIdSync } from './trait-activation';

export interface ExternalId {
  type: string;
  id: string;
}

/** One profile's pending change for one list: the last one written wins. `ids` in the order the profile gained them. */
export interface ListMember {
  profileId: string;
  member: boolean;
  ids: ExternalId[];
}

/** One identifier as the destination accepts it, or why it cannot be sent. */
export type NormalisedId = { ok: true; type: string; value: string } | { ok: false; type: string; reason: string };

/** The outcome of one add/remove request, per item: one bad record never fails the rest. */
export interface BatchOutcome {
  /** Items (by index in the request) the destination refused for good, with why. */
  failed: Array<{ index: number; reason: string }>;
}

export interface ExternalAudience {
  id: string;
  name: string;
}

/**
 * What a list destination implements. The dispatcher buffers adds/removes,
 * then per flush: getAudience (or createAudience once), then add/remove in
 * chunks of at most `batchLimit` normalised identifiers, throttled at the
 * destination's rate (its override, else `defaultRateLimit`).
 */
export interface ListDestinationAdapter {
  readonly type: string;
  /** Most identifiers one add/remove request may carry. */
  batchLimit(destination: DestinationConfig): number;
  /** Requests per second when the destination sets no rateLimit. */
  readonly defaultRateLimit: number | null;
  /** Identifier types it matches on, in the order it prefers them. */
  readonly identifierTypes: readonly string[];
  /** Normalised (and hashed, where the destination wants hashes) identifier. */
  normalise(id: ExternalId): NormalisedId;
  createAudience(destination: DestinationConfig, audience: { computationId: string; key: string; name: string }): Promise<ExternalAudience>;
  getAudience(destination: DestinationConfig, externalId: string): Promise<ExternalAudience | null>;
  add(destination: DestinationConfig, audience: ExternalAudience, items: NormalisedId[]): Promise<BatchOutcome>;
  remove(destination: DestinationConfig, audience: ExternalAudience, items: NormalisedId[]): Promise<BatchOutcome>;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * Normalisation as Facebook's customer-list docs ask (and most ad platforms
 * share): email trimmed and lowercased; phone digits only with the country
 * code and no leading zeros; names lowercased without punctuation; mobile ad
 * ids lowercased. Returns the normalised text, not yet hashed.
 */
export function normaliseIdentifier(type: string, raw: string): { ok: true; value: string } | { ok: false; reason: string } {
  const text = raw.trim();
  switch (type) {
    case 'email': {
      const v = text.toLowerCase();
      return EMAIL.test(v) ? { ok: true, value: v } : { ok: false, reason: `invalid email ${JSON.stringify(raw)}` };
    }
    case 'phone': {
      const v = text.replace(/\D/g, '').replace(/^0+/, '');
      return v.length >= 7 && v.length <= 15
        ? { ok: true, value: v }
        : { ok: false, reason: `invalid phone ${JSON.stringify(raw)}: 7 to 15 digits with country code expected` };
    }
    case 'first_name':
    case 'last_name': {
      const v = text.toLowerCase().replace(/[\s\p{P}]/gu, '');
      return v ? { ok: true, value: v } : { ok: false, reason: `empty ${type}` };
    }
    default:
      return text ? { ok: true, value: text.toLowerCase() } : { ok: false, reason: `empty ${type}` };
  }
}

export function chunk<T>(items: T[], size: number): T[][] {
  if (size < 1) throw new Error(`chunk size must be >= 1, got ${size}`);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Splits a flush into the identifiers to add and to remove (only types the
 * destination matches on). With ID Sync (`idSync`), adds send the
 * identifiers its strategies pick and removals every identifier of its types
 * (as exits: ID Sync does not narrow them); identifierTypes is then unused.
 */
export function splitMembers(
  members: ListMember[],
  identifierTypes: readonly string[],
  idSync?: readonly IdSyncEntry[],
): { add: Array<{ member: ListMember; id: ExternalId }>; remove: Array<{ member: ListMember; id: ExternalId }> } {
  const add: Array<{ member: ListMember; id: ExternalId }> = [];
  const remove: Array<{ member: ListMember; id: ExternalId }> = [];
  for (const member of members) {
    const ids = idSync
      ? member.member
        ? selectIdSync(member.ids, idSync)
        : allOfIdSyncTypes(member.ids, idSync)
      : member.ids.filter((id) => identifierTypes.includes(id.type));
    for (const id of ids) (member.member ? add : remove).push({ member, id });
  }
  return { add, remove };
}

/** The list destination's cadence (ms): settings.syncIntervalSeconds, else settings.cadenceMinutes, else hourly. */
export function flushIntervalMs(settings: Record<string, unknown>): number {
  if (typeof settings.syncIntervalSeconds === 'number' && settings.syncIntervalSeconds > 0) return settings.syncIntervalSeconds * 1000;
  if (typeof settings.cadenceMinutes === 'number' && settings.cadenceMinutes > 0) return settings.cadenceMinutes * 60_000;
  return 3600_000;
}
