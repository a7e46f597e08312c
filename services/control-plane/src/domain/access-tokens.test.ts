import type { SpaceConfig } from '@engage/config-store';
import { hashAccessToken, spaceTokenMatches, spaceView, tokenView } from './access-tokens';

const space = (tokens: string[]): SpaceConfig => ({
  id: 'spa_1',
  name: 'S',
  accessTokens: tokens.map((t, i) => ({ id: `tok_${i}`, name: `t${i}`, tokenHash: hashAccessToken(t), createdAt: 'c' })),
  createdAt: 'c',
  updatedAt: 'u',
});

describe('access tokens', () => {
  it('stores the sha256 of a token, pinned so stored tokens keep working across releases', () => {
    expect(hashAccessToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('matches a token of the space only', () => {
    expect([spaceTokenMatches(space(['a', 'b']), 'b'), spaceTokenMatches(space(['a']), 'b'), spaceTokenMatches(undefined, 'a')]).toEqual([
      true,
      false,
      false,
    ]);
  });

  it('shows neither tokens nor hashes', () => {
    const s = space(['a']);
    expect(spaceView(s)).toEqual({ id: 'spa_1', name: 'S', createdAt: 'c', updatedAt: 'u' });
    expect(tokenView(s.accessTokens![0]!)).toEqual({ id: 'tok_0', name: 't0', createdAt: 'c' });
  });
});
