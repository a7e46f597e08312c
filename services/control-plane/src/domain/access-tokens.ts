// Profile API access tokens per space (CONTRACT.md section 7), as Segment's
// Profile API has them. Only a token's sha256 is stored (in the space's config
// record, read by every service): a leaked engage.config does not leak tokens,
// and 256 random bits need no salt or slow hash to resist guessing.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AccessTokenConfig, SpaceConfig } from '@engage/config-store';

export const hashAccessToken = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

/** True when `token` is one of the space's live access tokens. */
export function spaceTokenMatches(space: SpaceConfig | undefined, token: string): boolean {
  const given = Buffer.from(hashAccessToken(token), 'hex');
  let found = false;
  // Every stored hash is compared (no early exit), each in constant time.
  for (const t of space?.accessTokens ?? []) if (timingSafeEqual(given, Buffer.from(t.tokenHash, 'hex'))) found = true;
  return found;
}

/** A token as lists show it: never the token, never its hash. */
export const tokenView = (t: AccessTokenConfig) => ({ id: t.id, name: t.name, createdAt: t.createdAt });

/** A space as the API shows it: its access tokens are listed under /access-tokens only. */
export function spaceView(space: SpaceConfig): SpaceConfig {
  const view = { ...space };
  delete view.accessTokens;
  return view;
}
