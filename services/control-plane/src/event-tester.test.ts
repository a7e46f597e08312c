import type { DestinationConfig } from '@engage/config-store';
import { sha256Hex } from '@engage/delivery';
import { listAdapters } from '@engage/dispatcher/dist/sending';
import {
  isListDestination,
  listAddItems,
  MAX_SHOWN_BODY,
  maskHeaders,
  secretValues,
  shownBody,
  testCall,
  testMember,
  untestable,
} from './event-tester';

const hook: DestinationConfig = {
  id: 'dst_1',
  spaceId: 'spa_1',
  name: 'Hook',
  type: 'webhook',
  enabled: true,
  settings: { url: 'https://h.example/x', headers: { authorization: 'Bearer abcdef', 'x-team': 'growth' } },
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
};

describe('event tester (pure parts)', () => {
  it("builds the track this destination receives, with the tester's properties and traits", () => {
    const call = testCall(
      hook,
      { type: 'track', properties: { plan: 'pro' }, traits: { email: 'a@b.co' }, computationKey: 'vip' },
      0,
      'u1',
    );
    expect(call).toEqual({
      type: 'track',
      event: 'Audience Entered',
      userId: 'u1',
      messageId: expect.stringMatching(/^personas_/),
      timestamp: '1970-01-01T00:00:00.000Z',
      properties: { audience_key: 'vip', vip: true, plan: 'pro' },
      context: {
        personas: {
          computation_class: 'audience',
          computation_id: 'event_tester',
          computation_key: 'vip',
          namespace: 'spa_1',
          space_id: 'spa_1',
        },
        traits: { email: 'a@b.co' },
      },
      integrations: { All: false, Hook: true },
    });
  });

  it('masks headers named like a secret or holding a secret setting', () => {
    const secrets = secretValues(hook.settings);
    expect([...secrets].sort()).toEqual(['Bearer abcdef', 'growth']);
    expect(maskHeaders({ authorization: 'Bearer abcdef', 'x-team': 'growth', 'x-api-key': 'k', accept: 'json' }, secrets)).toEqual({
      authorization: '********',
      'x-team': '********',
      'x-api-key': '********',
      accept: 'json',
    });
  });

  it('shows JSON bodies parsed, text as text, and cuts at 64 KB', () => {
    expect(shownBody('{"a":1}')).toEqual({ body: { a: 1 } });
    expect(shownBody('plain')).toEqual({ body: 'plain' });
    expect(shownBody('')).toEqual({ body: null });
    const big = shownBody('x'.repeat(MAX_SHOWN_BODY + 10));
    expect(big).toEqual({ body: 'x'.repeat(MAX_SHOWN_BODY), truncated: true });
  });

  it('refuses webhooks and list webhooks without a url; Facebook settings are left to its adapter', () => {
    expect(untestable(hook)).toBeNull();
    expect(untestable({ ...hook, type: 'list-webhook' })).toBeNull();
    expect(untestable({ ...hook, type: 'list-webhook', settings: {} })).toMatch(/no settings.url/);
    expect(untestable({ ...hook, settings: {} })).toMatch(/no settings.url/);
    expect(untestable({ ...hook, type: 'actions', settings: {} })).toBeNull();
    expect(untestable({ ...hook, type: 'facebook-custom-audiences', settings: {} })).toBeNull();
    expect([hook.type, 'list-webhook', 'facebook-custom-audiences', 'actions'].map((type) => isListDestination({ type }))).toEqual([
      false,
      true,
      true,
      false,
    ]);
  });

  it("makes the test user a list member from userId and traits named like identifier types, kept and normalised as the adapter's", () => {
    const member = testMember('u1', { email: ' Ann@Example.COM ', phone: '+1 (555) 010-0200', plan: 'pro', age: 40 });
    expect(member).toEqual({
      profileId: 'test_u1',
      member: true,
      ids: [
        { type: 'user_id', id: 'u1' },
        { type: 'email', id: ' Ann@Example.COM ' },
        { type: 'phone', id: '+1 (555) 010-0200' },
        { type: 'plan', id: 'pro' },
      ],
    });
    // Facebook: email and phone (its identifier types), hashed after normalisation; user_id and plan are not its types.
    // The dispatcher's own adapters (normalising sends nothing: no delivery needed).
    const adapters = listAdapters({ delivery: {} as never });
    const facebook = adapters.get('facebook-custom-audiences')!;
    expect(listAddItems(facebook, member)).toEqual({
      items: [
        { ok: true, type: 'email', value: sha256Hex('ann@example.com') },
        { ok: true, type: 'phone', value: sha256Hex('15550100200') },
      ],
      failed: [],
    });
    expect(listAddItems(facebook, testMember('u1', { email: 'not-an-email' }))).toEqual({
      items: [],
      failed: [{ type: 'email', reason: 'invalid email "not-an-email"' }],
    });
    // The list webhook matches on user_id, sent as it is.
    const listHook = adapters.get('list-webhook')!;
    expect(listAddItems(listHook, member)).toEqual({ items: [{ ok: true, type: 'user_id', value: 'u1' }], failed: [] });
  });
});
