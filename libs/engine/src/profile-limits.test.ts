import { PROFILE_LIMITS, addExternalId, mergeTraits } from './profile-limits';

const limits = { traits: 3, traitsBytes: 70, traitValueBytes: 20, externalIds: 2 } as unknown as typeof PROFILE_LIMITS;

describe('mergeTraits: a profile stays within its limits', () => {
  it('stores what fits, refuses a value too large, a new key past the count and anything past the total, and reports them', () => {
    const traits: Record<string, unknown> = { plan: 'free' };
    expect(mergeTraits(traits, { plan: 'pro', big: 'x'.repeat(30), a: 1, b: 2, c: 3 }, { limits })).toEqual({
      changed: ['plan', 'a', 'b'],
      refused: ['big', 'c'],
    });
    expect(traits).toEqual({ plan: 'pro', a: 1, b: 2 });
    // Existing keys still update while the count is full; the total bound holds on updates too.
    expect(mergeTraits(traits, { a: 'y'.repeat(18) }, { limits })).toEqual({ changed: ['a'], refused: [] });
    expect(mergeTraits(traits, { b: 'z'.repeat(18), plan: 'p'.repeat(18) }, { limits })).toEqual({ changed: ['b'], refused: ['plan'] });
    expect(JSON.stringify(traits).length).toBeLessThanOrEqual(70);
  });

  it('unchanged values are neither changed nor refused; overwrite: false keeps existing keys (merges: the survivor wins)', () => {
    const traits: Record<string, unknown> = { plan: 'pro', email: 'a@b.co' };
    expect(mergeTraits(traits, { plan: 'pro' }, { limits })).toEqual({ changed: [], refused: [] });
    expect(mergeTraits(traits, { plan: 'free', city: 'Oslo' }, { limits, overwrite: false })).toEqual({ changed: ['city'], refused: [] });
    expect(traits).toEqual({ plan: 'pro', email: 'a@b.co', city: 'Oslo' });
  });

  it('with the default limits, 40 identifies of 30 distinct 1 KB traits stay under the documented bounds', () => {
    const traits: Record<string, unknown> = {};
    let refused = 0;
    for (let call = 0; call < 40; call++) {
      const incoming = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`t_${call}_${i}`, 'v'.repeat(1024)]));
      refused += mergeTraits(traits, incoming).refused.length;
    }
    expect(Object.keys(traits).length).toBeLessThanOrEqual(PROFILE_LIMITS.traits);
    expect(JSON.stringify(traits).length).toBeLessThanOrEqual(PROFILE_LIMITS.traitsBytes);
    expect(refused).toBe(1200 - Object.keys(traits).length);
  });
});

describe('addExternalId', () => {
  it('adds new ids up to the limit, keeps known ones', () => {
    const ids = [{ type: 'user_id', id: 'u1' }];
    expect(addExternalId(ids, 'user_id', 'u1', limits)).toBe(true);
    expect(addExternalId(ids, 'email', 'a@b.co', limits)).toBe(true);
    expect(addExternalId(ids, 'anonymous_id', 'a1', limits)).toBe(false);
    expect(ids).toEqual([
      { type: 'user_id', id: 'u1' },
      { type: 'email', id: 'a@b.co' },
    ]);
  });
});
