// Avro values in the Confluent wire format (magic byte 0, 4-byte schema id,
// Avro body), through @kafkajs/confluent-schema-registry. Works against
// Confluent Schema Registry and Apicurio's ccompat API alike.
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { avroSchemas, type AvroRecordName } from './generated/avro';

export type Compatibility = 'NONE' | 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FORWARD_TRANSITIVE' | 'FULL' | 'FULL_TRANSITIVE';

/** TopicNameStrategy: the subject of a topic's values. */
export const valueSubject = (topic: string) => `${topic}-value`;

export class SchemaCodec {
  private readonly registry: SchemaRegistry;
  private readonly ids = new Map<string, number>();

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
    this.ids.set(subject, body.id);
    return body.id;
  }

  /** Registers the value schema of every topic that has one. */
  async registerTopics(topics: Array<{ name: string; valueRecord: string | null }>): Promise<void> {
    for (const t of topics)
      if (t.valueRecord) await this.register(valueSubject(t.name), t.valueRecord as AvroRecordName, { compatibility: 'BACKWARD' });
  }

  /** Encodes `value` with the schema registered for `subject` (register first). */
  async encode(subject: string, value: unknown): Promise<Buffer> {
    const id = this.ids.get(subject);
    if (id === undefined) throw new TypeError(`no schema registered for subject ${subject} in this process`);
    return this.registry.encode(id, value);
  }

  /** Decodes a Confluent wire-format buffer with the writer's schema (fetched once per id). */
  async decode<T>(buffer: Buffer | null): Promise<T> {
    if (!buffer || buffer.length < 5 || buffer[0] !== 0) throw new Error('not Confluent wire format (missing magic byte 0 / schema id)');
    return (await this.registry.decode(buffer)) as T;
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
