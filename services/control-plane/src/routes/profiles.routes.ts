// Segment's Profile API on the control plane (CONTRACT.md section 3):
//   GET /v1/spaces/{spaceId}/collections/users|accounts/profiles/{type}:{value}/traits|events|external_ids|metadata|links
// and one resource of ours beside them, `merges` (the profiles merged into this
// one, from the identity graph's merge log; Segment's Profile API has none).
// Basic auth with the token as username (the admin token, or an access token
// of the space in the path: access-tokens.routes.ts), a Request-Id header on every answer,
// Segment's error bodies ({"error":{"code","message"}}) and a per-space rate
// limit answering 429. Profiles are found by any external id through the
// identity graph (so an email finds the survivor after a merge).
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { ConfigStore } from '@engage/config-store';
import type { Logger } from '@engage/logging';
import type { ProfileStateRepository, StoredProfile } from '@engage/profile-store';
import { spaceTokenMatches } from '../domain/access-tokens';
import { param } from '../http/params';
import type { IdentityGraphReader } from '../read/identity-graph.reader';
import {
  ProfileApiError,
  csvParam,
  eventsView,
  externalIdsView,
  linksView,
  mergesOffset,
  mergesView,
  metadataView,
  parseLimit,
  traitsView,
  type TraitSources,
} from '../read/profile-views';

type Collection = 'users' | 'accounts';

function basicUser(header: string | undefined): string | null {
  const m = /^Basic\s+(.+)$/i.exec(header ?? '');
  if (!m) return null;
  const decoded = Buffer.from(m[1]!.trim(), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? decoded : decoded.slice(0, i);
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Per-space token buckets in this process. NOTE: with several control-plane
 * replicas each enforces the rate on its own share of the traffic.
 */
class SpaceRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(private readonly perSecond: number) {}
  /** 0 when allowed, else the seconds to wait. */
  take(spaceId: string, now = Date.now()): number {
    const b = this.buckets.get(spaceId) ?? { tokens: this.perSecond, at: now };
    b.tokens = Math.min(this.perSecond, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    this.buckets.set(spaceId, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perSecond));
  }
}

export function profileApiRouter(
  config: { token: string; requestsPerSecondPerSpace: number },
  deps: { store: ConfigStore; graph: IdentityGraphReader; profiles: ProfileStateRepository; log: Logger },
): Router {
  const router = Router();
  const limiter = new SpaceRateLimiter(config.requestsPerSecondPerSpace);

  router.use('/v1', (req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Request-Id', randomUUID());
    const user = basicUser(req.headers.authorization);
    // NOTE: the raw path segment, not decoded: space ids need no escaping, and
    // an escaped one names no space, so its tokens match nothing.
    const spaceId = /^\/spaces\/([^/]+)\//.exec(req.path)?.[1];
    const allowed =
      user !== null &&
      (sameSecret(user, config.token) || (spaceId !== undefined && spaceTokenMatches(deps.store.get('space', spaceId), user)));
    if (!allowed) {
      return void res
        .status(401)
        .json(
          new ProfileApiError(
            401,
            'authentication_error',
            'Failure to properly authenticate: use Basic auth with the access token as username',
          ).body(),
        );
    }
    next();
  });

  router.get('/v1/spaces/:spaceId/collections/:collection/profiles/:identifier/:resource', async (req, res) => {
    try {
      const spaceId = param(req, 'spaceId');
      const wait = limiter.take(spaceId);
      if (wait > 0) {
        res.setHeader('Retry-After', String(wait));
        throw new ProfileApiError(
          429,
          'rate_limit_error',
          `Too many requests: the limit is ${config.requestsPerSecondPerSpace} requests per second per space`,
        );
      }
      const collection = param(req, 'collection');
      if (collection !== 'users' && collection !== 'accounts') {
        throw new ProfileApiError(400, 'validation_error', `The parameter \`collection\` must be users or accounts; got '${collection}'`);
      }
      const resource = param(req, 'resource');
      const handler = RESOURCES[resource];
      if (!handler)
        throw new ProfileApiError(
          404,
          'not_found',
          `Unknown resource '${resource}': use traits, events, external_ids, metadata, links or merges`,
        );
      if (!deps.store.get('space', spaceId)) throw new ProfileApiError(404, 'not_found', `Space ${spaceId} was not found.`);
      const profileId = await findProfile(deps.graph, spaceId, param(req, 'identifier'));
      if (!profileId) throw new ProfileApiError(404, 'not_found', 'Profile was not found.');
      const [profile] = await deps.profiles.load([{ spaceId, profileId }]);
      const url = req.originalUrl.replace(/([?&])next=[^&]*&?/, '$1').replace(/[?&]$/, '');
      res.json(await handler({ req, spaceId, collection, profileId, profile: profile!, url, deps }));
    } catch (err) {
      if (err instanceof ProfileApiError) return void res.status(err.status).json(err.body());
      deps.log.error({ err, path: req.path }, 'profile_api_failed');
      res.status(500).json({ error: { code: 'internal_error', message: 'internal error' } });
    }
  });
  return router;
}

/** `type:value` (the value may contain ':'), looked up in the identity graph. */
async function findProfile(graph: IdentityGraphReader, spaceId: string, identifier: string): Promise<string | null> {
  const i = identifier.indexOf(':');
  if (i < 1 || i === identifier.length - 1) {
    throw new ProfileApiError(
      400,
      'validation_error',
      `The profile identifier must be <id_type>:<value>, such as user_id:u123 or email:a@b.co; got '${identifier}'`,
    );
  }
  const type = identifier.slice(0, i);
  const value = identifier.slice(i + 1);
  if (type === 'segment_id') {
    const pid = await graph.survivor(spaceId, value);
    return (await graph.externalIds(spaceId, pid)).length > 0 ? pid : null;
  }
  return graph.lookup(spaceId, type, value);
}

interface ResourceContext {
  req: Request;
  spaceId: string;
  collection: Collection;
  profileId: string;
  profile: StoredProfile;
  url: string;
  deps: { store: ConfigStore; graph: IdentityGraphReader };
}

const q = (req: Request, name: string): string | undefined => {
  const v = (req.query as Record<string, unknown>)[name];
  return typeof v === 'string' ? v : undefined;
};

function traitSources(ctx: ResourceContext): TraitSources {
  const audiences: Record<string, unknown> = {};
  const computedTraits: Record<string, unknown> = {};
  for (const a of ctx.deps.store.list('audience', ctx.spaceId)) {
    const v = ctx.profile.values[a.id];
    if (v !== undefined) audiences[a.key] = v.value;
  }
  for (const t of ctx.deps.store.list('computed_trait', ctx.spaceId)) {
    const v = ctx.profile.values[t.id];
    if (v !== undefined && v.value !== null) computedTraits[t.key] = v.value;
  }
  return { custom: ctx.profile.traits, audiences, computedTraits };
}

const RESOURCES: Record<string, (ctx: ResourceContext) => Promise<unknown>> = {
  traits: async (ctx) =>
    traitsView(traitSources(ctx), {
      include: csvParam(q(ctx.req, 'include')),
      class: q(ctx.req, 'class'),
      limit: parseLimit(q(ctx.req, 'limit'), 10, 200),
      next: q(ctx.req, 'next'),
      verbose: q(ctx.req, 'verbose') === 'true',
      url: ctx.url,
    }),
  external_ids: async (ctx) =>
    externalIdsView(await ctx.deps.graph.externalIds(ctx.spaceId, ctx.profileId), {
      collection: ctx.collection,
      include: csvParam(q(ctx.req, 'include')),
      limit: parseLimit(q(ctx.req, 'limit'), 25, 100),
      next: q(ctx.req, 'next'),
      url: ctx.url,
    }),
  events: async (ctx) =>
    eventsView(
      ctx.profile.events,
      { collection: ctx.collection, profileId: ctx.profileId, externalIds: await ctx.deps.graph.externalIds(ctx.spaceId, ctx.profileId) },
      {
        start: q(ctx.req, 'start'),
        end: q(ctx.req, 'end'),
        include: csvParam(q(ctx.req, 'include')),
        exclude: csvParam(q(ctx.req, 'exclude')),
        sort: q(ctx.req, 'sort'),
        limit: parseLimit(q(ctx.req, 'limit'), 10, 100),
        next: q(ctx.req, 'next'),
        url: ctx.url,
      },
    ),
  metadata: async (ctx) => metadataView(ctx.profile.metadata),
  merges: async (ctx) => {
    const page = { offset: mergesOffset(q(ctx.req, 'next')), limit: parseLimit(q(ctx.req, 'limit'), 25, 100) };
    return mergesView(await ctx.deps.graph.merges(ctx.spaceId, ctx.profileId, page), { ...page, url: ctx.url });
  },
  links: async (ctx) => {
    const limit = parseLimit(q(ctx.req, 'limit'), 20, 100);
    const linked = (await ctx.deps.graph.links(ctx.spaceId, ctx.profileId, ctx.collection)).sort().slice(0, limit);
    const ids = await ctx.deps.graph.externalIdsOfMany(ctx.spaceId, linked);
    return linksView(
      linked.map((profileId, i) => ({ profileId, ids: ids[i]! })),
      { to: ctx.collection === 'users' ? 'accounts' : 'users', limit },
    );
  },
};
