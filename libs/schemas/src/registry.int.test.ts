import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
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

  it('encodes synchronously exactly the bytes the registry client writes, and refuses invalid values as it does', async () => {
    const url = testInfrastructure().schemaRegistryUrl;
    const codec = new SchemaCodec({ url });
    const subject = `${uniqueName('test.sync')}-value`;
    const id = await codec.register(subject, 'ComputationChange');
    const client = new SchemaRegistry({ host: url });
    const json = { ...change, value: '["a","b"]', value_is_json: true, previous: 3.5 };
    // One far larger than encodeSync's 64 KB working buffer (it grows), then a small one after it.
    const large = { ...change, traits_json: JSON.stringify({ notes: 'x'.repeat(200_000) }) };
    for (const value of [change, json, large, change])
      expect(codec.encodeSync(subject, value).equals(await client.encode(id, value))).toBe(true);
    // Each result is its own memory: encoding the next value leaves the last one as it was.
    const first = codec.encodeSync(subject, change);
    const copy = Buffer.from(first);
    codec.encodeSync(subject, { ...change, profile_id: 'pro_other_and_longer' });
    expect(first.equals(copy)).toBe(true);
    expect(() => codec.encodeSync(subject, { ...change, profile_id: 42 })).toThrow();
    await expect(client.encode(id, { ...change, profile_id: 42 })).rejects.toThrow();
    expect(() => codec.encodeSync(`${subject}-unknown`, change)).toThrow(/no schema registered/);
  });

  it('decodes its own schemas synchronously, others and malformed bodies through the registry client', async () => {
    const url = testInfrastructure().schemaRegistryUrl;
    const codec = new SchemaCodec({ url });
    const subject = `${uniqueName('test.fastdecode')}-value`;
    await codec.register(subject, 'ComputationChange');
    const bytes = codec.encodeSync(subject, change);
    const decoded = codec.decodeSyncWhenKnown(bytes);
    expect(decoded).not.toBeInstanceOf(Promise);
    expect(decoded).toEqual(change);
    // Written by another process with a schema this one did not register: fetched by id, async.
    const other = new SchemaCodec({ url });
    const otherSubject = `${uniqueName('test.fastdecode.other')}-value`;
    await other.register(otherSubject, { type: 'record', name: 'Other', fields: [{ name: 'a', type: 'string' }] });
    const foreign = codec.decodeSyncWhenKnown(other.encodeSync(otherSubject, { a: 'x' }));
    expect(foreign).toBeInstanceOf(Promise);
    expect(await foreign).toEqual({ a: 'x' });
    // Cut short: the client's error, not a half-read value.
    await expect(Promise.resolve(codec.decodeSyncWhenKnown(bytes.subarray(0, bytes.length - 3)))).rejects.toThrow();
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
