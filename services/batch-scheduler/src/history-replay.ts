// Reads engage.events.resolved from its start (what retention kept) up to the
// end offsets it has when the replay begins, with a consumer of its own (a
// fresh group, nothing committed, deleted afterwards): the IO shell of a
// historical backfill (history-fold.ts is the pure part).
//
// NOTE: the end offsets are the high watermarks (https://kafka.apache.org/documentation/#design_consumerposition)
// read once: events produced after that are past the replay's end. Which of
// them count is decided by their arrival time, not by the offsets (see
// backfill.pass.ts): the offsets only bound the read.
import type { Kafka } from '@engage/kafka';
import type { Logger } from '@engage/logging';
import type { ResolvedEvent } from '@engage/schemas';

export interface ReplayedEvent {
  partition: number;
  offset: string;
  value: ResolvedEvent;
}

export class HistoryReplay {
  constructor(
    private readonly config: { topic: string; groupPrefix: string },
    private readonly deps: {
      kafka: Kafka;
      decode: (value: Buffer | null) => Promise<ResolvedEvent>;
      log: Logger;
    },
  ) {}

  /**
   * Calls onChunk with every event, partition by partition in offset order
   * (partitions interleave), and onProgress with the share read (0..1).
   * Resolves once every partition reached its end offset.
   */
  async run(onChunk: (events: ReplayedEvent[]) => Promise<void>, onProgress: (read: number) => Promise<void>): Promise<{ events: number }> {
    const admin = this.deps.kafka.admin();
    await admin.connect();
    const groupId = `${this.config.groupPrefix}backfill-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    try {
      const offsets = await admin.fetchTopicOffsets(this.config.topic);
      const ends = new Map<number, bigint>();
      let total = 0n;
      for (const o of offsets) {
        const high = BigInt(o.high);
        const low = BigInt(o.low);
        if (high > low) {
          ends.set(o.partition, high);
          total += high - low;
        }
      }
      if (ends.size === 0) return { events: 0 };
      const lows = new Map(offsets.map((o) => [o.partition, BigInt(o.low)]));
      const position = new Map<number, bigint>();
      let read = 0;
      const consumer = this.deps.kafka.consumer({ groupId, readUncommitted: false, allowAutoTopicCreation: false });
      const done = new Promise<void>((resolve, reject) => {
        consumer.on(consumer.events.CRASH, (e) => reject(e.payload.error));
        const finished = new Set<number>();
        const checkDone = () => {
          if (finished.size === ends.size) resolve();
        };
        void consumer
          .connect()
          .then(() => consumer.subscribe({ topic: this.config.topic, fromBeginning: true }))
          .then(() =>
            consumer.run({
              autoCommit: false,
              eachBatchAutoResolve: false,
              eachBatch: async ({ batch, heartbeat }) => {
                const p = batch.partition;
                const end = ends.get(p);
                if (end === undefined || finished.has(p)) {
                  consumer.pause([{ topic: this.config.topic, partitions: [p] }]);
                  if (end === undefined) checkDone();
                  return;
                }
                const events: ReplayedEvent[] = [];
                for (const m of batch.messages) {
                  if (BigInt(m.offset) >= end) break;
                  events.push({ partition: p, offset: m.offset, value: await this.deps.decode(m.value) });
                }
                if (events.length) await onChunk(events);
                read += events.length;
                const next = BigInt(batch.lastOffset()) + 1n;
                position.set(p, next);
                await heartbeat();
                if (next >= end) {
                  finished.add(p);
                  consumer.pause([{ topic: this.config.topic, partitions: [p] }]);
                }
                const progressed = [...ends.keys()].reduce((s, q) => s + Number((position.get(q) ?? lows.get(q)!) - lows.get(q)!), 0);
                await onProgress(Math.min(1, progressed / Number(total)));
                checkDone();
              },
            }),
          )
          .catch(reject);
      });
      try {
        await done;
      } finally {
        await consumer.disconnect();
      }
      this.deps.log.info({ topic: this.config.topic, events: read, partitions: ends.size }, 'backfill_replay_done');
      return { events: read };
    } finally {
      // Nothing was committed; the group is only a name. Best effort.
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.disconnect();
    }
  }
}
