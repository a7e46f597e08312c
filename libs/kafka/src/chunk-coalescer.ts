// Chunks of several partitions handed to the handler as one call.
//
// kafkajs fetches the records of all a broker's partitions in one request and
// hands each partition's batch to its own eachBatch call, all in the same
// tick (runner -> workerQueue, partitionsConsumedConcurrently workers). Under
// a live stream each of those batches is small (a few records), and every
// handler call pays the same fixed round trips: the evaluator's locks, load,
// produce and save, the resolver's script call and produce. Handing the
// chunks that arrive together to the handler as one call pays them once.
//
// Per-key order holds: each partition's records keep their offset order
// inside the combined chunk, and a key lives on one partition. The partitions
// were handled concurrently before, so nothing ordered them among each other.
//
// Failures: an infrastructure error fails every chunk of the group (each
// partition's eachBatch throws and kafkajs redelivers, as for a chunk alone);
// any other error sends each chunk back to its own partition's path
// (BatchConsumer.handleBounded: retries, then halving to dead-letter the one
// record that fails), so a bad record of one partition never dead-letters
// another's. Handlers are idempotent by the crash rule, so what the failed
// combined attempt emitted is re-emitted with the same ids.
import type { ChunkContext, ConsumedMessage, MessageOutcome } from './batch-consumer';
import { isInfrastructureError } from './retry';

interface Member<T> {
  messages: Array<ConsumedMessage<T>>;
  ctx: ChunkContext;
  resolve: (outcomes: MessageOutcome[]) => void;
  reject: (err: unknown) => void;
}

export class ChunkCoalescer<T> {
  private waiting: Array<Member<T>> = [];
  private scheduled = false;

  constructor(
    private readonly config: {
      /** A combined chunk holds at most this many messages (the consumer's chunkSize). */
      maxMessages: number;
    },
    private readonly deps: {
      /** The handler, called once per group. */
      handle: (messages: Array<ConsumedMessage<T>>, ctx: ChunkContext) => Promise<MessageOutcome[]>;
      /** One partition's chunk on its own, with its retries and record isolation. */
      handleAlone: (messages: Array<ConsumedMessage<T>>, ctx: ChunkContext) => Promise<MessageOutcome[]>;
    },
  ) {}

  /** The outcomes of this partition's chunk, handled with the others submitted in the same tick. */
  submit(messages: Array<ConsumedMessage<T>>, ctx: ChunkContext): Promise<MessageOutcome[]> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ messages, ctx, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      // After the microtasks of this tick: every eachBatch of the fetch has submitted by then.
      setImmediate(() => this.run());
    });
  }

  private run(): void {
    this.scheduled = false;
    const members = this.waiting;
    this.waiting = [];
    for (const group of this.groups(members)) void this.handleGroup(group);
  }

  /** Members packed in arrival order into groups of at most maxMessages (a full chunk goes alone). */
  private groups(members: Array<Member<T>>): Array<Array<Member<T>>> {
    const groups: Array<Array<Member<T>>> = [];
    let current: Array<Member<T>> = [];
    let size = 0;
    for (const m of members) {
      if (current.length > 0 && size + m.messages.length > this.config.maxMessages) {
        groups.push(current);
        current = [];
        size = 0;
      }
      current.push(m);
      size += m.messages.length;
    }
    if (current.length > 0) groups.push(current);
    return groups;
  }

  private async handleGroup(group: Array<Member<T>>): Promise<void> {
    if (group.length === 1) {
      const [only] = group as [Member<T>];
      return this.deps.handleAlone(only.messages, only.ctx).then(only.resolve, only.reject);
    }
    const messages = group.flatMap((m) => m.messages);
    const ctx: ChunkContext = {
      topic: group[0]!.ctx.topic,
      partition: group[0]!.ctx.partition,
      heartbeat: async () => {
        await Promise.all(group.map((m) => m.ctx.heartbeat()));
      },
      isActive: () => group.every((m) => m.ctx.isActive()),
    };
    let outcomes: MessageOutcome[];
    try {
      outcomes = await this.deps.handle(messages, ctx);
      if (outcomes.length !== messages.length)
        throw new TypeError(`handler returned ${outcomes.length} outcomes for ${messages.length} messages`);
    } catch (err) {
      if (isInfrastructureError(err)) {
        for (const m of group) m.reject(err);
        return;
      }
      // Each chunk on its own path: retried, and its failing record isolated within its own partition.
      for (const m of group) this.deps.handleAlone(m.messages, m.ctx).then(m.resolve, m.reject);
      return;
    }
    let at = 0;
    for (const m of group) {
      m.resolve(outcomes.slice(at, at + m.messages.length));
      at += m.messages.length;
    }
  }
}
