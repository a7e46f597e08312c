// The identity graph in Redis (`idn:`): the one module that spells its keys.
// The resolver writes it through the script (identity-graph.lua.ts, layout
// documented there); the control plane's Profile API and exports, the batch
// scheduler's backfills and the resolver's tests read it through the typed
// methods below. Every key of a space is under the `{space}` hash tag, so a
// space's graph is on one Cluster slot and the MGETs/pipelines here stay in it.
// NOTE: the only IO in @engage/identity; the rules next to it stay pure.
import { isCluster, luaScript, type RedisClient } from '@engage/redis';
import type { ExternalId } from './external-ids';
import { IDENTITY_GRAPH_LUA } from './identity-graph.lua';

/** Separates type and value in `id:` keys and `p:<pid>:ids` members (0x1F). */
const SEP = '\u001f';

/** A `type␟value` member (as stored, and as the script replies) as an external id. */
export function parseGraphId(member: string): ExternalId {
  const i = member.indexOf(SEP);
  return { type: member.slice(0, i), id: member.slice(i + 1) };
}

/** A space's whole graph, as read by `snapshot` (tests, operators). */
export interface GraphSnapshot {
  /** id key (type\x1fvalue) -> profile it points to */
  ids: Map<string, string>;
  /** live profile -> its ids */
  profiles: Map<string, Set<string>>;
  /** merged profile -> the profile it was folded into */
  aliases: Map<string, string>;
  /** profile -> linked account ids */
  accounts: Map<string, Set<string>>;
}

/** One profile merged into a survivor (its merge log, newest first). */
export interface MergeRecord {
  /** The merged profile's id (an old id: it answers for the survivor now). */
  profileId: string;
  /** Event time of the event that merged it (ms). */
  at: number;
  /** The eventKey of that event (source, messageId, receive time), or null when not recorded. */
  eventKey: string | null;
}

type GraphClient = { resolveIdentityBatch(key: string, ...args: Array<string | number>): Promise<string[]> };
type Scanner = { scan(c: string, ...a: Array<string | number>): Promise<[string, string[]]> };

// Glob-escape the `{`/`}` of the hash tag and other specials.
const escapeGlob = (s: string) => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

export class IdentityGraphStore {
  constructor(
    private readonly config: { keyPrefix: string },
    private readonly deps: { redis: RedisClient },
  ) {
    // Called by SHA (luaScript: the text only on NOSCRIPT).
    this.graph = { resolveIdentityBatch: luaScript<string[]>(deps.redis, IDENTITY_GRAPH_LUA, { keys: 1 }) };
  }

  private readonly graph: GraphClient;

  /** The key prefix of a space's graph; the `{space}` hash tag keeps it on one cluster slot. */
  private spacePrefix(spaceId: string): string {
    return `${this.config.keyPrefix}idn:{${spaceId}}:`;
  }

  private idKey(spaceId: string, type: string, value: string): string {
    return `${this.spacePrefix(spaceId)}id:${type}${SEP}${value}`;
  }

  private idsKey(spaceId: string, profileId: string): string {
    return `${this.spacePrefix(spaceId)}p:${profileId}:ids`;
  }

  private accountsKey(spaceId: string, profileId: string): string {
    return `${this.spacePrefix(spaceId)}p:${profileId}:acc`;
  }

  private mergesKey(spaceId: string, profileId: string): string {
    return `${this.spacePrefix(spaceId)}p:${profileId}:merges`;
  }

  private mergeCausesKey(spaceId: string, profileId: string): string {
    return `${this.spacePrefix(spaceId)}p:${profileId}:merges:by`;
  }

  private aliasKey(spaceId: string, profileId: string): string {
    return `${this.spacePrefix(spaceId)}alias:${profileId}`;
  }

  /**
   * Runs the graph script over a space's events (one atomic call; arguments
   * and replies as documented in identity-graph.lua.ts). `eventsJson`: the
   * flat JSON array of the events.
   */
  resolveBatch(spaceId: string, rulesJson: string, resultTtlSeconds: number, eventsJson: string): Promise<string[]> {
    return this.graph.resolveIdentityBatch(this.spacePrefix(spaceId), rulesJson, resultTtlSeconds, eventsJson, spaceId);
  }

  /** The profile an external id points to (always a live one: a merge rewrites the ids), or null. */
  profileOf(spaceId: string, type: string, value: string): Promise<string | null> {
    return this.deps.redis.get(this.idKey(spaceId, type, value));
  }

  /**
   * The survivor of each profile id (itself when not merged), merges followed
   * to the end (at most `maxHops`): one MGET per hop, in the space's slot.
   */
  async survivors(spaceId: string, profileIds: string[], opts: { maxHops: number }): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let left = [...new Set(profileIds)].map((pid) => ({ pid, at: pid }));
    for (let hop = 0; left.length > 0 && hop < opts.maxHops; hop++) {
      const into = await this.deps.redis.mget(...left.map((t) => this.aliasKey(spaceId, t.at)));
      const next: typeof left = [];
      left.forEach((t, i) => {
        if (into[i]) next.push({ pid: t.pid, at: into[i]! });
        else out.set(t.pid, t.at);
      });
      left = next;
    }
    for (const t of left) out.set(t.pid, t.at); // a chain longer than maxHops: stop where we are
    return out;
  }

  /** The ids of a profile (empty for a merged or unknown one). */
  async idsOf(spaceId: string, profileId: string): Promise<ExternalId[]> {
    return (await this.deps.redis.zrange(this.idsKey(spaceId, profileId), 0, -1)).map(parseGraphId);
  }

  /** The ids of many profiles of one space in one pipeline (one slot), in the order asked. */
  async idsOfMany(spaceId: string, profileIds: string[]): Promise<ExternalId[][]> {
    if (profileIds.length === 0) return [];
    const pipeline = this.deps.redis.pipeline();
    for (const pid of profileIds) pipeline.zrange(this.idsKey(spaceId, pid), 0, -1);
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, members]) => {
      if (err) throw err;
      return (members as string[]).map(parseGraphId);
    });
  }

  /**
   * The profiles merged into a profile, newest first, a page at a time: the
   * whole chain (what was merged into a profile that was merged later is
   * listed on the final survivor). A merged profile id answers for its
   * survivor (alias: followed, at most `maxHops`); `profileId` is the one read.
   * The log is bounded by the space's merge cap, so `total` is too.
   */
  async mergesOf(
    spaceId: string,
    profileId: string,
    opts: { offset: number; limit: number; maxHops: number },
  ): Promise<{ profileId: string; total: number; merges: MergeRecord[] }> {
    const survivor = (await this.survivors(spaceId, [profileId], { maxHops: opts.maxHops })).get(profileId)!;
    const log = this.mergesKey(spaceId, survivor);
    const replies =
      (await this.deps.redis
        .pipeline()
        .zcard(log)
        .zrevrange(log, opts.offset, opts.offset + opts.limit - 1, 'WITHSCORES')
        .exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
    const total = replies[0]![1] as number;
    const flat = replies[1]![1] as string[];
    const merges: MergeRecord[] = [];
    for (let i = 0; i < flat.length; i += 2) merges.push({ profileId: flat[i]!, at: Number(flat[i + 1]), eventKey: null });
    if (merges.length > 0) {
      const causes = await this.deps.redis.hmget(this.mergeCausesKey(spaceId, survivor), ...merges.map((m) => m.profileId));
      merges.forEach((m, i) => (m.eventKey = causes[i] ?? null));
    }
    return { profileId: survivor, total, merges };
  }

  /** The accounts a user profile is linked to (group calls). */
  accountsOf(spaceId: string, profileId: string): Promise<string[]> {
    return this.deps.redis.smembers(this.accountsKey(spaceId, profileId));
  }

  /**
   * The whole graph of a space, by SCAN: for tests and operators, never on a
   * hot path. On a Cluster every master is scanned (one of them holds the
   * space's slot).
   */
  async snapshot(spaceId: string): Promise<GraphSnapshot> {
    const prefix = this.spacePrefix(spaceId);
    const match = `${escapeGlob(prefix)}*`;
    const keys: string[] = [];
    const redis = this.deps.redis;
    const nodes = (isCluster(redis) ? redis.nodes('master') : [redis]) as unknown as Scanner[];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, batch] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        keys.push(...batch);
        cursor = next;
      } while (cursor !== '0');
    }
    const snap: GraphSnapshot = { ids: new Map(), profiles: new Map(), aliases: new Map(), accounts: new Map() };
    for (const key of keys) {
      const rest = key.slice(prefix.length);
      if (rest.startsWith('id:')) snap.ids.set(rest.slice(3), (await redis.get(key))!);
      else if (rest.startsWith('alias:')) snap.aliases.set(rest.slice(6), (await redis.get(key))!);
      else if (rest.startsWith('p:') && rest.endsWith(':ids'))
        snap.profiles.set(rest.slice(2, -4), new Set(await redis.zrange(key, 0, -1)));
      else if (rest.startsWith('p:') && rest.endsWith(':acc')) snap.accounts.set(rest.slice(2, -4), new Set(await redis.smembers(key)));
    }
    return snap;
  }
}
