// Reads a space's whole identity graph and checks its invariants. For tests
// and operators (SCAN-based: never on a hot path).
import { isCluster, type RedisClient } from '@engage/redis';

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

type Scanner = { scan(c: string, ...a: Array<string | number>): Promise<[string, string[]]> };

/**
 * SCAN answers for one node: on a Cluster every master is scanned (a space's
 * graph shares one slot, `{space}`, so one of them holds it all).
 */
async function scanKeys(redis: RedisClient, match: string): Promise<string[]> {
  const keys: string[] = [];
  const nodes = (isCluster(redis) ? redis.nodes('master') : [redis]) as unknown as Scanner[];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
  }
  return keys;
}

// Glob-escape the `{`/`}` of the hash tag and other specials.
const glob = (s: string) => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

export async function readGraph(redis: RedisClient, spacePrefix: string): Promise<GraphSnapshot> {
  const snap: GraphSnapshot = { ids: new Map(), profiles: new Map(), aliases: new Map(), accounts: new Map() };
  for (const key of await scanKeys(redis, `${glob(spacePrefix)}*`)) {
    const rest = key.slice(spacePrefix.length);
    if (rest.startsWith('id:')) snap.ids.set(rest.slice(3), (await redis.get(key))!);
    else if (rest.startsWith('alias:')) snap.aliases.set(rest.slice(6), (await redis.get(key))!);
    else if (rest.startsWith('p:') && rest.endsWith(':ids')) snap.profiles.set(rest.slice(2, -4), new Set(await redis.zrange(key, 0, -1)));
    else if (rest.startsWith('p:') && rest.endsWith(':acc')) snap.accounts.set(rest.slice(2, -4), new Set(await redis.smembers(key)));
  }
  return snap;
}

/** Follows merges from any profile id ever handed out to the live survivor. */
export function survivorOf(snap: GraphSnapshot, profileId: string): string {
  let pid = profileId;
  for (let hops = 0; hops < 1000 && snap.aliases.has(pid); hops++) pid = snap.aliases.get(pid)!;
  return pid;
}

/**
 * The graph's invariants; returns the violations (empty when sound):
 * every id points to a live profile that holds it; every id of a live profile
 * points back to it (so no id is on two live profiles); merged profiles hold
 * nothing and lead to a live survivor.
 */
export function graphViolations(snap: GraphSnapshot): string[] {
  const out: string[] = [];
  for (const [id, pid] of snap.ids) {
    if (snap.aliases.has(pid)) out.push(`id ${id} points to merged profile ${pid}`);
    if (!snap.profiles.get(pid)?.has(id)) out.push(`id ${id} points to ${pid}, which does not hold it`);
  }
  for (const [pid, ids] of snap.profiles) {
    if (snap.aliases.has(pid)) out.push(`merged profile ${pid} still holds ids`);
    for (const id of ids) if (snap.ids.get(id) !== pid) out.push(`profile ${pid} holds ${id}, which points to ${snap.ids.get(id)}`);
  }
  for (const pid of snap.aliases.keys()) {
    const s = survivorOf(snap, pid);
    if (!snap.profiles.has(s)) out.push(`merged profile ${pid} leads to ${s}, which is not live`);
  }
  return out;
}
