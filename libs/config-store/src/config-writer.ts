import type { Producer } from 'kafkajs';
import { valueSubject, type ConfigKind, type ConfigRecord, type SchemaCodec } from '@engage/schemas';
import { configKey, type ConfigStore } from './config-store';
import type { ConfigObjects } from './model';

/**
 * Writes configuration objects to engage.config. Only the control plane (and
 * tests) write. A write resolves once the broker acked it, and is applied to
 * the local store at once so the writer reads its own writes.
 */
export class ConfigWriter {
  constructor(
    private readonly config: { topic: string },
    private readonly deps: { producer: Producer; codec: SchemaCodec; store: ConfigStore; now?: () => number },
  ) {}

  async write<K extends ConfigKind>(
    kind: K,
    id: string,
    spaceId: string,
    body: ConfigObjects[K],
    opts: { deleted?: boolean } = {},
  ): Promise<ConfigRecord> {
    const previous = this.deps.store.getStored(kind, id);
    const record: ConfigRecord = {
      kind,
      id,
      space_id: spaceId,
      deleted: opts.deleted ?? false,
      version: (previous?.version ?? 0) + 1,
      updated_at: this.deps.now?.() ?? Date.now(),
      body_json: JSON.stringify(body),
    };
    const value = await this.deps.codec.encode(valueSubject(this.config.topic), record);
    await this.deps.producer.send({ topic: this.config.topic, messages: [{ key: configKey(kind, id), value }] });
    this.deps.store.apply(record);
    return record;
  }
}
