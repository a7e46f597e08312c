import { DEFAULT_IDENTITY_RULES, compileRules, extractExternalIds, extractIdentifiers, type IdentitySource } from './index';

const base: IdentitySource = { type: 'track', userId: null, anonymousId: null, traits: {}, context: {}, externalIds: [] };
const defaults = compileRules(DEFAULT_IDENTITY_RULES);

describe('extractIdentifiers', () => {
  it("takes ids from every part of a call, user_id and email first, then alphabetically (Segment's order)", () => {
    expect(
      extractIdentifiers(
        {
          ...base,
          type: 'identify',
          userId: 'u1',
          anonymousId: 'anon-1',
          traits: { email: 'Ada@Example.com' },
          context: { device: { id: 'dev-1', advertisingId: 'ad-1', type: 'ios', token: 'push-1' } },
          integrations: { 'Google Analytics': { clientId: 'ga-1' } },
          externalIds: [{ type: 'CRM_ID', id: 'c-9', collection: 'users' }],
        },
        defaults,
      ),
    ).toEqual({
      user: [
        { type: 'user_id', id: 'u1' },
        { type: 'email', id: 'ada@example.com' },
        { type: 'anonymous_id', id: 'anon-1' },
        { type: 'crm_id', id: 'c-9' },
        { type: 'ga_client_id', id: 'ga-1' },
        { type: 'ios.id', id: 'dev-1' },
        { type: 'ios.idfa', id: 'ad-1' },
        { type: 'ios.push_token', id: 'push-1' },
      ],
      account: [],
    });
  });

  it('reads the email from context.traits on track calls; android ids by device.type, advertising id only with ad tracking on', () => {
    expect(
      extractExternalIds(
        {
          ...base,
          anonymousId: 'a',
          context: { traits: { email: 'x@y.co' }, device: { id: 'd', type: 'android', advertisingId: 'ad', adTrackingEnabled: false } },
        },
        defaults,
      ),
    ).toEqual([
      { type: 'email', id: 'x@y.co' },
      { type: 'android.id', id: 'd' },
      { type: 'anonymous_id', id: 'a' },
    ]);
  });

  it('names device ids of unknown platforms generically and falls back to os.name', () => {
    expect(extractExternalIds({ ...base, context: { device: { id: 'd1', advertisingId: 'ad1' } } }, defaults)).toEqual([
      { type: 'advertisingId', id: 'ad1' },
      { type: 'device.id', id: 'd1' },
    ]);
    expect(extractExternalIds({ ...base, context: { device: { id: 'd2' }, os: { name: 'iPadOS' } } }, defaults)).toEqual([
      { type: 'ios.id', id: 'd2' },
    ]);
  });

  it('keeps account ids apart: group_id of group calls and externalIds of the accounts collection', () => {
    expect(
      extractIdentifiers(
        {
          ...base,
          type: 'group',
          userId: 'u1',
          groupId: 'acme',
          externalIds: [{ type: 'salesforce_id', id: 'sf-1', collection: 'accounts' }],
        },
        defaults,
      ),
    ).toEqual({
      user: [{ type: 'user_id', id: 'u1' }],
      account: [
        { type: 'salesforce_id', id: 'sf-1' },
        { type: 'group_id', id: 'acme' },
      ],
    });
    // group_id only counts on group calls.
    expect(extractIdentifiers({ ...base, userId: 'u1', groupId: 'acme' }, defaults).account).toEqual([]);
  });

  it("drops blocked values (Segment's defaults: null, anonymous, -1, zeroes and dashes; and the space's own) and duplicates", () => {
    const rules = compileRules({ ...DEFAULT_IDENTITY_RULES, blockedPatterns: [...DEFAULT_IDENTITY_RULES.blockedPatterns, '^test-'] });
    expect(
      extractExternalIds(
        {
          ...base,
          userId: 'NULL',
          anonymousId: ' anonymous ',
          traits: { email: 'test@test.com' },
          context: { device: { id: '0000-0000', advertisingId: '-1' } },
          externalIds: [
            { type: 'crm_id', id: 'test-1' },
            { type: 'crm_id', id: 'ok' },
            { type: 'crm_id', id: 'ok' },
            { type: 'crm_id', id: '0' },
          ],
        },
        rules,
      ),
    ).toEqual([{ type: 'crm_id', id: 'ok' }]);
  });

  it('ignores values that are not usable as keys: lone surrogates, over-long values, non-finite numbers, odd type names', () => {
    expect(
      extractExternalIds(
        {
          ...base,
          userId: 'u\ud800',
          anonymousId: 'a'.repeat(1025),
          traits: { email: 'ok\ud83d\ude00@x.co' },
          externalIds: [
            { type: 'n', id: Infinity as unknown as string },
            { type: 'bad\u001ftype', id: 'x' },
            { type: '', id: 'y' },
          ],
        },
        defaults,
      ),
    ).toEqual([{ type: 'email', id: 'ok\ud83d\ude00@x.co' }]);
  });

  it('honours an explicit priority and custom identifiers from traits or properties (camelCase or snake_case)', () => {
    const rules = compileRules({
      ...DEFAULT_IDENTITY_RULES,
      priority: ['phone', 'user_id'],
      customIdentifiers: [
        { type: 'phone', key: 'phone_number' },
        { type: 'shop_id', key: 'shopId' },
      ],
    });
    expect(
      extractExternalIds(
        { ...base, userId: 'u1', anonymousId: 'a1', traits: { phoneNumber: '+1 555' }, properties: { shop_id: 42 } },
        rules,
      ),
    ).toEqual([
      { type: 'phone', id: '+1 555' },
      { type: 'user_id', id: 'u1' },
      { type: 'anonymous_id', id: 'a1' },
      { type: 'shop_id', id: '42' },
    ]);
  });
});
