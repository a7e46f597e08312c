// Fast encoding of engage.events.resolved records. A ResolvedEvent is
// (profile_id, account_id, resolved_at) followed by exactly the fields of a
// RawEvent, and Avro's binary encoding of a record is the concatenation of its
// fields (https://avro.apache.org/docs/1.11.1/specification/#binary-encoding),
// so the resolved body is a small prefix plus the raw body, byte for byte:
// no re-encoding of the event. Used only when the raw message was written with
// the schema this process knows to line up; any other writer schema takes the
// generic encoder.
import { avroSchemas } from '@engage/schemas';

/** True when ResolvedEvent's fields after the first three are RawEvent's, in order (fixed at build time: computed once). */
export const resolvedExtendsRaw: () => boolean = (() => {
  const raw = avroSchemas.RawEvent as unknown as { namespace?: string; fields: unknown[] };
  const resolved = avroSchemas.ResolvedEvent as unknown as { namespace?: string; fields: Array<{ name: string }> };
  const lines =
    raw.namespace === resolved.namespace &&
    resolved.fields
      .slice(0, 3)
      .map((f) => f.name)
      .join() === 'profile_id,account_id,resolved_at' &&
    JSON.stringify(resolved.fields.slice(3)) === JSON.stringify(raw.fields);
  return () => lines;
})();

/** Bytes of an Avro long: zigzag then base-128 varint. Arithmetic, not bitwise: values beyond 32 bits (epoch ms) stay exact. */
function longSize(n: number): number {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  let size = 1;
  while (z >= 0x80) {
    z = Math.floor(z / 0x80);
    size++;
  }
  return size;
}

function writeLong(n: number, buf: Buffer, at: number): number {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  while (z >= 0x80) {
    buf[at++] = (z % 0x80) | 0x80;
    z = Math.floor(z / 0x80);
  }
  buf[at++] = z;
  return at;
}

/**
 * The Confluent wire-format ResolvedEvent for a raw message, or null when the
 * raw bytes were not written with `ids.raw` (the caller encodes generically).
 * One allocation: header, the three resolved fields, then the raw body.
 */
export function resolvedFromRaw(
  rawValue: Buffer | null,
  ids: { raw: number; resolved: number },
  fields: { profileId: string; accountId: string | null; resolvedAt: number },
): Buffer | null {
  if (!rawValue || rawValue.length < 5 || rawValue[0] !== 0 || rawValue.readInt32BE(1) !== ids.raw) return null;
  const pidBytes = Buffer.byteLength(fields.profileId, 'utf8');
  const accBytes = fields.accountId === null ? 0 : Buffer.byteLength(fields.accountId, 'utf8');
  const size =
    5 +
    longSize(pidBytes) +
    pidBytes +
    1 + // union branch: 0 null, 1 string (zigzag 0 / 2: one byte)
    (fields.accountId === null ? 0 : longSize(accBytes) + accBytes) +
    longSize(fields.resolvedAt) +
    (rawValue.length - 5);
  const out = Buffer.allocUnsafe(size);
  out[0] = 0;
  out.writeInt32BE(ids.resolved, 1);
  let at = writeLong(pidBytes, out, 5);
  at += out.write(fields.profileId, at, 'utf8');
  if (fields.accountId === null) at = writeLong(0, out, at);
  else {
    at = writeLong(1, out, at);
    at = writeLong(accBytes, out, at);
    at += out.write(fields.accountId, at, 'utf8');
  }
  at = writeLong(fields.resolvedAt, out, at);
  rawValue.copy(out, at, 5);
  return out;
}
