// The identity graph in Redis: one Lua call per space per chunk (the events of
// a space, in order), all calls of a chunk issued in the same tick so ioredis
// auto-pipelining sends them as one round trip per Redis node.
// The keys and the script are the graph store's (@engage/identity,
// identity-graph.store.ts); this file groups requests and reads the replies.
import { IdentityGraphStore, parseGraphId, type CompiledIdentityRules, type ExternalId } from '@engage/identity';
import type { RedisClient } from '@engage/redis';

export interface ResolveRequest {
  spaceId: string;
  /** The event's identity (eventKey in @engage/schemas): the replay cache is keyed by it, never by the sender's messageId. */
  eventKey: string;
  /** User-level ids, highest priority first. */
  ids: ExternalId[];
  rules: CompiledIdentityRules;
  /** Group calls: the account profile to link the user to. */
  accountId: string | null;
  /** Event time (ms): windowed limits count values seen within the window before it. */
  timestamp: number;
}

export interface ResolveResult {
  profileId: string;
  created: boolean;
  /** Profiles folded into profileId by this event. */
  merged: string[];
  added: ExternalId[];
  /** Ids the survivor took over from the profiles it merged. */
  gained: ExternalId[];
  /** Ids left out to respect limits or the merge cap (they stay on their own profiles). */
  dropped: ExternalId[];
  /** All ids of the profile after the change (only when it changed). */
  all: ExternalId[];
  accountLinked: boolean;
}

// Shared by every result that has nothing to list (most of them): no garbage per event. Frozen: never written.
const NONE: never[] = Object.freeze([]) as unknown as never[];
// cjson encodes an empty Lua table as {} rather than [].
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : NONE);

export class IdentityRepository {
  /** The graph's keyspace (also what tests read the graph through: `graph.snapshot(space)`). */
  readonly graph: IdentityGraphStore;

  constructor(
    private readonly config: { keyPrefix: string; resultTtlSeconds: number },
    deps: { redis: RedisClient },
  ) {
    this.graph = new IdentityGraphStore({ keyPrefix: config.keyPrefix }, deps);
  }

  /** Resolves every request, each space's requests in order in one atomic script call; results in request order. */
  async resolveAll(requests: ResolveRequest[]): Promise<ResolveResult[]> {
    if (requests.length === 0) return [];
    const bySpace = new Map<string, number[]>();
    requests.forEach((r, i) => {
      const group = bySpace.get(r.spaceId);
      if (group) group.push(i);
      else bySpace.set(r.spaceId, [i]);
    });
    const results: ResolveResult[] = new Array(requests.length);
    // NOTE: issued together, not awaited one by one: auto-pipelining sends them in one write.
    await Promise.all(
      [...bySpace.entries()].map(async ([spaceId, indexes]) => {
        // One flat array of strings (@engage/identity identity-graph.lua.ts, ARGV): cheaper to build here and to decode in Redis.
        const events: Array<string | number> = [];
        for (const i of indexes) {
          const r = requests[i]!;
          events.push(r.eventKey, r.accountId ?? '', String(r.timestamp), r.ids.length);
          for (const x of r.ids) events.push(x.type, x.id);
        }
        const replies = await this.graph.resolveBatch(
          spaceId,
          requests[indexes[0]!]!.rules.scriptJson,
          this.config.resultTtlSeconds,
          JSON.stringify(events),
        );
        for (let k = 0; k < indexes.length; k++) results[indexes[k]!] = parse(replies[k]!, requests[indexes[k]!]!);
      }),
    );
    return results;
  }

  async resolve(request: ResolveRequest): Promise<ResolveResult> {
    return (await this.resolveAll([request]))[0]!;
  }
}

const unchanged = (profileId: string): ResolveResult => ({
  profileId,
  created: false,
  merged: NONE,
  added: NONE,
  gained: NONE,
  dropped: NONE,
  all: NONE,
  accountLinked: false,
});

function parse(reply: string, request: ResolveRequest): ResolveResult {
  if (reply.startsWith('P')) return unchanged(reply.slice(1));
  if (reply.startsWith('C')) return { ...unchanged(reply.slice(1)), created: true, added: request.ids, all: request.ids };
  const r = JSON.parse(reply) as Record<string, unknown>;
  return {
    profileId: r.profileId as string,
    created: r.created === true,
    merged: list(r.merged),
    added: list(r.added).map(parseGraphId),
    gained: list(r.gained).map(parseGraphId),
    dropped: list(r.dropped).map(parseGraphId),
    all: list(r.all).map(parseGraphId),
    accountLinked: r.accountLinked === 1,
  };
}
