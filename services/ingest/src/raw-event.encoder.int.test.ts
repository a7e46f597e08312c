// The ingest's synchronous RawEvent encoder against the real registry: every
// record it hands out decodes, through SchemaCodec, to the record it was given,
// even after many more were written behind it into the same slab, and records
// larger than a slab are whole too.
import { SchemaCodec, type RawEvent } from '@engage/schemas';
import { testInfrastructure, uniqueName } from '@engage/testing';
import { rawEventEncoder } from './raw-event.encoder';

function record(i: number, padBytes: number): RawEvent {
  return {
    message_id: `m-${i}`,
    type: 'track',
    space_id: 'spa_1',
    source_id: 'src_1',
    user_id: i % 2 ? `u-${i}` : null,
    anonymous_id: `a-${i}`,
    group_id: null,
    previous_id: null,
    event: 'Order Completed',
    name: null,
    timestamp: 1_760_000_000_000 + i,
    sent_at: null,
    received_at: 1_760_000_000_001 + i,
    // Multi-byte text too: sizes are in bytes, not characters.
    properties_json: JSON.stringify({ pad: 'é'.repeat(padBytes / 2) }),
    traits_json: '{}',
    context_json: '{"library":{"name":"analytics-node"}}',
    integrations_json: '{}',
    external_ids: i % 3 ? [] : [{ id: `crm-${i}`, type: 'crm_id', collection: 'users', encoding: 'none' }],
  };
}

it('hands out records that decode to what was encoded, small ones packed together and ones larger than a slab whole', async () => {
  const codec = new SchemaCodec({ url: testInfrastructure().schemaRegistryUrl });
  const encoder = await rawEventEncoder(uniqueName('encoder'), codec);
  // 0 B to 30 KB (an event's limit is 32 KB), then two past the 256 KB slab.
  const records = [...Array.from({ length: 600 }, (_, i) => record(i, (i * 7919) % 30_000)), record(600, 300_000), record(601, 600_000)];
  const encoded = records.map((r) => encoder.encode(r));
  // Small records share slabs: far fewer distinct buffers than records.
  expect(new Set(encoded.map((b) => b.buffer)).size).toBeLessThan(records.length / 5);
  for (let i = 0; i < records.length; i++) expect(await codec.decode(encoded[i]!)).toEqual(records[i]);
});
