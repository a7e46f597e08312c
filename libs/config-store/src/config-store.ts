// Every service materialises the compacted engage.config topic in memory
// through this class (DESIGN.md: "No other database"). It reads the topic from
// the beginning with a group of its own, so each process sees every record;
// `start()` resolves once it has caught up with the end offsets it found at
// start, and later records arrive within the consumer's fetch wait (~100 ms).
import { randomBytes } from 'node:crypto';
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from '@engage/logging';
import type { ConfigKind, ConfigRecord, SchemaCodec } from '@engage/schemas';
import { maskSettings } from './destination-secrets';
import type { ConfigObjects, DestinationConfig, SourceConfig, StoredObject } from './model';

export type ConfigListener = (object: StoredObject, previous: StoredObject | undefined) => void;

export const configKey = (kind: ConfigKind, id: string) => `${kind}:${id}`;

/** First and longest wait before a record that failed to apply is tried again, ms. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;

export class ConfigStore {
  private readonly objects = new Map<string, StoredObject>();
  private readonly sourcesByWriteKey = new Map<string, SourceConfig>();
  private readonly listeners: ConfigListener[] = [];
  private consumer: Consumer | null = null;
  /**
   * Records that failed to apply (the registry did not answer, say), by message
   * key: the newest per key, tried again with a bounded backoff until one applies.
   * NOTE: skipping them for good left a valid write key answering 401 until a restart.
   */
  private readonly failed = new Map<string, KafkaMessage>();
  private retryTimer: NodeJS.Timeout | null = null;
  private retrying = false;
  private retryDelayMs = RETRY_FIRST_MS;

  constructor(
    private readonly config: {
      topic: string;
      groupPrefix: string;
      /**
       * 'keep' only where delivery needs the destinations' secrets (dispatchers)
       * or must restore them (the control plane); elsewhere they are masked as
       * the API shows them, so no other process holds them in clear.
       */
      destinationSecrets?: 'keep' | 'mask';
    },
    private readonly deps: { kafka: Kafka; codec: SchemaCodec; log: Logger },
  ) {}

  async start(): Promise<void> {
    const admin = this.deps.kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(this.config.topic);
    await admin.disconnect();
    // Caught up when every partition's next offset reaches the end seen now.
    const pending = new Map(ends.filter((p) => p.high !== p.low && Number(p.high) > 0).map((p) => [p.partition, BigInt(p.high)]));

    let caughtUp!: () => void;
    const ready = new Promise<void>((resolve) => (caughtUp = resolve));
    if (pending.size === 0) caughtUp();

    // NOTE: a group of our own per process (never committed to meaningfully):
    // each process must see the whole topic, not a share of it.
    // NOTE: a fetch waits at most a second for a change (the broker answers as
    // soon as one is written, whatever the wait): with 100 ms every process of
    // the fleet, idle or busy, sent ten empty fetches a second.
    const consumer = this.deps.kafka.consumer({
      groupId: `${this.config.groupPrefix}-config-${randomBytes(6).toString('hex')}`,
      maxWaitTimeInMs: 1000,
    });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topic: this.config.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          // A config record we cannot apply must not stop the service (nor hold
          // the records behind it): it is set aside and tried again, loudly.
          await this.applyMessage(message);
          const end = pending.get(batch.partition);
          if (end !== undefined && BigInt(message.offset) + 1n >= end) {
            pending.delete(batch.partition);
            if (pending.size === 0) caughtUp();
          }
        }
      },
    });
    await ready;
    this.deps.log.info({ objects: this.objects.size, failed: this.failed.size }, 'config_loaded');
  }

  /** Decodes and applies a topic record; on failure keeps it (newest per key) for retryFailed(). */
  private async applyMessage(message: KafkaMessage): Promise<boolean> {
    const key = message.key?.toString() ?? `offset:${message.offset}`;
    try {
      this.apply(await this.deps.codec.decode<ConfigRecord>(message.value));
      // A newer record of the key applied: an older failed one has nothing left to say.
      const held = this.failed.get(key);
      if (held && BigInt(held.offset) <= BigInt(message.offset)) this.failed.delete(key);
      return true;
    } catch (err) {
      const held = this.failed.get(key);
      if (!held || BigInt(held.offset) <= BigInt(message.offset)) this.failed.set(key, message);
      this.deps.log.error({ err, offset: message.offset, key, retryInMs: this.retryDelayMs }, 'config_record_apply_failed');
      this.armRetry();
      return false;
    }
  }

  private armRetry(): void {
    if (this.retryTimer || this.retrying || this.failed.size === 0 || !this.consumer) return;
    this.retryTimer = setTimeout(() => void this.retryFailed(), this.retryDelayMs);
    this.retryTimer.unref();
  }

  /** Tries every failed record again, oldest first; the delay doubles (to RETRY_MAX_MS) while any still fails. */
  private async retryFailed(): Promise<void> {
    this.retryTimer = null;
    this.retrying = true;
    const records = [...this.failed.values()].sort((a, b) => (BigInt(a.offset) < BigInt(b.offset) ? -1 : 1));
    let applied = 0;
    try {
      for (const message of records) if (this.consumer && (await this.applyMessage(message))) applied++;
    } finally {
      this.retrying = false;
    }
    if (applied > 0) this.deps.log.info({ records: applied }, 'config_records_applied_after_retry');
    this.retryDelayMs = applied === records.length ? RETRY_FIRST_MS : Math.min(this.retryDelayMs * 2, RETRY_MAX_MS);
    this.armRetry();
  }

  async stop(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (consumer) await consumer.disconnect();
  }

  /**
   * Applies a record (from the topic, or the writer's own just-acked write for
   * read-your-writes). Older versions than the one held are ignored, so the
   * echo of an applied write is harmless.
   */
  apply(record: ConfigRecord): void {
    const key = configKey(record.kind, record.id);
    const previous = this.objects.get(key);
    if (previous && previous.version >= record.version) return;
    const object: StoredObject = {
      kind: record.kind,
      id: record.id,
      spaceId: record.space_id,
      deleted: record.deleted,
      version: record.version,
      updatedAt: record.updated_at,
      body: JSON.parse(record.body_json),
    };
    if (record.kind === 'destination' && this.config.destinationSecrets !== 'keep' && !record.deleted) {
      const destination = object.body as DestinationConfig;
      if (destination.settings) object.body = { ...destination, settings: maskSettings(destination.settings, destination.secretFields) };
    }
    this.objects.set(key, object);
    if (record.kind === 'source') {
      const prevSource = previous?.body as SourceConfig | undefined;
      if (prevSource) this.sourcesByWriteKey.delete(prevSource.writeKey);
      if (!record.deleted) {
        const source = object.body as SourceConfig;
        this.sourcesByWriteKey.set(source.writeKey, source);
      }
    }
    for (const listener of this.listeners) {
      try {
        listener(object, previous);
      } catch (err) {
        this.deps.log.error({ err, kind: record.kind, id: record.id }, 'config_listener_failed');
      }
    }
  }

  onChange(listener: ConfigListener): () => void {
    this.listeners.push(listener);
    return () => this.listeners.splice(this.listeners.indexOf(listener), 1);
  }

  /** The live (not deleted) object, or undefined. */
  get<K extends ConfigKind>(kind: K, id: string): ConfigObjects[K] | undefined {
    const o = this.objects.get(configKey(kind, id));
    return o && !o.deleted ? (o.body as ConfigObjects[K]) : undefined;
  }

  /** With metadata, deleted ones included (keys are never reused, even after deletion). */
  getStored<K extends ConfigKind>(kind: K, id: string): StoredObject<K> | undefined {
    return this.objects.get(configKey(kind, id)) as StoredObject<K> | undefined;
  }

  /** Live objects of a kind, optionally of one space, in creation order. */
  list<K extends ConfigKind>(kind: K, spaceId?: string, opts: { includeDeleted?: boolean } = {}): Array<ConfigObjects[K]> {
    return this.listStored(kind, spaceId, opts).map((o) => o.body);
  }

  listStored<K extends ConfigKind>(kind: K, spaceId?: string, opts: { includeDeleted?: boolean } = {}): Array<StoredObject<K>> {
    const out: Array<StoredObject<K>> = [];
    for (const o of this.objects.values()) {
      if (o.kind !== kind || (spaceId !== undefined && o.spaceId !== spaceId) || (o.deleted && !opts.includeDeleted)) continue;
      out.push(o as StoredObject<K>);
    }
    return out;
  }

  sourceByWriteKey(writeKey: string): SourceConfig | undefined {
    return this.sourcesByWriteKey.get(writeKey);
  }
}
