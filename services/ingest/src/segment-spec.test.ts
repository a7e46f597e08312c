import type { RawEvent } from '@engage/schemas';
import { LIMITS, normaliseRequest, parseIsoTimestamp, ROUTES, writeKeyFrom, type Envelope } from './segment-spec';

const RECEIVED = Date.parse('2026-01-02T03:04:05.000Z');

function envelope(): Envelope {
  let n = 0;
  return { sourceId: 'src_1', spaceId: 'spa_1', receivedAt: RECEIVED, newMessageId: () => `gen-${++n}` };
}

/** A RawEvent with every field at its "absent" value, so tests state only what differs. */
function raw(over: Partial<RawEvent>): RawEvent {
  return {
    message_id: 'gen-1',
    type: 'track',
    space_id: 'spa_1',
    source_id: 'src_1',
    user_id: null,
    anonymous_id: null,
    group_id: null,
    previous_id: null,
    event: null,
    name: null,
    timestamp: RECEIVED,
    sent_at: null,
    received_at: RECEIVED,
    properties_json: '{}',
    traits_json: '{}',
    context_json: '{}',
    integrations_json: '{}',
    external_ids: [],
    ...over,
  };
}

describe('routes', () => {
  it('maps every call type and its one-letter alias, and batch', () => {
    expect(ROUTES).toEqual({
      '/v1/identify': 'identify',
      '/v1/i': 'identify',
      '/v1/track': 'track',
      '/v1/t': 'track',
      '/v1/page': 'page',
      '/v1/p': 'page',
      '/v1/screen': 'screen',
      '/v1/s': 'screen',
      '/v1/group': 'group',
      '/v1/g': 'group',
      '/v1/alias': 'alias',
      '/v1/a': 'alias',
      '/v1/batch': 'batch',
      '/v1/b': 'batch',
      '/v1/import': 'batch',
    });
  });
});

describe('normaliseRequest: single calls', () => {
  it('turns a full track call into a RawEvent keyed by userId', () => {
    const body = {
      userId: 'u1',
      anonymousId: 'a1',
      event: 'Order Completed',
      messageId: 'm-1',
      timestamp: '2026-01-01T10:00:00.123+02:00',
      sentAt: '2026-01-01T08:00:01Z',
      properties: { total: 12.5 },
      context: { ip: '1.2.3.4', externalIds: [{ id: 'c-9', type: 'crm_id', collection: 'users', encoding: 'none' }] },
      integrations: { All: true },
      writeKey: 'ignored',
    };
    expect(normaliseRequest('track', body, 300, envelope())).toEqual({
      ok: true,
      events: [
        {
          key: 'u1',
          record: raw({
            message_id: 'm-1',
            type: 'track',
            user_id: 'u1',
            anonymous_id: 'a1',
            event: 'Order Completed',
            timestamp: Date.parse('2026-01-01T08:00:00.123Z'),
            sent_at: Date.parse('2026-01-01T08:00:01Z'),
            properties_json: '{"total":12.5}',
            context_json: '{"ip":"1.2.3.4","externalIds":[{"id":"c-9","type":"crm_id","collection":"users","encoding":"none"}]}',
            integrations_json: '{"All":true}',
            external_ids: [{ type: 'crm_id', id: 'c-9', collection: 'users', encoding: 'none' }],
          }),
        },
      ],
    });
  });

  it('generates messageId and timestamp, keys by anonymousId without a userId, stringifies numeric ids', () => {
    expect(normaliseRequest('identify', { anonymousId: 42, traits: { email: 'a@b.co' } }, 50, envelope())).toEqual({
      ok: true,
      events: [{ key: '42', record: raw({ type: 'identify', anonymous_id: '42', traits_json: '{"email":"a@b.co"}' }) }],
    });
  });

  it('corrects a device originalTimestamp for clock skew by sentAt, as Segment does; timestamp wins when given', () => {
    const env = envelope();
    const at = (body: Record<string, unknown>) => {
      const r = normaliseRequest('track', { userId: 'u', event: 'E', ...body }, 10, env);
      return r.ok ? new Date(r.events[0]!.record.timestamp).toISOString() : r.message;
    };
    // The device clock is 1 h behind: it sent 2 s after the event.
    expect([
      at({ originalTimestamp: '2026-01-02T02:04:03Z', sentAt: '2026-01-02T02:04:05Z' }),
      at({ originalTimestamp: '2026-01-02T02:04:03Z' }),
      at({ timestamp: '2026-01-01T00:00:00Z', originalTimestamp: '2026-01-02T02:04:03Z', sentAt: '2026-01-02T02:04:05Z' }),
      at({ originalTimestamp: 'soon' }),
    ]).toEqual([
      '2026-01-02T03:04:03.000Z',
      '2026-01-02T02:04:03.000Z',
      '2026-01-01T00:00:00.000Z',
      'originalTimestamp is not an ISO 8601 date-time: "soon"',
    ]);
  });

  it('keeps the fields of each call type and drops those that do not belong', () => {
    const env = envelope();
    const result = [
      normaliseRequest('page', { userId: 'u', name: 'Home', event: 'x', properties: { path: '/' } }, 10, env),
      normaliseRequest('screen', { userId: 'u', name: 'Settings', category: 'Account' }, 10, env),
      normaliseRequest('group', { userId: 'u', groupId: 'g1', traits: { plan: 'pro' } }, 10, env),
      normaliseRequest('alias', { userId: 'u', previousId: 'old' }, 10, env),
      normaliseRequest('track', { userId: 'u', event: 'E', name: 'dropped' }, 10, env),
    ];
    expect(result).toEqual([
      {
        ok: true,
        events: [
          { key: 'u', record: raw({ message_id: 'gen-1', type: 'page', user_id: 'u', name: 'Home', properties_json: '{"path":"/"}' }) },
        ],
      },
      {
        ok: true,
        events: [
          {
            key: 'u',
            record: raw({ message_id: 'gen-2', type: 'screen', user_id: 'u', name: 'Settings', properties_json: '{"category":"Account"}' }),
          },
        ],
      },
      {
        ok: true,
        events: [
          { key: 'u', record: raw({ message_id: 'gen-3', type: 'group', user_id: 'u', group_id: 'g1', traits_json: '{"plan":"pro"}' }) },
        ],
      },
      { ok: true, events: [{ key: 'u', record: raw({ message_id: 'gen-4', type: 'alias', user_id: 'u', previous_id: 'old' }) }] },
      { ok: true, events: [{ key: 'u', record: raw({ message_id: 'gen-5', type: 'track', user_id: 'u', event: 'E' }) }] },
    ]);
  });

  it('rejects missing identities and required fields per call type, naming the field', () => {
    const env = envelope();
    const cases: Array<[Parameters<typeof normaliseRequest>[0], unknown]> = [
      ['identify', { traits: {} }],
      ['identify', { userId: '  ', anonymousId: '' }],
      ['track', { userId: 'u' }],
      ['track', { userId: 'u', event: '' }],
      ['group', { userId: 'u' }],
      ['alias', { userId: 'u' }],
      ['identify', { userId: { id: 1 } }],
      ['track', { userId: 'u', event: 'E', properties: [1] }],
      ['track', { userId: 'u', event: 'E', context: 'x' }],
      ['track', { userId: 'u', event: 'E', timestamp: 'yesterday' }],
      ['track', { userId: 'u', event: 'E', timestamp: 1700000000 }],
      ['track', { userId: 'u', event: 'E', timestamp: '2026-02-30T00:00:00Z' }],
      ['track', [{ userId: 'u' }]],
    ];
    expect(cases.map(([route, body]) => normaliseRequest(route, body, 10, env))).toEqual([
      { ok: false, message: 'userId or anonymousId is required' },
      { ok: false, message: 'userId or anonymousId is required' },
      { ok: false, message: 'event is required for track calls' },
      { ok: false, message: 'event is required for track calls' },
      { ok: false, message: 'groupId is required for group calls' },
      { ok: false, message: 'previousId is required for alias calls' },
      { ok: false, message: 'userId must be a string, got object' },
      { ok: false, message: 'properties must be an object, got array' },
      { ok: false, message: 'context must be an object, got string' },
      { ok: false, message: 'timestamp is not an ISO 8601 date-time: "yesterday"' },
      { ok: false, message: 'timestamp must be an ISO 8601 string, got number' },
      { ok: false, message: 'timestamp is not a valid date-time: "2026-02-30T00:00:00Z"' },
      { ok: false, message: 'body must be a JSON object, got array' },
    ]);
  });

  it('validates context.externalIds', () => {
    const env = envelope();
    const call = (externalIds: unknown) => normaliseRequest('identify', { userId: 'u', context: { externalIds } }, 10, env);
    expect([
      call('x'),
      call([{ type: 'email' }]),
      call([{ id: 'a@b.co' }]),
      call([{ id: 'a@b.co', type: 'email', collection: 'people' }]),
      call([{ id: 'a@b.co', type: 'email', encoding: 7 }]),
      call(['a@b.co']),
    ]).toEqual([
      { ok: false, message: 'context.externalIds must be an array, got string' },
      { ok: false, message: 'context.externalIds[0].id is required' },
      { ok: false, message: 'context.externalIds[0].type is required' },
      { ok: false, message: 'context.externalIds[0].collection must be one of users, accounts, got "people"' },
      { ok: false, message: 'context.externalIds[0].encoding must be a string, got number' },
      { ok: false, message: 'context.externalIds[0] must be an object, got string' },
    ]);
  });

  it('holds a single call to 32 KB', () => {
    expect(normaliseRequest('track', { userId: 'u', event: 'E' }, LIMITS.maxEventBytes + 1, envelope())).toEqual({
      ok: false,
      message: 'event is 32769 bytes, over the 32 KB (32768 bytes) per-event limit',
    });
  });
});

describe('normaliseRequest: batch', () => {
  it('merges batch-level context and integrations into each item (the item wins) and applies batch sentAt', () => {
    const body = {
      writeKey: 'k',
      sentAt: '2026-01-02T03:04:00Z',
      context: { library: { name: 'lib' }, ip: '9.9.9.9' },
      integrations: { All: false, Webhook: true },
      batch: [
        { type: 'identify', userId: 'u1', traits: { a: 1 }, messageId: 'm1' },
        {
          type: 'track',
          anonymousId: 'a2',
          event: 'E',
          context: { ip: '1.1.1.1' },
          integrations: { Webhook: false },
          messageId: 'm2',
          sentAt: '2026-01-02T03:04:01Z',
        },
      ],
    };
    expect(normaliseRequest('batch', body, 400, envelope())).toEqual({
      ok: true,
      events: [
        {
          key: 'u1',
          record: raw({
            message_id: 'm1',
            type: 'identify',
            user_id: 'u1',
            traits_json: '{"a":1}',
            sent_at: Date.parse('2026-01-02T03:04:00Z'),
            context_json: '{"library":{"name":"lib"},"ip":"9.9.9.9"}',
            integrations_json: '{"All":false,"Webhook":true}',
          }),
        },
        {
          key: 'a2',
          record: raw({
            message_id: 'm2',
            type: 'track',
            anonymous_id: 'a2',
            event: 'E',
            sent_at: Date.parse('2026-01-02T03:04:01Z'),
            context_json: '{"library":{"name":"lib"},"ip":"1.1.1.1"}',
            integrations_json: '{"All":false,"Webhook":false}',
          }),
        },
      ],
    });
  });

  it('rejects the whole batch for one bad item, naming its index and field', () => {
    const env = envelope();
    const batch = (items: unknown[]) => normaliseRequest('batch', { batch: items }, 100, env);
    expect([
      batch([
        { type: 'track', userId: 'u', event: 'E' },
        { type: 'track', userId: 'u' },
      ]),
      batch([{ type: 'click', userId: 'u' }]),
      batch([{ userId: 'u' }]),
      batch([7]),
      normaliseRequest('batch', { batch: {} }, 100, env),
      normaliseRequest('batch', {}, 100, env),
      normaliseRequest('batch', { batch: [], sentAt: 'now' }, 100, env),
      batch([{ type: 'group', userId: 'u', context: { externalIds: [{ id: 1 }] } }]),
    ]).toEqual([
      { ok: false, message: 'batch[1].event is required for track calls' },
      { ok: false, message: 'batch[0].type must be one of identify, track, page, screen, group, alias, got "click"' },
      { ok: false, message: 'batch[0].type must be one of identify, track, page, screen, group, alias, got null' },
      { ok: false, message: 'batch[0] must be an object, got number' },
      { ok: false, message: 'batch must be an array, got object' },
      { ok: false, message: 'batch must be an array, got undefined' },
      { ok: false, message: 'sentAt is not an ISO 8601 date-time: "now"' },
      { ok: false, message: 'batch[0].groupId is required for group calls' },
    ]);
  });

  it('holds a batch to 500 KB, 2500 events, and each item to 32 KB', () => {
    const env = envelope();
    const items = (n: number) => Array.from({ length: n }, () => ({ type: 'track', userId: 'u', event: 'E' }));
    const big = { type: 'track', userId: 'u', event: 'E', properties: { blob: 'x'.repeat(LIMITS.maxEventBytes) } };
    // As stored: properties JSON, context/traits/integrations '{}', userId, event, generated messageId.
    const bigBytes = Buffer.byteLength(JSON.stringify(big.properties)) + 3 * 2 + 'u'.length + 'E'.length + 'gen-2'.length;
    expect([
      normaliseRequest('batch', { batch: items(1) }, LIMITS.maxBatchBytes + 1, env),
      normaliseRequest('batch', { batch: items(2501) }, 100_000, env),
      normaliseRequest('batch', { batch: [items(1)[0], big] }, 40_000, env),
    ]).toEqual([
      { ok: false, message: 'batch is 512001 bytes, over the 500 KB (512000 bytes) per-batch limit' },
      { ok: false, message: 'batch has 2501 events, over the 2500 events per-batch limit' },
      { ok: false, message: `batch[1]: event is ${bigBytes} bytes, over the 32 KB (32768 bytes) per-event limit` },
    ]);
    const ok = normaliseRequest('batch', { batch: items(2500) }, 100_000, env);
    expect(ok.ok && ok.events.length).toBe(2500);
  });
});

describe('parseIsoTimestamp', () => {
  it('rejects days a month does not have, in the canonical form and the others', () => {
    const attempt = (s: string) => {
      try {
        return new Date(parseIsoTimestamp(s, 'timestamp')).toISOString();
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(
      [
        '2024-02-29T12:00:00.000Z',
        '2026-02-29T12:00:00.000Z',
        '2026-04-31T00:00:00.000Z',
        '2026-13-01T00:00:00.000Z',
        '2026-04-31',
        '1900-02-29T00:00:00Z',
      ].map(attempt),
    ).toEqual([
      '2024-02-29T12:00:00.000Z',
      'timestamp is not a valid date-time: "2026-02-29T12:00:00.000Z"',
      'timestamp is not a valid date-time: "2026-04-31T00:00:00.000Z"',
      'timestamp is not a valid date-time: "2026-13-01T00:00:00.000Z"',
      'timestamp is not a valid date-time: "2026-04-31"',
      'timestamp is not a valid date-time: "1900-02-29T00:00:00Z"',
    ]);
  });

  it('reads the ISO 8601 forms senders use, zone-less as UTC', () => {
    expect(
      [
        '2026-01-01',
        '2026-01-01T10:00Z',
        '2026-01-01T10:00:00',
        '2026-01-01T10:00:00.5+0100',
        '2026-01-01 10:00:00+01',
        '2024-02-29T00:00:00Z',
      ].map((s) => new Date(parseIsoTimestamp(s, 'timestamp')).toISOString()),
    ).toEqual([
      '2026-01-01T00:00:00.000Z',
      '2026-01-01T10:00:00.000Z',
      '2026-01-01T10:00:00.000Z',
      '2026-01-01T09:00:00.500Z',
      '2026-01-01T09:00:00.000Z',
      '2024-02-29T00:00:00.000Z',
    ]);
  });
});

describe('writeKeyFrom', () => {
  const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
  it('reads Basic auth (password ignored), else the body, else nothing', () => {
    expect([
      writeKeyFrom(basic('wk1:'), { writeKey: 'body-key' }),
      writeKeyFrom(basic('wk2'), undefined),
      writeKeyFrom(basic('wk3:secret'), undefined),
      writeKeyFrom(undefined, { writeKey: 'body-key' }),
      writeKeyFrom('Bearer x', { writeKey: 'body-key' }),
      writeKeyFrom(basic(':'), {}),
      writeKeyFrom(undefined, { writeKey: 5 }),
    ]).toEqual(['wk1', 'wk2', 'wk3', 'body-key', 'body-key', null, null]);
  });
});
