import type { DestinationConfig } from '@engage/config-store';
import { MAX_SHOWN_BODY, maskHeaders, secretValues, shownBody, testCall, untestable } from './event-tester';

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

  it('refuses list destinations and webhooks without a url', () => {
    expect(untestable(hook)).toBeNull();
    expect(untestable({ ...hook, type: 'list-webhook' })).toMatch(/list destination/);
    expect(untestable({ ...hook, settings: {} })).toMatch(/no settings.url/);
    expect(untestable({ ...hook, type: 'actions', settings: {} })).toBeNull();
  });
});
