// Kafka's default partitioner (murmur2 of the key, as Java clients and
// kafkajs's DefaultPartitioner compute it), in 32-bit integer arithmetic.
// NOTE: kafkajs's own murmur2 builds 64-bit Long objects for every 4 key
// bytes: ~4 us per 30-byte profile id, a tenth of the identity resolver's CPU
// per event. This one puts every key on the partition kafkajs (and Java) would
// (partitioner.test.ts), so switching to it moved no key.
import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';

type ProducerConfig = NonNullable<Parameters<Kafka['producer']>[0]>;
type Partitioner = ReturnType<NonNullable<ProducerConfig['createPartitioner']>>;

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

function murmur2Of(length: number, at: (i: number) => number): number {
  let h = (SEED ^ length) | 0;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k = at(i4) | (at(i4 + 1) << 8) | (at(i4 + 2) << 16) | (at(i4 + 3) << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= at(tail + 2) << 16;
  if (rest >= 2) h ^= at(tail + 1) << 8;
  if (rest >= 1) h = Math.imul(h ^ at(tail), M);
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Any UTF-16 code unit outside ASCII (surrogates included): such keys are hashed from their UTF-8 bytes. */
const NON_ASCII = /[\u0080-\uffff]/;

/** Kafka's murmur2 of a key's UTF-8 bytes (a signed 32-bit int, as Java's and kafkajs's). */
export function murmur2(key: Buffer | string): number {
  if (typeof key === 'string' && !NON_ASCII.test(key)) return murmur2Of(key.length, (i) => key.charCodeAt(i));
  const data = Buffer.isBuffer(key) ? key : Buffer.from(String(key));
  return murmur2Of(data.length, (i) => data[i]!);
}

/** kafkajs's DefaultPartitioner (explicit partition, else murmur2 of the key, else round robin), with the fast murmur2. */
export const javaCompatiblePartitioner = (): Partitioner => {
  const counters: Record<string, number> = {};
  return ({ topic, partitionMetadata, message }) => {
    if (message.partition !== null && message.partition !== undefined) return message.partition;
    if (message.key !== null && message.key !== undefined) return (murmur2(message.key) & 0x7fffffff) % partitionMetadata.length;
    counters[topic] ??= randomBytes(4).readUInt32BE(0);
    const next = ++counters[topic]! & 0x7fffffff;
    const available = partitionMetadata.filter((p) => p.leader >= 0);
    return available.length > 0 ? available[next % available.length]!.partitionId : next % partitionMetadata.length;
  };
};
