import { changeId } from './change-records';

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
