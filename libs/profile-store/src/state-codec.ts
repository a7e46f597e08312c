// The stored form of a profile's hot state (everything but the history): a
// compact document in MessagePack (msgpackr), rewritten by every chunk that
// touches the profile.
//
// Why compact: the document is written per profile per chunk, so its size is
// the evaluator's cost (stringify, socket writes, garbage) and Redis's memory.
// In the readable form each computation's 31-character id appears twice
// (values and incremental states) with the field names of both: for a space
// of 30 computations that is most of a ~5 KB document. Here a computation is
// a small per-space slot number (ComputationSlots: assigned once, never
// reused) and its version, state and value share one array. MessagePack
// rather than JSON: the states are mostly numbers, many of them epoch
// milliseconds (13 characters in JSON, 9 bytes here), ~35% fewer bytes; it
// costs about what JSON.stringify does and decodes faster than JSON.parse.
// Documents of the earlier, readable form (JSON, first byte '{') still read.
//
//   { "$": 3,                        format marker (documents without it are the readable form)
//     "t": { traits },               omitted when empty
//     "u": userId, "a": anonymousId, omitted when null
//     "x": [[type, id], ...],        externalIds, omitted when empty
//     "md": [createdAt, updatedAt, firstMessageId, firstSourceId, lastMessageId, lastSourceId],
//     "i": [tok, h, pendingMerge?],  the incremental states' token and horizon
//     "c": [[slot, version, state, value, valueVersion?], ...],
//     "r": { any other field as it is (historyLength, changeSeq, accounts, ...) } }
//
// A computation entry: [slot, v, s] when it has a state and no value yet;
// [slot, v, s, value] when the value was computed with the state's version
// (the usual case); a fifth element when the value's version differs; [slot,
// null, null, value, valueVersion] for a value whose state is gone
// (computation dropped).
// Format 2 (still read) kept the entries in a map keyed by the slot in base
// 36, without the slot in the entry: building and packing that map cost twice
// what the array does (a map of ~30 keys per document, each a new string).
import type { IncrementalStates, StoredValue } from '@engage/engine';
import { Packr } from 'msgpackr';
import type { ProfileRef, StoredProfile } from './profile-state.repository';

export const COMPACT_FORMAT = 3;

/** Format 3's computation entry: [slot, version, state, value?, valueVersion?]. */
type Entry = [number, number | null, unknown, unknown?, number?];
/** Format 2's, keyed by the slot in base 36: [version, state, value?, valueVersion?]. */
type KeyedEntry = [number | null, unknown, unknown?, number?];

export interface CompactState {
  $: typeof COMPACT_FORMAT | 2;
  t?: Record<string, unknown>;
  u?: string;
  a?: string;
  x?: Array<[string, string]>;
  md?: [number, number, string, string, string, string];
  i?: [string, number] | [string, number, unknown];
  c?: Entry[] | Record<string, KeyedEntry>;
  r?: Record<string, unknown>;
}

/** Fields the compact form stores in its own places (the rest goes to `r` as it is). */
const PLACED = new Set([
  'events',
  'traits',
  'values',
  'incremental',
  'userId',
  'anonymousId',
  'externalIds',
  'metadata',
  'spaceId',
  'profileId',
]);

/** The compact document of a profile's hot state; `slotOf` gives each computation id's slot. */
export function encodeState(profile: StoredProfile, slotOf: (computationId: string) => number): CompactState {
  const doc: CompactState = { $: COMPACT_FORMAT };
  // Traits only when there are some (no key walk: the first one settles it).
  for (const name in profile.traits) {
    if (name !== undefined) doc.t = profile.traits;
    break;
  }
  if (profile.userId !== null) doc.u = profile.userId;
  if (profile.anonymousId !== null) doc.a = profile.anonymousId;
  if (profile.externalIds.length > 0) doc.x = profile.externalIds.map((e) => [e.type, e.id]);
  const m = profile.metadata;
  if (m) doc.md = [m.createdAt, m.updatedAt, m.firstMessageId, m.firstSourceId, m.lastMessageId, m.lastSourceId];
  const inc = profile.incremental;
  if (inc) doc.i = inc.m === undefined ? [inc.tok, inc.h] : [inc.tok, inc.h, inc.m];
  const c: Entry[] = [];
  if (inc)
    for (const id in inc.c) {
      const { v, s } = inc.c[id]!;
      const value = profile.values[id];
      const slot = slotOf(id);
      c.push(
        value === undefined ? [slot, v, s] : value.version === v ? [slot, v, s, value.value] : [slot, v, s, value.value, value.version],
      );
    }
  for (const id in profile.values)
    if (!inc || !(id in inc.c)) {
      const value = profile.values[id]!;
      c.push([slotOf(id), null, null, value.value, value.version]);
    }
  if (c.length > 0) doc.c = c;
  let rest: Record<string, unknown> | undefined;
  for (const key in profile) {
    const value = (profile as unknown as Record<string, unknown>)[key];
    if (PLACED.has(key) || value === undefined) continue;
    (rest ??= {})[key] = value;
  }
  if (rest) doc.r = rest;
  return doc;
}

// Plain maps and arrays (no msgpackr records), each map with its smallest size header (variableMapSize: most are tiny).
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

/** The bytes stored for a profile. */
export const packState = (doc: CompactState): Buffer => packr.pack(doc);

/**
 * A stored document in a layout this release does not know: a newer release
 * wrote it. Misread as the readable form, it would be saved back as garbage;
 * instead the profile's work fails and, marked retriable (as a dependency
 * that is down: isInfrastructureError), is retried until this replica is
 * replaced by the upgraded one, without dead-lettering anything
 * (deploy/README.md, "Upgrading").
 */
export class NewerStateFormatError extends Error {
  readonly retriable = true;
  constructor(format: unknown) {
    super(
      `profile state in format ${JSON.stringify(format)}: this release reads formats 2 and ${COMPACT_FORMAT}; upgrade every service that reads profile states`,
    );
    this.name = 'NewerStateFormatError';
  }
}

/** A stored document: the compact form, or the readable JSON form of earlier versions (the profile itself). */
export function unpackState(bytes: Buffer): CompactState | StoredProfile {
  if (bytes[0] === 0x7b /* '{' */) return JSON.parse(bytes.toString('utf8')) as CompactState | StoredProfile;
  const doc: unknown = packr.unpack(bytes);
  if (isCompact(doc)) return doc;
  const format = (doc as { $?: unknown } | null)?.$;
  if (typeof format === 'number' && format > COMPACT_FORMAT) throw new NewerStateFormatError(format);
  // Not a layout of any release (damaged bytes, another writer): an error of this profile, not an outage.
  throw new Error(`profile state is no document this release reads (format ${JSON.stringify(format ?? null)})`);
}

/** Whether a parsed stored document is in the compact form (else: the readable form, stored as the profile itself). */
export const isCompact = (doc: unknown): doc is CompactState => {
  const format = (doc as { $?: unknown } | null)?.$;
  return format === COMPACT_FORMAT || format === 2;
};

/** A document's computation entries in format 3's shape (format 2's map converted). */
function entriesOf(doc: CompactState): Entry[] {
  if (!doc.c) return [];
  if (Array.isArray(doc.c)) return doc.c;
  return Object.entries(doc.c).map(([slot, e]) => [parseInt(slot, 36), ...e] as Entry);
}

/** Slots a compact document names (to resolve before decodeState). */
export function slotsOf(doc: CompactState): number[] {
  return entriesOf(doc).map((e) => e[0]);
}

/** The profile a compact document stores, without its history (`events` empty); `idOf` resolves each slot. */
export function decodeState(doc: CompactState, ref: ProfileRef, idOf: (slot: number) => string): StoredProfile {
  const values: Record<string, StoredValue> = {};
  let incremental: IncrementalStates | undefined;
  if (doc.i) {
    incremental = { tok: doc.i[0], h: doc.i[1], c: {}, n: 0 };
    if (doc.i.length > 2) incremental.m = doc.i[2] as IncrementalStates['m'];
  }
  for (const entry of entriesOf(doc)) {
    const id = idOf(entry[0]);
    const v = entry[1];
    if (v !== null && incremental) {
      incremental.c[id] = { v, s: entry[2] as IncrementalStates['c'][string]['s'] };
      incremental.n!++;
    }
    if (entry.length > 3) values[id] = { value: entry[3] as StoredValue['value'], version: entry[4] ?? v! };
  }
  const profile: StoredProfile = {
    ...(doc.r as Partial<StoredProfile>),
    spaceId: ref.spaceId,
    profileId: ref.profileId,
    events: [],
    traits: doc.t ?? {},
    values,
    userId: doc.u ?? null,
    anonymousId: doc.a ?? null,
    externalIds: doc.x ? doc.x.map(([type, id]) => ({ type, id })) : [],
  };
  if (incremental) profile.incremental = incremental;
  if (doc.md) {
    const [createdAt, updatedAt, firstMessageId, firstSourceId, lastMessageId, lastSourceId] = doc.md;
    profile.metadata = { createdAt, updatedAt, firstMessageId, firstSourceId, lastMessageId, lastSourceId };
  }
  return profile;
}
