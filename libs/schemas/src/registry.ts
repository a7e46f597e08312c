// Avro values in the Confluent wire format (magic byte 0, 4-byte schema id,
// Avro body), through @kafkajs/confluent-schema-registry. Works against
// Confluent Schema Registry and Apicurio's ccompat API alike.
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { avroSchemas, type AvroRecordName } from './generated/avro';

export type Compatibility = 'NONE' | 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FORWARD_TRANSITIVE' | 'FULL' | 'FULL_TRANSITIVE';

/** TopicNameStrategy: the subject of a topic's values. */
export const valueSubject = (topic: string) => `${topic}-value`;

export class SchemaCodec {
  private readonly registry: SchemaRegistry;
  /** The schema this process registered per subject, compiled: encodes without the registry client. */
  private readonly writers = new Map<string, { header: Buffer; type: avro.Type }>();
  /** encodeSync's working buffer (grown to the largest value encoded). */
  private scratch = Buffer.allocUnsafe(64 * 1024);
  /** The same compiled schemas by registry id: values written with them decode without the registry client. */
  private readonly readers = new Map<number, avro.Type>();

  constructor(private readonly config: { url: string }) {
    this.registry = new SchemaRegistry({ host: config.url });
  }

  /**
   * Registers `record`'s schema under `subject` (idempotent: the registry
   * returns the existing id for an identical schema), sets the subject's
   * compatibility, and remembers the id.
   * NOTE: not through the client library's register(): it reads the subject's
   * compatibility before registering and throws when another process
   * registered the subject a moment earlier and has not set it yet, a race
   * every fleet start runs into. Plain REST calls in this order are race-free.
   */
  async register(subject: string, record: AvroRecordName | object, opts: { compatibility?: Compatibility } = {}): Promise<number> {
    const schema = typeof record === 'string' ? avroSchemas[record] : record;
    const res = await fetch(`${this.config.url}/subjects/${encodeURIComponent(subject)}/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schema: JSON.stringify(schema) }),
    });
    const body = (await res.json().catch(() => ({}))) as { id?: number; message?: string; error_code?: number };
    if (!res.ok || typeof body.id !== 'number') {
      throw new Error(`registering a schema under ${subject} failed: ${res.status} ${body.error_code ?? ''} ${body.message ?? ''}`.trim());
    }
    if (opts.compatibility) await this.setCompatibility(subject, opts.compatibility);
    const header = Buffer.alloc(5);
    header.writeInt32BE(body.id, 1);
    const type = avro.Type.forSchema(schema as avro.Schema);
    this.writers.set(subject, { header, type });
    this.readers.set(body.id, type);
    return body.id;
  }

  /** Registers the value schema of every topic that has one. */
  async registerTopics(topics: Array<{ name: string; valueRecord: string | null }>): Promise<void> {
    for (const t of topics)
      if (t.valueRecord) await this.register(valueSubject(t.name), t.valueRecord as AvroRecordName, { compatibility: 'BACKWARD' });
  }

  /** Encodes `value` with the schema registered for `subject` (register first). */
  async encode(subject: string, value: unknown): Promise<Buffer> {
    return this.encodeSync(subject, value);
  }

  /**
   * encode() without a promise: the wire format (magic byte 0, the 4-byte id
   * the registry gave the schema this process registered, then avsc's binary
   * encoding with that very schema), which is what the registry client writes
   * too, minus its async schema lookup per value. avsc checks every field's
   * type while writing, so an invalid value throws here as it did there.
   */
  encodeSync(subject: string, value: unknown): Buffer {
    const writer = this.writers.get(subject);
    if (writer === undefined) throw new TypeError(`no schema registered for subject ${subject} in this process`);
    // Written after the header in a buffer kept for it, then copied out once: avsc's toBuffer writes into a
    // buffer of its own and copies into a new one, and joining the header made a second copy (the evaluator
    // encodes ~2.6 change records per event). avsc's encode returns minus the bytes it lacked when the value
    // does not fit: the buffer grows and the value is written again.
    let end = writer.type.encode(value, this.scratch, 5);
    if (end < 0) {
      this.scratch = Buffer.allocUnsafe(Math.max(2 * this.scratch.length, this.scratch.length - end));
      end = writer.type.encode(value, this.scratch, 5);
    }
    writer.header.copy(this.scratch, 0);
    return Buffer.from(this.scratch.subarray(0, end));
  }

  /** Decodes a Confluent wire-format buffer with the writer's schema (fetched once per id). */
  async decode<T>(buffer: Buffer | null): Promise<T> {
    if (!buffer || buffer.length < 5 || buffer[0] !== 0) throw new Error('not Confluent wire format (missing magic byte 0 / schema id)');
    const local = this.decodeLocally(buffer);
    if (local) return local.value as T;
    return (await this.registry.decode(buffer)) as T;
  }

  /**
   * decode() without a promise when the bytes were written with a schema this
   * process registered (the id says so; the registry client would decode them
   * with that very schema): the hot path of every consumer of our own topics.
   * Anything else, and any body that does not read cleanly to its last byte,
   * goes to the registry client, whose errors name the problem.
   */
  decodeSyncWhenKnown<T>(buffer: Buffer | null): T | Promise<T> {
    const local = buffer ? this.decodeLocally(buffer) : null;
    return local ? (local.value as T) : this.decode<T>(buffer);
  }

  private decodeLocally(buffer: Buffer): { value: unknown } | null {
    if (buffer.length <= 5 || buffer[0] !== 0) return null;
    const type = this.readers.get(buffer.readInt32BE(1));
    if (!type) return null;
    try {
      const { value, offset } = type.decode(buffer, 5);
      return offset === buffer.length ? { value } : null;
    } catch {
      return null; // malformed: the client's error says why
    }
  }

  async setCompatibility(subject: string, compatibility: Compatibility): Promise<void> {
    // TRICKY: Apicurio creates the subject's COMPATIBILITY rule on the first PUT;
    // when two services start together, the loser of that race gets 409 "rule
    // already exists". A second PUT then updates the existing rule, so retry.
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(`${this.config.url}/config/${encodeURIComponent(subject)}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
        body: JSON.stringify({ compatibility }),
      });
      if (res.ok) return;
      const text = await res.text();
      if (res.status !== 409 || attempt >= 5) throw new Error(`setting compatibility of ${subject} failed: ${res.status} ${text}`);
    }
  }

  /** Readiness: the registry answers. */
  async answers(): Promise<boolean> {
    try {
      const res = await fetch(`${this.config.url}/subjects`, { signal: AbortSignal.timeout(2000) });
      return res.ok;
    } catch {
      return false;
    }
  }
}
