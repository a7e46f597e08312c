// Where a profile id went: the identity resolver records the survivor when it
// merges a profile into another (the graph's keyspace, owned by
// @engage/identity identity-graph.store.ts; read-only here). A backfill
// attributes an event resolved to a profile that was merged later to the
// survivor, where real time counts that person's events.
import { IdentityGraphStore } from '@engage/identity';
import type { RedisClient } from '@engage/redis';

const MAX_HOPS = 16;

export class IdentityAliases {
  /** "space|pid" -> survivor (itself when not merged); only for one replay. */
  private readonly cache = new Map<string, string>();

  private readonly graph: IdentityGraphStore;

  constructor(config: { keyPrefix: string }, deps: { redis: RedisClient }) {
    this.graph = new IdentityGraphStore(config, deps);
  }

  /**
   * The survivor of each profile id (itself when not merged), merges followed
   * to the end (at most 16). One MGET per hop for the ids not cached; `fresh`
   * skips the cache (a merge may have happened since).
   */
  async survivors(spaceId: string, profileIds: string[], opts: { fresh?: boolean } = {}): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const todo: string[] = [];
    for (const pid of new Set(profileIds)) {
      const hit = opts.fresh ? undefined : this.cache.get(`${spaceId}|${pid}`);
      if (hit !== undefined) out.set(pid, hit);
      else todo.push(pid);
    }
    if (todo.length === 0) return out;
    const found = await this.graph.survivors(spaceId, todo, { maxHops: MAX_HOPS });
    for (const pid of todo) {
      out.set(pid, found.get(pid)!);
      this.cache.set(`${spaceId}|${pid}`, found.get(pid)!);
    }
    return out;
  }
}
