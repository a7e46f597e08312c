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

// Records are written into shared slabs (one allocation per SLAB_BYTES of
// records, no zero-fill, one write per record) and handed out as views: avsc's
// toBuffer zero-fills a fresh buffer per record and copies the record twice.
// A view keeps its slab alive only until the producer has sent it.
const SLAB_BYTES = 256 * 1024;
const HEADER_BYTES = 5;

export async function rawEventEncoder(topic: string, codec: SchemaCodec): Promise<RecordEncoder> {
  const id = await codec.register(valueSubject(topic), 'RawEvent', { compatibility: 'BACKWARD' });
  const type = avro.Type.forSchema(avroSchemas.RawEvent as unknown as avro.Schema);
  let slab = Buffer.allocUnsafe(SLAB_BYTES);
  let used = 0;
  const writeAt = (buf: Buffer, at: number, record: RawEvent): number => {
    buf[at] = 0;
    buf.writeInt32BE(id, at + 1);
    // The end of the record, or minus the bytes it lacked.
    return type.encode(record, buf, at + HEADER_BYTES);
  };
  return {
    encode(record) {
      // Here, else in a fresh slab, else (a record larger than a slab) in one sized to what it turned out to need.
      for (;;) {
        if (slab.length - used > HEADER_BYTES) {
          const end = writeAt(slab, used, record);
          if (end > 0) {
            const out = slab.subarray(used, end);
            used = end;
            return out;
          }
          slab = Buffer.allocUnsafe(used === 0 ? slab.length - end : Math.max(SLAB_BYTES, slab.length - end - used));
        } else slab = Buffer.allocUnsafe(SLAB_BYTES);
        used = 0;
      }
    },
  };
}
