// The identity graph in Redis: one Lua script call per event, all calls of a
// chunk in one pipeline (Redis runs them in order, so per-profile order holds).
import type { ExternalId, IdentityRules } from '@engage/identity';
import type { RedisClient } from '@engage/redis';
import { IDENTITY_GRAPH_LUA } from './identity-graph.lua';

export interface ResolveRequest {
  spaceId: string;
  messageId: string;
  /** Used only when the event creates a profile. */
  newProfileId: string;
  ids: ExternalId[];
  rules: IdentityRules;
  /** Group calls: the account profile to link the user to. */
  accountId: string | null;
}

export interface ResolveResult {
  profileId: string;
  created: boolean;
  /** Profiles folded into profileId by this event. */
  merged: string[];
  added: ExternalId[];
  /** Ids left out to respect limits (they stay on their own profiles). */
  dropped: ExternalId[];
  /** All ids of the profile after the change (only when it changed). */
  all: ExternalId[];
  accountLinked: boolean;
}

const SEP = '\u001f';
const splitId = (s: string): ExternalId => {
  const i = s.indexOf(SEP);
  return { type: s.slice(0, i), id: s.slice(i + 1) };
};
// cjson encodes an empty Lua table as {} rather than [].
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);

type Resolver = RedisClient & { resolveIdentity(...args: Array<string | number>): Promise<string> };

export class IdentityRepository {
  constructor(
    private readonly config: { keyPrefix: string; resultTtlSeconds: number },
    private readonly deps: { redis: RedisClient },
  ) {
    if (!('resolveIdentity' in deps.redis)) deps.redis.defineCommand('resolveIdentity', { numberOfKeys: 0, lua: IDENTITY_GRAPH_LUA });
  }

  private args(r: ResolveRequest): Array<string | number> {
    const rulesJson = JSON.stringify({ limits: r.rules.limits, defaultLimit: r.rules.defaultLimit, maxMerges: r.rules.maxMergesPerProfile });
    return [
      `${this.config.keyPrefix}idn:{${r.spaceId}}:`,
      r.newProfileId,
      rulesJson,
      r.messageId,
      this.config.resultTtlSeconds,
      r.accountId ?? '',
      r.ids.length,
      ...r.ids.flatMap((x) => [x.type, x.id]),
    ];
  }

  /** Resolves every request in one pipeline; results in request order. */
  async resolveAll(requests: ResolveRequest[]): Promise<ResolveResult[]> {
    if (requests.length === 0) return [];
    const pipeline = this.deps.redis.pipeline() as unknown as { resolveIdentity(...a: Array<string | number>): void; exec(): Promise<Array<[Error | null, unknown]> | null> };
    for (const r of requests) pipeline.resolveIdentity(...this.args(r));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, reply]) => {
      if (err) throw err;
      return this.parse(reply as string);
    });
  }

  async resolve(request: ResolveRequest): Promise<ResolveResult> {
    return this.parse(await (this.deps.redis as Resolver).resolveIdentity(...this.args(request)));
  }

  private parse(reply: string): ResolveResult {
    const r = JSON.parse(reply) as Record<string, unknown>;
    return {
      profileId: r.profileId as string,
      created: r.created === true,
      merged: list(r.merged),
      added: list(r.added).map(splitId),
      dropped: list(r.dropped).map(splitId),
      all: list(r.all).map(splitId),
      accountLinked: r.accountLinked === 1,
    };
  }
}
