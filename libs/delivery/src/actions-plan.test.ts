import type { ActionMapping } from '@engage/config-store';
import {
  buildEventCalls,
  classifyActionOutcome,
  fqlIssue,
  matchingMappings,
  planActionInvocations,
  withExternalAudience,
  type SegmentCall,
} from './index';
import type { ComputationChange } from '@engage/schemas';

const change: ComputationChange = {
  change_id: 'chg_1',
  space_id: 'spa_1',
  computation_id: 'aud_1',
  computation_key: 'vip',
  computation_class: 'audience',
  level: 'user',
  profile_id: 'p1',
  value: true,
  previous: false,
  value_is_json: false,
  reason: 'realtime',
  occurred_at: 0,
  emitted_at: Date.parse('2026-11-22T10:00:00Z'),
  external_ids: [{ type: 'user_id', id: 'u1' }],
  user_id: 'u1',
  anonymous_id: null,
  traits_json: '{}',
};

const mapping = (id: string, subscribe: string, enabled = true): ActionMapping => ({
  id,
  actionId: `act_${id}`,
  subscribe,
  mapping: {},
  enabled,
});

describe('which mappings a call runs (FQL subscriptions)', () => {
  const calls: SegmentCall[] = buildEventCalls(change, { id: 'dst_1', name: 'Braze' }, { identify: true, track: true });
  const mappings = [
    mapping('identify', 'type = "identify"'),
    mapping('entered', 'type = "track" and event = "Audience Entered"'),
    mapping('exited', 'event = "Audience Exited"'),
    mapping('off', 'type = "identify"', false),
    mapping('vip', 'properties.vip = true'),
  ];

  it('runs each enabled matching mapping once per call, with the event a definition expects and a messageId per mapping', () => {
    const planned = planActionInvocations(calls, mappings);
    expect(planned.map((p) => [p.mappingId, p.actionId, p.event.type, p.messageId])).toEqual([
      ['identify', 'act_identify', 'identify', `${calls[0]!.messageId}.identify`],
      ['entered', 'act_entered', 'track', `${calls[1]!.messageId}.entered`],
      ['vip', 'act_vip', 'track', `${calls[1]!.messageId}.vip`],
    ]);
    // The call as CONTRACT.md section 5 has it, plus receivedAt (Segment's pipeline sets it; Braze's track time maps from it).
    expect(planned[0]!.event).toEqual({ ...calls[0], receivedAt: '2026-11-22T10:00:00.000Z' });
  });

  it("counts a connection's matching mappings as the destinations table shows them; null without mappings", () => {
    const computation = { key: 'vip', class: 'audience' as const };
    expect(matchingMappings(mappings, { identify: true, track: false }, computation)).toEqual({ matching: 2, enabled: 1, disabled: 1 });
    expect(matchingMappings(mappings, { identify: false, track: true }, computation)).toEqual({ matching: 3, enabled: 3, disabled: 0 });
    expect(matchingMappings(mappings, { identify: false, track: false }, computation)).toEqual({ matching: 0, enabled: 0, disabled: 0 });
    expect(matchingMappings(undefined, { identify: true, track: true }, computation)).toBeNull();
  });

  it("puts an audience destination's external audience id in context.personas, and nothing without one", () => {
    const [call] = calls;
    expect(withExternalAudience([call!], '1042')).toEqual([
      { ...call, context: { ...call!.context, personas: { ...call!.context.personas, external_audience_id: '1042' } } },
    ]);
    expect(withExternalAudience([call!], undefined)).toEqual([call]);
  });

  it("puts the connection's audience settings there too, as context.personas.audience_settings", () => {
    const [call] = calls;
    const personas = { ...call!.context.personas, external_audience_id: '7', audience_settings: { advertiserId: 'adv-1' } };
    expect(withExternalAudience([call!], '7', { advertiserId: 'adv-1' })).toEqual([{ ...call, context: { ...call!.context, personas } }]);
  });

  it('names FQL it cannot read', () => {
    expect(fqlIssue('type = "identify"')).toBeNull();
    expect(fqlIssue('')).toBe('must be a non-empty FQL expression');
    expect(fqlIssue('type = "identify" and (')).toMatch(/^is not valid FQL: /);
  });
});

describe("an action's outcome for the retry policy", () => {
  const now = Date.parse('2026-11-22T10:00:00Z');
  it('retries network errors, RetryableError, 408, 429 (with its Retry-After) and 5xx but 501', () => {
    expect(classifyActionOutcome({ ok: false, network: true, message: 'connect ECONNREFUSED' }, now)).toEqual({
      kind: 'retry',
      reason: 'network error: connect ECONNREFUSED',
    });
    expect(classifyActionOutcome({ ok: false, status: 500, code: 'RETRYABLE_ERROR', message: 'try later' }, now)).toEqual({
      kind: 'retry',
      reason: 'retryable error: try later',
    });
    expect(classifyActionOutcome({ ok: false, status: 429, message: 'slow down', retryAfter: '7' }, now)).toEqual({
      kind: 'retry',
      reason: 'HTTP 429: slow down',
      retryAfterMs: 7000,
    });
    expect(classifyActionOutcome({ ok: false, status: 408, message: 'timeout' }, now)).toMatchObject({ kind: 'retry' });
    expect(classifyActionOutcome({ ok: false, status: 503, message: '' }, now)).toEqual({ kind: 'retry', reason: 'HTTP 503' });
    expect(classifyActionOutcome({ ok: false, status: 501, message: 'no' }, now)).toEqual({ kind: 'fail', reason: 'HTTP 501: no' });
  });

  it("retries what the vendor meant as a rate limit whatever its status (Salesforce's 403 REQUEST_LIMIT_EXCEEDED), not flagging credentials", () => {
    expect(classifyActionOutcome({ ok: false, status: 403, rateLimited: true, message: 'TotalRequests Limit exceeded.' }, now)).toEqual({
      kind: 'retry',
      reason: 'HTTP 403 (rate limited): TotalRequests Limit exceeded.',
      retryAfterMs: undefined,
    });
    expect(classifyActionOutcome({ ok: false, status: 200, rateLimited: true, message: '', retryAfter: '5' }, now)).toEqual({
      kind: 'retry',
      reason: 'HTTP 200 (rate limited)',
      retryAfterMs: 5000,
    });
    // A definition's RetryableError that the vendor meant as a rate limit (Marketo Static Lists' 606): its Retry-After counts.
    expect(
      classifyActionOutcome(
        { ok: false, status: 429, code: 'RETRYABLE_ERROR', rateLimited: true, message: 'Marketo 606', retryAfter: '3' },
        now,
      ),
    ).toEqual({ kind: 'retry', reason: 'HTTP 429 (rate limited): Marketo 606', retryAfterMs: 3000 });
  });

  it('fails at once on 401/403 (credentials), other 4xx and validation errors, with the message', () => {
    expect(classifyActionOutcome({ ok: false, status: 401, message: 'Invalid API key' }, now)).toEqual({
      kind: 'fail',
      reason: 'HTTP 401 (credentials refused): Invalid API key',
      credentials: true,
    });
    expect(classifyActionOutcome({ ok: false, status: 403, message: '' }, now)).toMatchObject({ kind: 'fail', credentials: true });
    expect(classifyActionOutcome({ ok: false, status: 400, code: 'PAYLOAD_VALIDATION_FAILED', message: "missing 'email'" }, now)).toEqual({
      kind: 'fail',
      reason: "HTTP 400: missing 'email'",
    });
    expect(classifyActionOutcome({ ok: false, message: 'no such action' }, now)).toEqual({
      kind: 'fail',
      reason: 'action failed: no such action',
    });
    expect(classifyActionOutcome({ ok: true }, now)).toEqual({ kind: 'delivered' });
  });
});
