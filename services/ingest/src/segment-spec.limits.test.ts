// The per-call bounds of limits.ts as normaliseRequest applies them: each one
// at the limit passes, one past it is a 400 message naming the field and limit.
import { LIMITS, nestingExceeds } from './limits';
import { normaliseRequest, type Envelope } from './segment-spec';

const env = (): Envelope => ({ sourceId: 'src_1', spaceId: 'spa_1', receivedAt: 0, newMessageId: () => 'gen-1' });
const messageOf = (route: 'identify' | 'track' | 'batch', body: Record<string, unknown>) => {
  const r = normaliseRequest(route, body, JSON.stringify(body).length, env());
  return r.ok ? 'ok' : r.message;
};
const traitsOf = (n: number, value: unknown = 1) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, value]));

describe('per-call limits', () => {
  it('counts the top-level keys of traits and of context.traits, each against 200', () => {
    expect(messageOf('identify', { userId: 'u', traits: traitsOf(200), context: { traits: traitsOf(200) } })).toBe('ok');
    expect(messageOf('identify', { userId: 'u', traits: traitsOf(201) })).toBe('traits has 201 keys, over the 200 traits per-call limit');
    expect(messageOf('track', { userId: 'u', event: 'E', context: { traits: traitsOf(201) } })).toBe(
      'context.traits has 201 keys, over the 200 traits per-call limit',
    );
  });

  it('holds one trait value to 8 KB of JSON', () => {
    // JSON of a string: its text and two quotes.
    const atLimit = 'x'.repeat(LIMITS.maxTraitValueBytes - 2);
    expect(messageOf('identify', { userId: 'u', traits: { bio: atLimit, n: 1 } })).toBe('ok');
    expect(messageOf('identify', { userId: 'u', traits: { n: 1, bio: atLimit + 'é' } })).toBe(
      'traits.bio is 8194 bytes of JSON, over the 8 KB (8192 bytes) per-trait-value limit',
    );
    expect(messageOf('identify', { userId: 'u', context: { traits: { blob: { list: [atLimit] } } } })).toBe(
      'context.traits.blob is 8203 bytes of JSON, over the 8 KB (8192 bytes) per-trait-value limit',
    );
  });

  it('holds context.externalIds to 25 entries', () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `x${i}`, type: 'crm_id' }));
    expect(messageOf('track', { userId: 'u', event: 'E', context: { externalIds: ids(25) } })).toBe('ok');
    expect(messageOf('track', { userId: 'u', event: 'E', context: { externalIds: ids(26) } })).toBe(
      'context.externalIds has 26 entries, over the 25 external ids per-event limit',
    );
  });

  it('holds every id to 512 characters', () => {
    const long = 'i'.repeat(LIMITS.maxIdLength + 1);
    const ok = 'i'.repeat(LIMITS.maxIdLength);
    expect(messageOf('track', { userId: ok, anonymousId: ok, messageId: ok, event: 'E' })).toBe('ok');
    const over = (field: string) => `${field} is 513 characters, over the 512-character id limit`;
    expect(messageOf('track', { userId: long, event: 'E' })).toBe(over('userId'));
    expect(messageOf('track', { anonymousId: long, event: 'E' })).toBe(over('anonymousId'));
    expect(messageOf('track', { userId: 'u', messageId: long, event: 'E' })).toBe(over('messageId'));
    expect(messageOf('batch', { batch: [{ type: 'group', userId: 'u', groupId: long }] })).toBe(over('batch[0].groupId'));
    expect(messageOf('batch', { batch: [{ type: 'alias', userId: 'u', previousId: long }] })).toBe(over('batch[0].previousId'));
    expect(messageOf('track', { userId: 'u', event: 'E', context: { externalIds: [{ id: long, type: 'crm_id' }] } })).toBe(
      over('context.externalIds[0].id'),
    );
  });

  it('names the batch item, batch-level context included', () => {
    const batch = [
      { type: 'identify', userId: 'u' },
      { type: 'identify', userId: 'u', traits: traitsOf(201) },
    ];
    expect(messageOf('batch', { batch })).toBe('batch[1].traits has 201 keys, over the 200 traits per-call limit');
    expect(messageOf('batch', { batch: [{ type: 'identify', userId: 'u' }], context: { traits: traitsOf(201) } })).toBe(
      'batch[0].context.traits has 201 keys, over the 200 traits per-call limit',
    );
  });

  it('accepts the reported defect event by event (30 traits of 1 KB): what a profile accumulates is bounded downstream', () => {
    expect(messageOf('identify', { userId: 'u', traits: traitsOf(30, 'v'.repeat(1000)) })).toBe('ok');
  });
});

describe('nestingExceeds', () => {
  const bytes = (s: string) => Buffer.from(s);
  it('counts object and array levels outside strings', () => {
    expect(nestingExceeds(bytes('{"a":[{"b":[]}]}'), 4)).toBe(false);
    expect(nestingExceeds(bytes('{"a":[{"b":[]}]}'), 3)).toBe(true);
    expect(nestingExceeds(bytes(JSON.stringify({ s: '[[[{{{"\\\\' })), 1)).toBe(false);
    expect(nestingExceeds(bytes(JSON.stringify({ s: 'é"[[', t: [[]] })), 2)).toBe(true);
  });
});
