import { CHANGE_RECORD_LIMITS, changeExternalIds, changeId, changeTraitsJson } from './change-records';

describe('changeId', () => {
  // Pinned: dispatchers and destinations dedupe on ids derived from it, so a
  // different id for the same change after a deploy would deliver it twice.
  it('is the same id for the same change as every earlier release computed', () => {
    expect(changeId({ computationId: 'aud_1', version: 2, profileId: 'pro_1', value: true, cause: 'msg-1' })).toBe(
      'chg_016a07db8bb8e38d03763ddb34e0a94a',
    );
    expect(changeId({ computationId: 'trt_1', version: 1, profileId: 'pro_1', value: ['a', 'b'], cause: 'expiry@1700000000000' })).toBe(
      'chg_320cfd998c5d7f10bcae200c4ff97ed7',
    );
  });

  it('differs when any part differs', () => {
    const base = { computationId: 'aud_1', version: 2, profileId: 'pro_1', value: true, cause: 'msg-1' };
    const ids = [
      base,
      { ...base, computationId: 'aud_2' },
      { ...base, version: 3 },
      { ...base, profileId: 'pro_2' },
      { ...base, value: false },
      { ...base, cause: 'msg-2' },
    ].map(changeId);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('what a change record carries of its profile is bounded', () => {
  it('traits_json: the whole traits when small; else values over the per-value bound are left out and the budget holds', () => {
    expect(changeTraitsJson({ email: 'a@b.co', plan: 'pro' })).toBe('{"email":"a@b.co","plan":"pro"}');
    const big = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`t${i}`, 'v'.repeat(900)]));
    const json = changeTraitsJson({ email: 'a@b.co', huge: 'x'.repeat(5000), ...big });
    expect(json.length).toBeLessThanOrEqual(CHANGE_RECORD_LIMITS.traitsBytes);
    const kept = JSON.parse(json);
    expect(kept.email).toBe('a@b.co');
    expect(kept.huge).toBeUndefined();
    expect(Object.keys(kept).length).toBeGreaterThan(10);
  });

  it('external_ids: at most the bound, the other ids before anonymous ids', () => {
    const anon = Array.from({ length: 150 }, (_, i) => ({ type: 'anonymous_id', id: `a${i}` }));
    const ids = changeExternalIds([...anon, { type: 'user_id', id: 'u1' }, { type: 'email', id: 'a@b.co' }]);
    expect(ids).toHaveLength(CHANGE_RECORD_LIMITS.externalIds);
    expect(ids.slice(0, 2)).toEqual([
      { type: 'user_id', id: 'u1' },
      { type: 'email', id: 'a@b.co' },
    ]);
    const few = [{ type: 'user_id', id: 'u1' }];
    expect(changeExternalIds(few)).toBe(few);
  });
});
