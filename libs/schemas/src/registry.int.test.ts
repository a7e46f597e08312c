import { testInfrastructure, uniqueName } from '@engage/testing';
import { SchemaCodec, type ComputationChange } from './index';

const change: ComputationChange = {
  change_id: 'chg_1',
  space_id: 'spa_1',
  computation_id: 'aud_1',
  computation_key: 'order_completed_last_30_days',
  computation_class: 'audience',
  level: 'user',
  profile_id: 'pro_1',
  value: true,
  previous: null,
  value_is_json: false,
  reason: 'realtime',
  occurred_at: 1760000000000,
  emitted_at: 1760000000500,
  external_ids: [{ type: 'email', id: 'a@b.co' }],
  user_id: 'u123',
  anonymous_id: null,
  traits_json: '{"email":"a@b.co"}',
};

describe('SchemaCodec against the real registry', () => {
  it('registers a schema and round-trips a record in the Confluent wire format', async () => {
    const codec = new SchemaCodec({ url: testInfrastructure().schemaRegistryUrl });
    const subject = `${uniqueName('test.changes')}-value`;
    const id = await codec.register(subject, 'ComputationChange');
    expect(await codec.register(subject, 'ComputationChange')).toBe(id); // idempotent

    const bytes = await codec.encode(subject, change);
    expect(bytes[0]).toBe(0);
    expect(bytes.readInt32BE(1)).toBe(id);
    // A fresh codec knows nothing: it fetches the writer's schema by id.
    expect(await new SchemaCodec({ url: testInfrastructure().schemaRegistryUrl }).decode(bytes)).toEqual(change);
  });

  it('rejects an incompatible schema once BACKWARD compatibility is set', async () => {
    const codec = new SchemaCodec({ url: testInfrastructure().schemaRegistryUrl });
    const subject = `${uniqueName('test.compat')}-value`;
    const v1 = { type: 'record', name: 'Thing', fields: [{ name: 'a', type: 'string' }] };
    await codec.register(subject, v1);
    await codec.setCompatibility(subject, 'BACKWARD');
    // Adding a field with a default is backward compatible...
    await codec.register(subject, { ...v1, fields: [...v1.fields, { name: 'b', type: 'int', default: 0 }] });
    // ...adding one without a default is not: old records could not be read.
    await expect(codec.register(subject, { ...v1, fields: [...v1.fields, { name: 'c', type: 'int' }] })).rejects.toThrow(/compatib|409/i);
  });

  it('lets several services register the same subject and set its compatibility at once (fleet start)', async () => {
    const url = testInfrastructure().schemaRegistryUrl;
    const subject = `${uniqueName('test.race')}-value`;
    const ids = await Promise.all(
      Array.from({ length: 6 }, () => new SchemaCodec({ url }).register(subject, 'ComputationChange', { compatibility: 'BACKWARD' })),
    );
    expect(new Set(ids).size).toBe(1);
    const res = await fetch(`${url}/config/${encodeURIComponent(subject)}`);
    expect(((await res.json()) as { compatibilityLevel?: string }).compatibilityLevel).toBe('BACKWARD');
  });

  it('refuses to decode bytes that are not in the wire format, with the reason', async () => {
    const codec = new SchemaCodec({ url: testInfrastructure().schemaRegistryUrl });
    await expect(codec.decode(Buffer.from('{"json":true}'))).rejects.toThrow('not Confluent wire format');
  });
});
