// Where a profile id went: the identity resolver writes `alias:<pid>` -> the
// survivor when it merges a profile into another (its graph keyspace,
// owned by services/identity-resolver/src/identity-graph.lua.ts; read-only
// here). A backfill attributes an event resolved to a profile that was
// merged later to the survivor, where real time counts that person's events.
import type { RedisClient } from '@engage/redis';

const MAX_HOPS = 16;

export class IdentityAliases {
  /** "space|pid" -> survivor (itself when not merged); only for one replay. */
  private readonly cache = new Map<string, string>();

  constructor(
    private readonly config: { keyPrefix: string },
    private readonly deps: { redis: RedisClient },
  ) {}

  private aliasKey(spaceId: string, profileId: string): string {
    return `${this.config.keyPrefix}idn:{${spaceId}}:alias:${profileId}`;
  }

  /**
   * The survivor of each profile id (itself when not merged), merges followed
   * to the end (at most 16). One MGET per hop for the ids not cached; `fresh`
   * skips the cache (a merge may have happened since).
   */
  async survivors(spaceId: string, profileIds: string[], opts: { fresh?: boolean } = {}): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const todo: Array<{ pid: string; at: string }> = [];
    for (const pid of new Set(profileIds)) {
      const hit = opts.fresh ? undefined : this.cache.get(`${spaceId}|${pid}`);
      if (hit !== undefined) out.set(pid, hit);
      else todo.push({ pid, at: pid });
    }
    let left = todo;
    for (let hop = 0; left.length > 0 && hop < MAX_HOPS; hop++) {
      const into = await this.deps.redis.mget(...left.map((t) => this.aliasKey(spaceId, t.at)));
      const next: typeof left = [];
      left.forEach((t, i) => {
        if (into[i]) next.push({ pid: t.pid, at: into[i]! });
        else out.set(t.pid, t.at);
      });
      left = next;
    }
    for (const t of left) out.set(t.pid, t.at); // a chain longer than MAX_HOPS: stop where we are
    for (const t of todo) this.cache.set(`${spaceId}|${t.pid}`, out.get(t.pid)!);
    return out;
  }
}
