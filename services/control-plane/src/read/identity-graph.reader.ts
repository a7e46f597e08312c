// Read-only view of the identity graph the identity resolver keeps in Redis
// (layout documented in services/identity-resolver/src/identity-graph.lua.ts):
//   <prefix>idn:{<space>}:id:<type>\x1f<value> -> live profile id
//   <prefix>idn:{<space>}:p:<pid>:ids          -> sorted set of <type>\x1f<value> (score: last seen)
//   <prefix>idn:{<space>}:p:<pid>:acc          -> account profile ids (group calls)
//   <prefix>idn:{<space>}:alias:<pid>          -> survivor of a merged profile
// NOTE: the graph keeps user -> account links only; an account's users are
// not indexed yet, so links of an account answer an empty list.
// The Profile API looks profiles up by any external id through it, and the CSV
// export reads the ids of many profiles at once.
import type { RedisClient } from '@engage/redis';

export interface GraphId {
  type: string;
  id: string;
}

const SEP = '\u001f';
const MAX_ALIAS_HOPS = 64;

function splitId(member: string): GraphId {
  const i = member.indexOf(SEP);
  return { type: member.slice(0, i), id: member.slice(i + 1) };
}

export class IdentityGraphReader {
  constructor(
    private readonly config: { keyPrefix: string },
    private readonly deps: { redis: RedisClient },
  ) {}

  private space(spaceId: string): string {
    return `${this.config.keyPrefix}idn:{${spaceId}}:`;
  }

  /** The live profile an external id belongs to (following merges), or null. */
  async lookup(spaceId: string, type: string, value: string): Promise<string | null> {
    const pid = await this.deps.redis.get(`${this.space(spaceId)}id:${type}${SEP}${value}`);
    return pid ? this.survivor(spaceId, pid) : null;
  }

  /** Follows alias links: a merged profile id answers with its survivor. */
  async survivor(spaceId: string, pid: string): Promise<string> {
    let current = pid;
    for (let hops = 0; hops < MAX_ALIAS_HOPS; hops++) {
      const next = await this.deps.redis.get(`${this.space(spaceId)}alias:${current}`);
      if (!next) return current;
      current = next;
    }
    return current;
  }

  async externalIds(spaceId: string, pid: string): Promise<GraphId[]> {
    return (await this.deps.redis.zrange(`${this.space(spaceId)}p:${pid}:ids`, 0, -1)).map(splitId);
  }

  /** The ids of many profiles in one pipeline, in the order asked. */
  async externalIdsOfMany(spaceId: string, pids: string[]): Promise<GraphId[][]> {
    if (pids.length === 0) return [];
    const pipeline = this.deps.redis.pipeline();
    for (const pid of pids) pipeline.zrange(`${this.space(spaceId)}p:${pid}:ids`, 0, -1);
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, members]) => {
      if (err) throw err;
      return (members as string[]).map(splitId);
    });
  }

  /** Accounts of a user (collection users) or users of an account (collection accounts). */
  async links(spaceId: string, pid: string, collection: 'users' | 'accounts'): Promise<string[]> {
    if (collection === 'accounts') return [];
    return this.deps.redis.smembers(`${this.space(spaceId)}p:${pid}:acc`);
  }
}
