// Per-profile evaluation state in Redis: one JSON document per profile (its
// bounded history, traits, current values, identifiers), a wake-up sorted set
// for window expiry, and a member set per audience (sizes, CSV export).
// Loads are one MGET per chunk; saves one MULTI per chunk, so a chunk's state
// lands whole or not at all.
import type { ProfileState } from '@engage/engine';
import type { RedisClient } from '@engage/redis';
import { identifiersJson } from './audience-csv';

export interface ProfileIdentifiers {
  userId: string | null;
  anonymousId: string | null;
  externalIds: Array<{ type: string; id: string }>;
}

/** What the Profile API's /metadata answers: first and last event seen (event time). */
export interface ProfileMetadata {
  createdAt: number;
  updatedAt: number;
  firstMessageId: string;
  firstSourceId: string;
  lastMessageId: string;
  lastSourceId: string;
}

export interface StoredProfile extends ProfileState, ProfileIdentifiers {
  spaceId: string;
  profileId: string;
  /** Absent on profiles stored before it existed. */
  metadata?: ProfileMetadata;
}

/** Folds one event into the profile's metadata (events may arrive out of order). */
export function noteMetadata(profile: StoredProfile, e: { timestamp: number; messageId: string; sourceId: string }): void {
  const m = profile.metadata;
  if (!m) {
    profile.metadata = {
      createdAt: e.timestamp,
      updatedAt: e.timestamp,
      firstMessageId: e.messageId,
      firstSourceId: e.sourceId,
      lastMessageId: e.messageId,
      lastSourceId: e.sourceId,
    };
    return;
  }
  if (e.timestamp < m.createdAt) Object.assign(m, { createdAt: e.timestamp, firstMessageId: e.messageId, firstSourceId: e.sourceId });
  if (e.timestamp >= m.updatedAt) Object.assign(m, { updatedAt: e.timestamp, lastMessageId: e.messageId, lastSourceId: e.sourceId });
}

export interface ProfileRef {
  spaceId: string;
  profileId: string;
}

export interface MembershipUpdate {
  computationId: string;
  profileId: string;
  member: boolean;
}

const CLAIM_DUE_LUA = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], m) end
return due
`;

export function emptyProfile(ref: ProfileRef): StoredProfile {
  return { ...ref, events: [], traits: {}, values: {}, userId: null, anonymousId: null, externalIds: [] };
}

export class ProfileStateRepository {
  constructor(
    private readonly config: { keyPrefix: string },
    private readonly deps: { redis: RedisClient },
  ) {}

  /** `{space:profile}` hash tag: one profile's keys share a cluster slot. */
  stateKey(ref: ProfileRef): string {
    return `${this.config.keyPrefix}rt:{${ref.spaceId}:${ref.profileId}}:state`;
  }
  /**
   * The profile's identifiers as identifiersJson: a small string next to the
   * state document, so an audience export reads a million profiles' ids with
   * one MGET per page instead of the state documents or one call per profile.
   */
  idsKey(ref: ProfileRef): string {
    return `${this.config.keyPrefix}rt:{${ref.spaceId}:${ref.profileId}}:ids`;
  }
  /** Every profile of a space that has state: what a preview scans, without a keyspace SCAN. */
  profilesKey(spaceId: string): string {
    return `${this.config.keyPrefix}rt:profiles:{${spaceId}}`;
  }
  get wakeKey(): string {
    return `${this.config.keyPrefix}rt:wake`;
  }
  /** `{computationId}` hash tag: the set and its export snapshots share a cluster slot (COPY needs that). */
  membersKey(computationId: string): string {
    return `${this.config.keyPrefix}rt:members:{${computationId}}`;
  }

  async load(refs: ProfileRef[]): Promise<StoredProfile[]> {
    if (refs.length === 0) return [];
    const raw = await this.deps.redis.mget(...refs.map((r) => this.stateKey(r)));
    return refs.map((ref, i) => (raw[i] ? (JSON.parse(raw[i]!) as StoredProfile) : emptyProfile(ref)));
  }

  /**
   * Saves profiles, their next wake-up (null: none) and audience memberships
   * atomically (MULTI/EXEC).
   */
  async save(
    profiles: Array<{ profile: StoredProfile; wakeAt: number | null }>,
    memberships: MembershipUpdate[],
    deleted: ProfileRef[] = [],
  ): Promise<void> {
    if (profiles.length === 0 && memberships.length === 0 && deleted.length === 0) return;
    const tx = this.deps.redis.multi();
    for (const { profile, wakeAt } of profiles) {
      tx.set(this.stateKey(profile), JSON.stringify(profile));
      tx.set(this.idsKey(profile), identifiersJson(profile.externalIds));
      tx.sadd(this.profilesKey(profile.spaceId), profile.profileId);
      const member = `${profile.spaceId}|${profile.profileId}`;
      if (wakeAt === null) tx.zrem(this.wakeKey, member);
      else tx.zadd(this.wakeKey, wakeAt, member);
    }
    for (const m of memberships) {
      if (m.member) tx.sadd(this.membersKey(m.computationId), m.profileId);
      else tx.srem(this.membersKey(m.computationId), m.profileId);
    }
    for (const ref of deleted) {
      tx.del(this.stateKey(ref), this.idsKey(ref));
      tx.srem(this.profilesKey(ref.spaceId), ref.profileId);
      tx.zrem(this.wakeKey, `${ref.spaceId}|${ref.profileId}`);
    }
    await tx.exec();
  }

  /**
   * Claims profiles whose wake-up time has come: atomically pushes each one's
   * score `leaseMs` into the future, so another scheduler replica does not
   * take it too, and a replica that dies mid-way only delays it by the lease.
   * The commit of the evaluation then sets the real next wake-up.
   */
  async claimDue(now: number, limit: number, leaseMs: number): Promise<ProfileRef[]> {
    const members = (await this.deps.redis.eval(CLAIM_DUE_LUA, 1, this.wakeKey, now, limit, now + leaseMs)) as string[];
    return members.map((m) => {
      const i = m.indexOf('|');
      return { spaceId: m.slice(0, i), profileId: m.slice(i + 1) };
    });
  }

  /** Every stored profile, a page at a time (SCAN: no blocking of Redis). */
  async *scanProfiles(pageSize = 500): AsyncGenerator<ProfileRef[]> {
    let cursor = '0';
    const pattern = `${this.config.keyPrefix}rt:{*}:state`;
    const re = /rt:\{([^:}]+):([^}]+)\}:state$/;
    do {
      const [next, keys] = await this.deps.redis.scan(cursor, 'MATCH', pattern, 'COUNT', pageSize);
      cursor = next;
      const refs = keys
        .map((k) => re.exec(k))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ spaceId: m[1]!, profileId: m[2]! }));
      if (refs.length > 0) yield refs;
    } while (cursor !== '0');
  }

  async clearMembers(computationId: string): Promise<void> {
    await this.deps.redis.del(this.membersKey(computationId));
  }

  async memberCount(computationId: string): Promise<number> {
    return this.deps.redis.scard(this.membersKey(computationId));
  }

  /**
   * A point-in-time copy of an audience's members (COPY is atomic), so an
   * export reads one consistent membership however long it takes while the
   * evaluator keeps changing the live set. Expires by itself if the reader dies.
   */
  async snapshotMembers(computationId: string, ttlSeconds: number): Promise<string> {
    const key = `${this.membersKey(computationId)}:snapshot:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const tx = this.deps.redis.multi();
    tx.copy(this.membersKey(computationId), key);
    tx.expire(key, ttlSeconds);
    await tx.exec();
    return key;
  }

  /** Members of a set (live or snapshot), a page at a time with SSCAN. */
  async *scanMembers(key: string, pageSize = 1000): AsyncGenerator<string[]> {
    let cursor = '0';
    do {
      const [next, members] = await this.deps.redis.sscan(key, cursor, 'COUNT', pageSize);
      cursor = next;
      if (members.length > 0) yield members;
    } while (cursor !== '0');
  }

  /** identifiersJson of each profile (null when none is stored yet), one MGET. */
  async identifiersOf(spaceId: string, profileIds: string[]): Promise<Array<string | null>> {
    if (profileIds.length === 0) return [];
    return this.deps.redis.mget(...profileIds.map((profileId) => this.idsKey({ spaceId, profileId })));
  }

  async dropSnapshot(key: string): Promise<void> {
    await this.deps.redis.unlink(key);
  }
}
