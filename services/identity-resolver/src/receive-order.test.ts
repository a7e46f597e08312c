import { receiveOrder } from './receive-order';

const m = (partition: number, receivedAt: number, timestamp = 0) => ({
  topic: 't',
  partition,
  value: { received_at: receivedAt, timestamp },
});

describe('receiveOrder', () => {
  it('interleaves partitions by receive time', () => {
    // The login (partition 0, received at 20) came after the anonymous identify (partition 1, received at 10).
    expect(receiveOrder([m(0, 20), m(0, 30), m(1, 10), m(1, 25)])).toEqual([2, 0, 3, 1]);
  });

  it('never reorders one partition, even when its receive times go back', () => {
    // Two ingest flushes can reach Kafka in either order: offset order still wins within a partition.
    const order = receiveOrder([m(0, 50), m(0, 5), m(1, 20)]);
    expect(order.filter((i) => i < 2)).toEqual([0, 1]);
    expect(order).toEqual([2, 0, 1]);
  });

  it('takes calls received in the same millisecond by their timestamps', () => {
    // One /v1/batch request: the anonymous identify (sent at 1) and the login (sent at 2) on two partitions.
    expect(receiveOrder([m(0, 7, 2), m(1, 7, 1)])).toEqual([1, 0]);
  });

  it('keeps a chunk of one partition as it is, and breaks ties by the partition seen first', () => {
    expect(receiveOrder([m(3, 9), m(3, 1), m(3, 5)])).toEqual([0, 1, 2]);
    expect(receiveOrder([m(1, 7), m(0, 7), m(1, 8)])).toEqual([0, 1, 2]);
    expect(receiveOrder([])).toEqual([]);
  });
});
