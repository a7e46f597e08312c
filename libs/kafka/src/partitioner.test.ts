// The fast partitioner must put every key exactly where kafkajs's DefaultPartitioner
// (Kafka's Java murmur2) puts it: a producer on either would break per-key order.
import { randomBytes } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import { javaCompatiblePartitioner, murmur2 } from './partitioner';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2') as (key: Buffer | string) => number;

const profileId = () => `pro_${randomBytes(13).toString('hex')}`;
const keys: Array<string | Buffer> = [
  '',
  'a',
  'ab',
  'abc',
  'abcd',
  'u1',
  'anonymous-visitor-42',
  'émile@example.com',
  '用户-1234',
  '\u{1F600} emoji',
  'lone \ud800 surrogate',
  Buffer.from([0xff, 0x80, 0x00, 0x7f, 0x01]),
  ...Array.from({ length: 500 }, profileId),
  ...Array.from({ length: 200 }, () => randomBytes(1 + (randomBytes(1)[0]! % 40))),
  ...Array.from({ length: 200 }, () => randomBytes(1 + (randomBytes(1)[0]! % 40)).toString('utf8')),
];

describe('javaCompatiblePartitioner', () => {
  it("hashes every key as kafkajs's murmur2 does (ASCII, multi-byte UTF-8, lone surrogates, raw bytes, every tail length)", () => {
    expect(keys.map((k) => murmur2(k))).toEqual(keys.map((k) => kafkajsMurmur2(k)));
  });

  it("chooses the DefaultPartitioner's partition for every key and partition count; an explicit partition wins", () => {
    for (const count of [1, 2, 3, 7, 12, 64]) {
      const partitionMetadata = Array.from({ length: count }, (_, partitionId) => ({
        partitionErrorCode: 0,
        partitionId,
        leader: 1,
        replicas: [1],
        isr: [1],
      }));
      const ours = javaCompatiblePartitioner();
      const theirs = Partitioners.DefaultPartitioner();
      const pick = (p: typeof ours, key: string | Buffer, partition?: number) =>
        p({ topic: 't', partitionMetadata, message: { key, value: null, partition } });
      expect(keys.map((k) => pick(ours, k))).toEqual(keys.map((k) => pick(theirs, k)));
      expect(pick(ours, 'pro_x', count - 1)).toBe(count - 1);
    }
  });

  it('spreads keyless messages over the available partitions', () => {
    const partitionMetadata = [0, 1, 2].map((partitionId) => ({
      partitionErrorCode: 0,
      partitionId,
      leader: partitionId === 1 ? -1 : 1,
      replicas: [1],
      isr: [1],
    }));
    const p = javaCompatiblePartitioner();
    const chosen = new Set(Array.from({ length: 10 }, () => p({ topic: 't', partitionMetadata, message: { key: null, value: null } })));
    expect([...chosen].sort()).toEqual([0, 2]);
  });
});
