import { DEFAULT_IDENTITY_RULES, parseIdentityRules } from './index';

describe('parseIdentityRules', () => {
  it("fills Segment's defaults for what a space leaves out", () => {
    expect(parseIdentityRules({})).toEqual({ rules: DEFAULT_IDENTITY_RULES, errors: [] });
    expect(parseIdentityRules({ limits: { user_id: 1, anonymous_id: { limit: 5, window: 'weekly' } } }).rules.limits).toEqual({
      user_id: { limit: 1, window: 'ever' },
      anonymous_id: { limit: 5, window: 'weekly' },
    });
  });

  it('names every bad field', () => {
    expect(
      parseIdentityRules({
        priorty: [],
        limits: { email: { limit: 0, window: 'hourly' } },
        blockedPatterns: ['('],
        priority: ['user_id', 'user_id'],
        customIdentifiers: [{ type: 'Phone', key: 'phone' }],
      }).errors,
    ).toEqual([
      { field: 'priorty', message: expect.stringContaining('unknown field') },
      { field: 'priority', message: 'an identifier type is listed twice' },
      { field: 'limits.email.limit', message: 'expected an integer from 1 to 1000' },
      { field: 'limits.email.window', message: 'expected one of ever, daily, weekly, monthly, annually' },
      { field: 'blockedPatterns[0]', message: expect.stringContaining('invalid regular expression') },
      { field: 'customIdentifiers[0].type', message: expect.stringContaining('lowercase') },
    ]);
  });
});
