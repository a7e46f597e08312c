// RawEvent -> Confluent wire format (magic byte 0, 4-byte schema id, Avro
// body), synchronously. SchemaCodec.encode does the same through an async
// registry lookup per record; at batch rates that promise per event was a
// tenth of the ingest's CPU. The schema id comes from registering the very
// schema the codec registers (idempotent: the registry answers the same id),
// so readers decode these records with SchemaCodec like any other.
import avro from 'avsc';
import { avroSchemas, valueSubject, type RawEvent, type SchemaCodec } from '@engage/schemas';

export interface RecordEncoder {
  encode(record: RawEvent): Buffer;
}

export async function rawEventEncoder(topic: string, codec: SchemaCodec): Promise<RecordEncoder> {
  const id = await codec.register(valueSubject(topic), 'RawEvent', { compatibility: 'BACKWARD' });
  const type = avro.Type.forSchema(avroSchemas.RawEvent as unknown as avro.Schema);
  return {
    encode(record) {
      const body = type.toBuffer(record);
      const out = Buffer.allocUnsafe(5 + body.length);
      out[0] = 0;
      out.writeInt32BE(id, 1);
      body.copy(out, 5);
      return out;
    },
  };
}
