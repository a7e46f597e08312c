// Fast encoding of engage.events.resolved records. A ResolvedEvent is
// (profile_id, account_id, resolved_at) followed by exactly the fields of a
// RawEvent, and Avro's binary encoding of a record is the concatenation of its
// fields (https://avro.apache.org/docs/1.11.1/specification/#binary-encoding),
// so the resolved body is a small prefix plus the raw body, byte for byte:
// no re-encoding of the event. Used only when the raw message was written with
// the schema this process knows to line up; any other writer schema takes the
// generic encoder.
import { avroSchemas } from '@engage/schemas';

/** True when ResolvedEvent's fields after the first three are RawEvent's, in order. */
export function resolvedExtendsRaw(): boolean {
  const raw = avroSchemas.RawEvent as unknown as { namespace?: string; fields: unknown[] };
  const resolved = avroSchemas.ResolvedEvent as unknown as { namespace?: string; fields: Array<{ name: string }> };
  return (
    raw.namespace === resolved.namespace &&
    resolved.fields
      .slice(0, 3)
      .map((f) => f.name)
      .join() === 'profile_id,account_id,resolved_at' &&
    JSON.stringify(resolved.fields.slice(3)) === JSON.stringify(raw.fields)
  );
}

/** Avro long: zigzag then base-128 varint. Arithmetic, not bitwise: values beyond 32 bits (epoch ms) stay exact. */
function writeLong(n: number, out: number[]): void {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  while (z >= 0x80) {
    out.push((z % 0x80) | 0x80);
    z = Math.floor(z / 0x80);
  }
  out.push(z);
}

function prefixBytes(schemaId: number, profileId: string, accountId: string | null, resolvedAt: number): Buffer {
  const head: number[] = [0, (schemaId >>> 24) & 0xff, (schemaId >>> 16) & 0xff, (schemaId >>> 8) & 0xff, schemaId & 0xff];
  const pid = Buffer.from(profileId, 'utf8');
  writeLong(pid.length, head);
  const parts: Buffer[] = [Buffer.from(head), pid];
  const tail: number[] = [];
  if (accountId === null) writeLong(0, tail);
  else {
    const acc = Buffer.from(accountId, 'utf8');
    writeLong(1, tail);
    writeLong(acc.length, tail);
    parts.push(Buffer.from(tail), acc);
    tail.length = 0;
  }
  writeLong(resolvedAt, tail);
  parts.push(Buffer.from(tail));
  return Buffer.concat(parts);
}

/**
 * The Confluent wire-format ResolvedEvent for a raw message, or null when the
 * raw bytes were not written with `rawSchemaId` (the caller encodes generically).
 */
export function resolvedFromRaw(
  rawValue: Buffer | null,
  ids: { raw: number; resolved: number },
  fields: { profileId: string; accountId: string | null; resolvedAt: number },
): Buffer | null {
  if (!rawValue || rawValue.length < 5 || rawValue[0] !== 0 || rawValue.readInt32BE(1) !== ids.raw) return null;
  return Buffer.concat([prefixBytes(ids.resolved, fields.profileId, fields.accountId, fields.resolvedAt), rawValue.subarray(5)]);
}
