// Read-only view of the identity graph the identity resolver keeps in Redis,
// through the graph's owner module (@engage/identity identity-graph.store.ts,
// which alone spells its keys). The Profile API looks profiles up by any
// external id through it, and the CSV export reads the ids of many profiles
// at once.
// NOTE: the graph keeps user -> account links only; an account's users are
// not indexed yet, so links of an account answer an empty list.
import { IdentityGraphStore, type ExternalId, type MergeRecord } from '@engage/identity';
import type { RedisClient } from '@engage/redis';

export type GraphId = ExternalId;

const MAX_ALIAS_HOPS = 64;

export class IdentityGraphReader {
  private readonly graph: IdentityGraphStore;

  constructor(config: { keyPrefix: string }, deps: { redis: RedisClient }) {
    this.graph = new IdentityGraphStore(config, deps);
  }

  /** The live profile an external id belongs to (following merges), or null. */
  async lookup(spaceId: string, type: string, value: string): Promise<string | null> {
    const pid = await this.graph.profileOf(spaceId, type, value);
    return pid ? this.survivor(spaceId, pid) : null;
  }

  /** Follows alias links: a merged profile id answers with its survivor. */
  async survivor(spaceId: string, pid: string): Promise<string> {
    return (await this.graph.survivors(spaceId, [pid], { maxHops: MAX_ALIAS_HOPS })).get(pid)!;
  }

  externalIds(spaceId: string, pid: string): Promise<GraphId[]> {
    return this.graph.idsOf(spaceId, pid);
  }

  /** The ids of many profiles in one pipeline, in the order asked. */
  externalIdsOfMany(spaceId: string, pids: string[]): Promise<GraphId[][]> {
    return this.graph.idsOfMany(spaceId, pids);
  }

  /** The profiles merged into a profile (the whole chain), newest first, from `offset`; an old id reads its survivor's. */
  merges(spaceId: string, pid: string, page: { offset: number; limit: number }): Promise<{ total: number; merges: MergeRecord[] }> {
    return this.graph.mergesOf(spaceId, pid, { ...page, maxHops: MAX_ALIAS_HOPS });
  }

  /** Accounts of a user (collection users) or users of an account (collection accounts). */
  async links(spaceId: string, pid: string, collection: 'users' | 'accounts'): Promise<string[]> {
    if (collection === 'accounts') return [];
    return this.graph.accountsOf(spaceId, pid);
  }
}
