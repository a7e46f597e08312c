import { ChunkCoalescer } from './chunk-coalescer';
import { dlq, ok, type ChunkContext, type ConsumedMessage, type MessageOutcome } from './batch-consumer';

const message = (partition: number, offset: number): ConsumedMessage<number> => ({
  topic: 't',
  partition,
  offset: String(offset),
  key: `k${partition}`,
  timestamp: 0,
  headers: {},
  value: partition * 1000 + offset,
  raw: {} as ConsumedMessage<number>['raw'],
});
const chunk = (partition: number, n: number) => Array.from({ length: n }, (_, i) => message(partition, i));
const ctx = (partition: number, active = () => true): ChunkContext => ({
  topic: 't',
  partition,
  heartbeat: async () => {},
  isActive: active,
});
// A dependency down or busy (isInfrastructureError): retriable.
const infrastructureError = () => Object.assign(new Error('Redis is loading the dataset in memory'), { retriable: true });

describe('ChunkCoalescer', () => {
  it('hands the chunks submitted in one tick to the handler as one call, each partition in offset order, and answers each its own outcomes', async () => {
    const calls: Array<Array<ConsumedMessage<number>>> = [];
    const coalescer = new ChunkCoalescer<number>(
      { maxMessages: 100 },
      {
        handle: async (ms) => {
          calls.push(ms);
          return ms.map((m) => (m.value % 2 === 0 ? ok : dlq(`odd ${m.value}`)));
        },
        handleAlone: () => Promise.reject(new Error('not expected')),
      },
    );
    const answers = await Promise.all([coalescer.submit(chunk(0, 3), ctx(0)), coalescer.submit(chunk(1, 2), ctx(1))]);

    expect(calls.map((c) => c.map((m) => m.value))).toEqual([[0, 1, 2, 1000, 1001]]);
    expect(answers).toEqual([
      [ok, dlq('odd 1'), ok],
      [ok, dlq('odd 1001')],
    ]);
  });

  it('packs at most maxMessages per call, in arrival order; a chunk alone goes through the per-partition path', async () => {
    const calls: number[][] = [];
    const alone: number[] = [];
    const coalescer = new ChunkCoalescer<number>(
      { maxMessages: 5 },
      {
        handle: async (ms) => {
          calls.push([...new Set(ms.map((m) => m.partition))]);
          return ms.map(() => ok);
        },
        handleAlone: async (ms) => {
          alone.push(ms[0]!.partition);
          return ms.map(() => ok);
        },
      },
    );
    await Promise.all([
      coalescer.submit(chunk(0, 2), ctx(0)),
      coalescer.submit(chunk(1, 3), ctx(1)),
      coalescer.submit(chunk(2, 4), ctx(2)),
      coalescer.submit(chunk(3, 1), ctx(3)),
      coalescer.submit(chunk(4, 5), ctx(4)),
    ]);

    expect(calls).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(alone).toEqual([4]);
  });

  it('after a data error of the combined call, each chunk is handled on its own path (retries and isolation stay per partition)', async () => {
    const alone: Array<{ partition: number; outcomes: MessageOutcome[] }> = [];
    const coalescer = new ChunkCoalescer<number>(
      { maxMessages: 100 },
      {
        handle: async () => {
          throw new Error('record 1001 is too large');
        },
        handleAlone: async (ms, c) => {
          const outcomes = ms.map((m) => (m.value === 1001 ? dlq('failed 3 times: record 1001 is too large') : ok));
          alone.push({ partition: c.partition, outcomes });
          return outcomes;
        },
      },
    );
    const answers = await Promise.all([coalescer.submit(chunk(0, 2), ctx(0)), coalescer.submit(chunk(1, 2), ctx(1))]);

    expect(alone.map((a) => a.partition).sort()).toEqual([0, 1]);
    expect(answers).toEqual([
      [ok, ok],
      [ok, dlq('failed 3 times: record 1001 is too large')],
    ]);
  });

  it('an infrastructure error fails every chunk of the call (their partitions are redelivered), never dead-letters', async () => {
    let alone = 0;
    const coalescer = new ChunkCoalescer<number>(
      { maxMessages: 100 },
      {
        handle: async () => {
          throw infrastructureError();
        },
        handleAlone: async (ms) => {
          alone++;
          return ms.map(() => ok);
        },
      },
    );
    const answers = await Promise.allSettled([coalescer.submit(chunk(0, 2), ctx(0)), coalescer.submit(chunk(1, 2), ctx(1))]);

    expect(answers.map((a) => a.status)).toEqual(['rejected', 'rejected']);
    expect(alone).toBe(0);
  });

  it('the combined context is active only while every partition is, and heartbeats for all', async () => {
    const beats: number[] = [];
    let partitionOneActive = true;
    let seen: ChunkContext | null = null;
    const coalescer = new ChunkCoalescer<number>(
      { maxMessages: 100 },
      {
        handle: async (ms, c) => {
          seen = c;
          return ms.map(() => ok);
        },
        handleAlone: () => Promise.reject(new Error('not expected')),
      },
    );
    const withBeat = (p: number, active: () => boolean): ChunkContext => ({
      ...ctx(p, active),
      heartbeat: async () => {
        beats.push(p);
      },
    });
    await Promise.all([
      coalescer.submit(
        chunk(0, 1),
        withBeat(0, () => true),
      ),
      coalescer.submit(
        chunk(1, 1),
        withBeat(1, () => partitionOneActive),
      ),
    ]);
    const combined = seen as unknown as ChunkContext;
    expect(combined.isActive()).toBe(true);
    partitionOneActive = false;
    expect(combined.isActive()).toBe(false);
    await combined.heartbeat();
    expect(beats.sort()).toEqual([0, 1]);
  });
});
