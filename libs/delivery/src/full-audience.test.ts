import { fullAudienceCalls } from './full-audience';

describe('fullAudienceCalls', () => {
  it('one Audience Entered call per member with an email (its latest), the others listed', () => {
    const out = fullAudienceCalls(
      [
        { profileId: 'p1', identifiers: { user_id: ['u1'], email: ['old@x.com', 'new@x.com'] } },
        { profileId: 'p2', identifiers: { anonymous_id: ['a2'] } },
      ],
      { id: 'aud_1', key: 'vip', spaceId: 'spa_1' },
      { externalAudienceId: 'crm1', audienceSettings: { region: 'US' } },
      'sync1',
      '2026-12-04T00:00:00.000Z',
    );
    expect(out).toEqual({
      calls: [
        {
          type: 'track',
          event: 'Audience Entered',
          userId: 'u1',
          messageId: 'personas_sync1_p1',
          timestamp: '2026-12-04T00:00:00.000Z',
          properties: { audience_key: 'vip', vip: true },
          context: {
            traits: { email: 'new@x.com' },
            personas: {
              computation_class: 'audience',
              computation_id: 'aud_1',
              computation_key: 'vip',
              space_id: 'spa_1',
              external_audience_id: 'crm1',
              audience_settings: { region: 'US' },
            },
          },
          integrations: { All: false },
        },
      ],
      withoutEmail: ['p2'],
    });
  });
});
