import { DEFAULT_IDENTITY_RULES, extractExternalIds, type IdentitySource } from './index';

const base: IdentitySource = { type: 'track', userId: null, anonymousId: null, traits: {}, context: {}, externalIds: [] };

describe('extractExternalIds', () => {
  it('takes ids from every part of a call, in priority order', () => {
    expect(
      extractExternalIds(
        {
          ...base,
          type: 'identify',
          userId: 'u1',
          anonymousId: 'anon-1',
          traits: { email: 'Ada@Example.com' },
          context: { device: { id: 'dev-1', advertisingId: 'ad-1' }, os: { name: 'iOS' } },
          externalIds: [{ type: 'crm_id', id: 'c-9' }],
        },
        DEFAULT_IDENTITY_RULES,
      ),
    ).toEqual([
      { type: 'user_id', id: 'u1' },
      { type: 'email', id: 'ada@example.com' },
      { type: 'ios.id', id: 'dev-1' },
      { type: 'advertisingId', id: 'ad-1' },
      { type: 'anonymous_id', id: 'anon-1' },
      { type: 'crm_id', id: 'c-9' },
    ]);
  });

  it('reads the email from context.traits on track calls, android device ids by os', () => {
    expect(extractExternalIds({ ...base, anonymousId: 'a', context: { traits: { email: 'x@y.co' }, device: { id: 'd' }, os: { name: 'Android' } } }, DEFAULT_IDENTITY_RULES)).toEqual([
      { type: 'email', id: 'x@y.co' },
      { type: 'android.id', id: 'd' },
      { type: 'anonymous_id', id: 'a' },
    ]);
  });

  it('drops blocked values (defaults and the space own patterns) and duplicates', () => {
    const rules = { ...DEFAULT_IDENTITY_RULES, blockedPatterns: ['^test-'] };
    expect(
      extractExternalIds({ ...base, userId: 'null', anonymousId: ' anonymous ', traits: { email: 'test@test.com' }, externalIds: [{ type: 'crm_id', id: 'test-1' }, { type: 'crm_id', id: 'ok' }, { type: 'crm_id', id: 'ok' }] }, rules),
    ).toEqual([{ type: 'crm_id', id: 'ok' }]);
  });
});
