import type { ComputationChange } from '@engage/schemas';
import { buildEventCalls, buildGroupCall, callMessageId, changeForAccountUser, classifyResponse, rateLimitOf } from './index';

const change: ComputationChange = {
  change_id: 'chg_1',
  space_id: 'spa_1',
  computation_id: 'aud_1',
  computation_key: 'order_completed_last_30_days',
  computation_class: 'audience',
  level: 'user',
  profile_id: 'pro_1',
  value: true,
  previous: false,
  value_is_json: false,
  reason: 'realtime',
  occurred_at: 0,
  emitted_at: Date.parse('2026-11-22T10:00:00Z'),
  external_ids: [
    { type: 'user_id', id: 'u123' },
    { type: 'email', id: 'a@b.co' },
    { type: 'email', id: 'c@d.co' },
  ],
  user_id: 'u123',
  anonymous_id: null,
  traits_json: '{}',
};
const personas = {
  computation_class: 'audience',
  computation_id: 'aud_1',
  computation_key: 'order_completed_last_30_days',
  namespace: 'spa_1',
  space_id: 'spa_1',
};
const destination = { id: 'dst_1', name: 'My Webhook' };

describe('buildEventCalls', () => {
  it('builds exactly the identify and track calls of CONTRACT.md section 5, one pair per email', () => {
    const calls = buildEventCalls(change, destination, { identify: true, track: true, identifierTypes: ['user_id', 'email'] });
    expect(calls).toEqual([
      {
        type: 'identify',
        userId: 'u123',
        messageId: callMessageId('chg_1', 'dst_1', 'identify', 'email:a@b.co'),
        timestamp: '2026-11-22T10:00:00.000Z',
        traits: { order_completed_last_30_days: true, email: 'a@b.co' },
        context: { personas },
        integrations: { All: false, 'My Webhook': true },
      },
      {
        type: 'track',
        event: 'Audience Entered',
        userId: 'u123',
        messageId: callMessageId('chg_1', 'dst_1', 'track', 'email:a@b.co'),
        timestamp: '2026-11-22T10:00:00.000Z',
        properties: { audience_key: 'order_completed_last_30_days', order_completed_last_30_days: true },
        context: { personas, traits: { email: 'a@b.co' } },
        integrations: { All: false, 'My Webhook': true },
      },
      expect.objectContaining({ type: 'identify', traits: { order_completed_last_30_days: true, email: 'c@d.co' } }),
      expect.objectContaining({ type: 'track', context: { personas, traits: { email: 'c@d.co' } } }),
    ]);
  });

  it('by default sends one call per email with the email as a trait, as Segment does', () => {
    const calls = buildEventCalls(change, destination, { identify: true, track: false });
    expect(calls.map((c) => c.traits)).toEqual(
      change.external_ids.filter((x) => x.type === 'email').map((x) => ({ order_completed_last_30_days: true, email: x.id })),
    );
  });

  it('exits, custom event names, traits, and anonymous profiles', () => {
    const exit = buildEventCalls({ ...change, value: false, previous: true }, destination, {
      identify: false,
      track: true,
      exitedEvent: 'Left Buyers',
      identifierTypes: ['user_id'],
    });
    expect(exit.map((c) => [c.event, c.properties])).toEqual([
      ['Left Buyers', { audience_key: 'order_completed_last_30_days', order_completed_last_30_days: false }],
    ]);
    const trait = buildEventCalls(
      { ...change, computation_class: 'trait', computation_key: 'ltv', value: 42, user_id: null, anonymous_id: 'anon-1' },
      destination,
      { identify: true, track: true, identifierTypes: ['user_id'] },
    );
    expect(
      trait.map((c) => ({
        type: c.type,
        anonymousId: c.anonymousId,
        userId: c.userId,
        event: c.event,
        traits: c.traits,
        properties: c.properties,
        cls: c.context.personas.computation_class,
      })),
    ).toEqual([
      {
        type: 'identify',
        anonymousId: 'anon-1',
        userId: undefined,
        event: undefined,
        traits: { ltv: 42 },
        properties: undefined,
        cls: 'trait',
      },
      {
        type: 'track',
        anonymousId: 'anon-1',
        userId: undefined,
        event: 'Trait Computed',
        traits: undefined,
        properties: { trait_key: 'ltv', ltv: 42 },
        cls: 'trait',
      },
    ]);
  });
});

describe('retry policy and rate limits', () => {
  it('classifies statuses as Segment does', () => {
    expect([200, 204, 400, 401, 404, 408, 423, 429, 500, 501, 503].map((s) => classifyResponse(s, null).kind)).toEqual([
      'delivered',
      'delivered',
      'fail',
      'fail',
      'fail',
      'retry',
      'retry',
      'retry',
      'retry',
      'fail',
      'retry',
    ]);
    expect(classifyResponse(429, '3')).toEqual({ kind: 'retry', reason: 'HTTP 429', retryAfterMs: 3000 });
  });
  it('uses the documented defaults by type and the override', () => {
    expect([
      rateLimitOf({ type: 'hubspot' }),
      rateLimitOf({ type: 'webhook' }),
      rateLimitOf({ type: 'webhook', rateLimit: { requestsPerSecond: 5 } }),
    ]).toEqual([{ perSecond: 5, burst: 1 }, null, { perSecond: 5, burst: 1 }]);
  });
});

describe('account-level computations', () => {
  const accountChange = {
    ...change,
    computation_id: 'aud_acc',
    computation_key: 'active_accounts',
    level: 'account' as const,
    profile_id: 'acc_1',
    user_id: null,
    external_ids: [{ type: 'group_id', id: 'g-42' }],
  };

  it('sends a Group call per account with the audience as a boolean trait', () => {
    const call = buildGroupCall(accountChange, destination);
    expect(call).toEqual({
      type: 'group',
      groupId: 'g-42',
      messageId: expect.stringMatching(/^personas_[0-9a-f]{32}$/),
      timestamp: new Date(accountChange.emitted_at).toISOString(),
      traits: { active_accounts: true },
      context: {
        personas: {
          computation_class: 'audience',
          computation_id: 'aud_acc',
          computation_key: 'active_accounts',
          namespace: change.space_id,
          space_id: change.space_id,
        },
      },
      integrations: { All: false, [destination.name]: true },
    });
    expect(buildGroupCall({ ...accountChange, external_ids: [] }, destination)).toBeNull();
  });

  it("addresses each user of the account with the user's own identifiers and a distinct change id", () => {
    const user = {
      profileId: 'pro_u',
      userId: 'u-7',
      anonymousId: null,
      externalIds: [
        { type: 'user_id', id: 'u-7' },
        { type: 'email', id: 'u7@x.co' },
      ],
    };
    const forUser = changeForAccountUser(accountChange, user);
    expect(buildEventCalls(forUser, destination, { identify: true, track: false }).map((c) => [c.userId, c.traits])).toEqual([
      ['u-7', { active_accounts: true, email: 'u7@x.co' }],
    ]);
    expect(forUser.change_id).not.toBe(accountChange.change_id);
    expect(changeForAccountUser(accountChange, { ...user, profileId: 'pro_v' }).change_id).not.toBe(forUser.change_id);
  });
});
