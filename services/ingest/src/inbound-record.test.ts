import { inboundToEvent, recordMessageId, WRITE_KEY_HEADER, type InboundRecord } from './inbound-record';
import { normaliseRequest, type Route } from './segment-spec';
import type { IngestSource } from './source-auth';

const APPENDED = Date.parse('2026-01-02T03:04:05.000Z');
const SOURCES: Record<string, IngestSource> = {
  'wk-1': { id: 'src_1', spaceId: 'spa_1', enabled: true },
  'wk-off': { id: 'src_off', spaceId: 'spa_1', enabled: false },
};
const lookup = { sourceByWriteKey: (k: string) => SOURCES[k] };

const inbound = (
  value: string | Buffer | null,
  headers: InboundRecord['headers'] = { [WRITE_KEY_HEADER]: Buffer.from('wk-1') },
  offset = '7',
) => ({
  topic: 'engage.events.inbound',
  partition: 3,
  offset,
  timestamp: APPENDED,
  value: value === null ? null : Buffer.from(value),
  headers,
});

describe('a record of engage.events.inbound', () => {
  it('becomes the event the same call over HTTP becomes, received at its append time', () => {
    const calls = [
      {
        type: 'identify',
        userId: 'u1',
        messageId: 'm1',
        traits: { email: 'a@b.co' },
        context: { externalIds: [{ id: 'x', type: 'crm' }] },
      },
      {
        type: 'track',
        anonymousId: 'a1',
        messageId: 'm2',
        event: 'Order Completed',
        properties: { total: 3 },
        timestamp: '2026-01-01T00:00:00Z',
      },
      { type: 'page', userId: 'u1', messageId: 'm3', name: 'Home', category: 'Docs' },
      { type: 'group', userId: 'u1', messageId: 'm4', groupId: 'g1', traits: { name: 'Acme' } },
      { type: 'alias', userId: 'u1', messageId: 'm5', previousId: 'a1' },
    ];
    for (const call of calls) {
      const json = JSON.stringify(call);
      const http = normaliseRequest(call.type as Route, call, json.length, {
        sourceId: 'src_1',
        spaceId: 'spa_1',
        receivedAt: APPENDED,
        newMessageId: () => 'unused',
      });
      expect(inboundToEvent(inbound(json), lookup)).toEqual({
        ok: true,
        event: (http as { events: unknown[] }).events[0],
        source: SOURCES['wk-1'],
      });
    }
  });

  it('goes to the DLQ with the reason HTTP would answer, or one naming the header', () => {
    const track = (over: Record<string, unknown> = {}) => JSON.stringify({ type: 'track', userId: 'u1', event: 'E', ...over });
    const reasons = [
      inboundToEvent(inbound(null), lookup),
      inboundToEvent(inbound(Buffer.from([0, 0, 0, 0, 1, 2])), lookup),
      inboundToEvent(inbound(track({ properties: { blob: 'x'.repeat(33_000) } })), lookup),
      inboundToEvent(inbound(track(), {}), lookup),
      inboundToEvent(inbound(track(), { [WRITE_KEY_HEADER]: 'wk-nobody' }), lookup),
      inboundToEvent(inbound(track(), { [WRITE_KEY_HEADER]: 'wk-off' }), lookup),
      inboundToEvent(inbound(track(), { [WRITE_KEY_HEADER]: ['wk-1', 'wk-off'] }), lookup),
      inboundToEvent(inbound('{"type":'), lookup),
      inboundToEvent(inbound(`{"type":"track","userId":"u1","event":"E","properties":${'['.repeat(70)}${']'.repeat(70)}}`), lookup),
      inboundToEvent(inbound('[1]'), lookup),
      inboundToEvent(inbound(track({ type: 'flush' })), lookup),
      inboundToEvent(inbound(track({ userId: undefined })), lookup),
    ];
    expect(reasons).toEqual([
      { ok: false, reason: 'empty record value: send one Segment call as JSON' },
      { ok: false, reason: 'an Avro record (magic byte 0): engage.events.inbound takes Segment calls as JSON text' },
      { ok: false, reason: expect.stringMatching(/^event is 330\d\d bytes, over the 32 KB \(32768 bytes\) per-event limit$/) },
      { ok: false, reason: "missing write key: set the engage-write-key record header to the source's write key" },
      { ok: false, reason: 'invalid write key', unknownWriteKey: true },
      { ok: false, reason: 'source src_off is disabled' },
      { ok: false, reason: '2 different engage-write-key headers: send one' },
      { ok: false, reason: expect.stringMatching(/^invalid JSON body: /) },
      { ok: false, reason: 'JSON body nests objects and arrays deeper than the 64-level nesting limit' },
      { ok: false, reason: 'body must be a JSON object, got array' },
      { ok: false, reason: 'type must be one of identify, track, page, screen, group, alias, got "flush"' },
      { ok: false, reason: 'userId or anonymousId is required' },
    ]);
  });

  it('takes the write key header repeated with one value, as a string or bytes', () => {
    const call = JSON.stringify({ type: 'track', userId: 'u1', event: 'E', messageId: 'm' });
    for (const headers of [{ [WRITE_KEY_HEADER]: 'wk-1' }, { [WRITE_KEY_HEADER]: [Buffer.from('wk-1'), 'wk-1'] }])
      expect(inboundToEvent(inbound(call, headers), lookup)).toMatchObject({ ok: true, source: { id: 'src_1' } });
  });

  it('gets a messageId from its place in the log when it carries none: the same on every read, another per record', () => {
    const call = JSON.stringify({ type: 'track', userId: 'u1', event: 'E' });
    const id = (offset: string) => {
      const r = inboundToEvent(inbound(call, undefined, offset), lookup);
      return r.ok ? r.event.record.message_id : r.reason;
    };
    expect(id('7')).toBe(recordMessageId({ topic: 'engage.events.inbound', partition: 3, offset: '7', timestamp: APPENDED }));
    expect(id('7')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect([id('7') === id('7'), id('7') === id('8')]).toEqual([true, false]);
  });
});
