// Journey send steps as destinations receive them (CONTRACT.md section 9):
// the calls of an audience entry under the step's key, the journey's id, and
// computation_class "audience"; never an exit.
import type { ActionMapping } from '@engage/config-store';
import type { ComputationChange } from '@engage/schemas';
import { buildEventCalls, buildGroupCall, isDeliverable, matchingMappings, personasOf, planActionInvocations } from './index';

const KEY = 'j_o_first_purchase__opened_email_ab12cd';

const step: ComputationChange = {
  change_id: 'jchg_1',
  space_id: 'spa_1',
  computation_id: 'jou_1',
  computation_key: KEY,
  computation_class: 'journey_step',
  level: 'user',
  profile_id: 'pro_1',
  value: true,
  previous: null,
  value_is_json: false,
  reason: 'realtime',
  occurred_at: 0,
  emitted_at: Date.parse('2026-11-22T10:00:00Z'),
  external_ids: [
    { type: 'user_id', id: 'u123' },
    { type: 'email', id: 'a@b.co' },
  ],
  user_id: 'u123',
  anonymous_id: null,
  traits_json: '{"email":"a@b.co"}',
};
const destination = { id: 'dst_1', name: 'My Webhook' };

describe('journey send step calls', () => {
  it('are exactly an identify with traits {<key>: true} and a track Audience Entered with properties {audience_key, <key>: true}', () => {
    const calls = buildEventCalls(step, destination, { identify: true, track: true });
    // Literal messageIds: deterministic per (change, destination, call, identifier), so a redelivery is deduped downstream.
    expect(JSON.parse(JSON.stringify(calls))).toEqual([
      {
        type: 'identify',
        userId: 'u123',
        timestamp: '2026-11-22T10:00:00.000Z',
        integrations: { All: false, 'My Webhook': true },
        messageId: 'personas_e710484c8027291b74faeed530eb1189',
        traits: { [KEY]: true, email: 'a@b.co' },
        context: {
          personas: { computation_class: 'audience', computation_id: 'jou_1', computation_key: KEY, namespace: 'spa_1', space_id: 'spa_1' },
        },
      },
      {
        type: 'track',
        userId: 'u123',
        timestamp: '2026-11-22T10:00:00.000Z',
        integrations: { All: false, 'My Webhook': true },
        event: 'Audience Entered',
        messageId: 'personas_b610e43da001835c4d8c89cdf171502c',
        properties: { audience_key: KEY, [KEY]: true },
        context: {
          personas: { computation_class: 'audience', computation_id: 'jou_1', computation_key: KEY, namespace: 'spa_1', space_id: 'spa_1' },
          traits: { email: 'a@b.co' },
        },
      },
    ]);
  });

  it('are the calls of an audience entry of the same key, but for computation_id (the journey) and the change', () => {
    const audience = { ...step, computation_class: 'audience' as const, previous: false };
    expect(buildEventCalls(step, destination, { identify: true, track: true })).toEqual(
      buildEventCalls(audience, destination, { identify: true, track: true }),
    );
    expect(personasOf(step)).toEqual({ ...personasOf(audience), computation_id: 'jou_1' });
  });

  it('follow the connection settings: only identify, only track, or nothing', () => {
    expect(buildEventCalls(step, destination, { identify: true, track: false }).map((c) => c.type)).toEqual(['identify']);
    expect(buildEventCalls(step, destination, { identify: false, track: true }).map((c) => [c.type, c.event])).toEqual([
      ['track', 'Audience Entered'],
    ]);
    expect(buildEventCalls(step, destination, { identify: false, track: false })).toEqual([]);
  });

  it('never exit: a journey step change that is not an entry gives no call at all', () => {
    for (const value of [false, null, 'x', 1]) {
      const odd = { ...step, value, previous: true };
      expect(isDeliverable(odd)).toBe(false);
      expect(buildEventCalls(odd, destination, { identify: true, track: true })).toEqual([]);
      expect(buildGroupCall({ ...odd, external_ids: [{ type: 'group_id', id: 'g' }] }, destination)).toBeNull();
    }
    expect(isDeliverable(step)).toBe(true);
    // Audiences still exit.
    expect(isDeliverable({ computation_class: 'audience', value: false })).toBe(true);
  });

  it('run an Actions mapping subscribed to track "Audience Entered", with the same event the webhook gets', () => {
    const mappings: ActionMapping[] = [
      { id: 'm_track', actionId: 'trackEvent', subscribe: 'type = "track" and event = "Audience Entered"', mapping: {}, enabled: true },
      { id: 'm_exit', actionId: 'trackEvent', subscribe: 'type = "track" and event = "Audience Exited"', mapping: {}, enabled: true },
      { id: 'm_ident', actionId: 'updateUserProfile', subscribe: 'type = "identify"', mapping: {}, enabled: true },
    ];
    const calls = buildEventCalls(step, destination, { identify: true, track: true });
    expect(planActionInvocations(calls, mappings)).toEqual([
      {
        mappingId: 'm_ident',
        actionId: 'updateUserProfile',
        event: { ...calls[0], receivedAt: '2026-11-22T10:00:00.000Z' },
        messageId: `${calls[0]!.messageId}.m_ident`,
      },
      {
        mappingId: 'm_track',
        actionId: 'trackEvent',
        event: { ...calls[1], receivedAt: '2026-11-22T10:00:00.000Z' },
        messageId: `${calls[1]!.messageId}.m_track`,
      },
    ]);
    // The destinations table counts only the entry mapping for a journey step (it never exits).
    expect(matchingMappings(mappings, { identify: true, track: true }, { key: KEY, class: 'journey_step' })).toEqual({
      matching: 2,
      enabled: 2,
      disabled: 0,
    });
    expect(matchingMappings(mappings, { identify: true, track: true }, { key: KEY, class: 'audience' })).toEqual({
      matching: 3,
      enabled: 3,
      disabled: 0,
    });
  });
});
