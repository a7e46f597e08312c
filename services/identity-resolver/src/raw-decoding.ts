// Decoding of engage.events.raw values on the hot path. The registry client's
// decode is async and slices the buffer three times per message before the
// Avro read; for messages written with the RawEvent schema this process
// registered (the common case), the same avsc reader runs synchronously on
// the bytes after the 5-byte header. Any other writer schema, and anything
// malformed, goes through the codec as before (same values, same errors).
import { avroSchemas, type RawEvent, type SchemaCodec } from '@engage/schemas';
import avro from 'avsc';

export class RawEventDecoder {
  private readonly type = avro.Type.forSchema(avroSchemas.RawEvent as unknown as avro.Schema);
  /** The registry id of RawEvent under the raw subject; null: no fast path; undefined: not known yet. */
  private schemaId: number | null | undefined;

  constructor(private readonly deps: { codec: SchemaCodec; rawSchemaId: () => Promise<number | null> }) {}

  decode(buffer: Buffer | null): RawEvent | Promise<RawEvent> {
    if (this.schemaId === undefined) {
      // A registry outage leaves the id unknown (tried again with the next message); the codec decides meanwhile.
      return this.deps.rawSchemaId().then(
        (id) => {
          this.schemaId = id;
          return this.decode(buffer);
        },
        () => this.deps.codec.decode<RawEvent>(buffer),
      );
    }
    if (this.schemaId !== null && buffer && buffer.length > 5 && buffer[0] === 0 && buffer.readInt32BE(1) === this.schemaId) {
      try {
        const { value, offset } = this.type.decode(buffer, 5);
        if (offset === buffer.length) return value as RawEvent;
      } catch {
        // Malformed body: the codec's error names the problem.
      }
    }
    return this.deps.codec.decode<RawEvent>(buffer);
  }
}
