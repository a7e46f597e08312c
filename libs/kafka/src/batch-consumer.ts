// The one consumer wrapper (STYLE.md, "Kafka"):
// - eachBatch, no auto-resolve: an offset is resolved only after its message is
//   fully handled, including its DLQ write;
// - the batch is cut into chunks (bounded in-flight work); the handler gets a
//   whole chunk so it can do one Redis pipeline and one sendBatch per chunk;
// - heartbeat between chunks; stop early on `!isRunning() || isStale()`
//   (a rebalance took the partition away: the rest will be redelivered);
// - a message that cannot be decoded, or that the handler rejects, goes to the
//   DLQ with its reason and the consumer goes on;
// - a handler that throws is judged by the error (isInfrastructureError):
//   - a dependency down or busy (Redis, the broker, the registry): thrown on,
//     kafkajs commits what was resolved and redelivers the rest (kafkajs
//     src/consumer/runner.js), for as long as the outage lasts;
//   - anything else (a record too large to produce, a bug that some input
//     trips): the chunk is retried `maxAttempts` times, then split in halves,
//     handled in offset order, until the record that fails alone is found; it
//     goes to the DLQ with the error as its reason and the partition moves on.
//     NOTE: a failed attempt may have produced part of its output; handlers
//     are idempotent by the crash rule (same input, same ids), so the retry
//     re-emits only duplicates that consumers drop.
// - with coalescePartitions, the chunks of several partitions that one fetch
//   brought go to the handler as one call (chunk-coalescer.ts): each keeps its
//   offset order, and a failure of the combined call sends each chunk back to
//   the path above, so retries and dead letters stay per partition;
// - /healthz (healthcheck) fails when the consumer crashed for good, or has
//   records waiting and made no progress for `stallAfterMs`.
// - offsets are committed by this class, not by kafkajs: a chunk's next
//   offset once the chunk is handled, for all partitions together in one
//   OffsetCommit request every `commitIntervalMs`, when a rebalance starts
//   and on stop. NOTE: kafkajs's auto-commit commits after every batch, i.e.
//   per partition per fetch (its autoCommitInterval does not apply to
//   eachBatch): under a live stream that was a request, and a write to
//   __consumer_offsets, per few events, more than the produce requests. A
//   crash redelivers what was handled since the last commit (at most about
//   the interval's worth): handlers are idempotent by the crash rule.
// - a handler whose work becomes durable after handle() returns (the
//   evaluator's write-behind: deps.writeBehind) gets a chunk's offset
//   committed only after the promise writeBehind.durable() gave at the
//   chunk's end resolves, in order per partition; a crash before then
//   redelivers the chunk. stop() finishes the chunk in flight, flushes,
//   commits, then leaves.
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from '@engage/logging';
import { ChunkCoalescer } from './chunk-coalescer';
import type { DeadLetterWriter } from './dlq';
import { backoffDelay, isInfrastructureError } from './retry';

/** What happened to one message (PostHog's pipeline results, without redirect). */
export type MessageOutcome = { kind: 'ok' } | { kind: 'dlq'; reason: string; step?: string } | { kind: 'drop'; reason: string };

export const ok: MessageOutcome = { kind: 'ok' };
export const dlq = (reason: string, step?: string): MessageOutcome => ({ kind: 'dlq', reason, step });
export const drop = (reason: string): MessageOutcome => ({ kind: 'drop', reason });

export interface ConsumedMessage<T> {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  /** Broker timestamp (ms). */
  timestamp: number;
  headers: KafkaMessage['headers'];
  value: T;
  raw: KafkaMessage;
}

export interface ChunkContext {
  topic: string;
  partition: number;
  heartbeat(): Promise<void>;
  /** False once the consumer is stopping or the partition was revoked. */
  isActive(): boolean;
}

/**
 * Handles a chunk of one partition, in offset order (with coalescePartitions:
 * of several partitions, each partition's messages in offset order); returns
 * one outcome per message, same order.
 */
export type ChunkHandler<T> = (messages: Array<ConsumedMessage<T>>, ctx: ChunkContext) => Promise<MessageOutcome[]>;

/** Turns raw bytes into T; throw to dead-letter the message (the error message is the reason). */
export type Decoder<T> = (message: KafkaMessage, topic: string) => Promise<T> | T;

export interface BatchConsumerConfig {
  groupId: string;
  topics: string[];
  fromBeginning?: boolean;
  /** Messages per handler call: bounds in-flight work and the size of one pipeline. */
  chunkSize?: number;
  /** Partitions handled at once (each keeps its own order). */
  partitionsConsumedConcurrently?: number;
  sessionTimeoutMs?: number;
  /** Max bytes fetched per partition: bounds memory. */
  maxBytesPerPartition?: number;
  /** Attempts at a chunk (then at each half of it) that fails on its data before the failing record is dead-lettered (default 3). */
  maxAttempts?: number;
  /** First backoff between such attempts, ms (doubles, capped at 5 s; default 200). */
  retryBackoffMs?: number;
  /** Records waiting and no chunk completed for this long: /healthz reports the consumer stuck, ms (default 120000). */
  stallAfterMs?: number;
  /**
   * Chunks of several partitions that arrive together (one fetch) go to the
   * handler as one call, up to chunkSize messages (chunk-coalescer.ts): a
   * live stream's small batches share the handler's fixed round trips.
   * Only for handlers that take any mix of partitions (per-key order holds).
   */
  coalescePartitions?: boolean;
  /**
   * Handled offsets are committed together this often, ms (default 1000);
   * 0: after every chunk. Longer: fewer requests to the group coordinator,
   * more records redelivered after a crash.
   */
  commitIntervalMs?: number;
}

export interface BatchConsumerDeps<T> {
  kafka: Kafka;
  log: Logger;
  decode: Decoder<T>;
  handle: ChunkHandler<T>;
  /** Where decode failures and `dlq` outcomes go. */
  deadLetters: DeadLetterWriter;
  /** The step name written in the DLQ header. */
  step: string;
  onChunk?: (stats: { topic: string; partition: number; messages: number; dlq: number; dropped: number; seconds: number }) => void;
  /** A handler that makes its work durable later than handle() returns (see the header). */
  writeBehind?: WriteBehindHandler;
}

export interface WriteBehindHandler {
  /** Resolves once everything handled before the call is durable (rejects: not yet, a later call covers it). */
  durable(): Promise<void>;
  /** Makes everything handled so far durable now. */
  flush(): Promise<void>;
}

export class BatchConsumer<T> {
  private consumer: Consumer | null = null;
  private lastProgressAt = Date.now();
  /** Partitions (topic:partition) whose fetched records are not all handled yet: work is waiting. */
  private readonly waiting = new Set<string>();
  private stopping = false;
  private crashed: Error | null = null;
  /** eachBatch calls running (stop() waits for them before the last flush). */
  private running = 0;
  /** writeBehind: per partition, the chain of chunks waiting for durability before their offsets may be committed. */
  private readonly commits = new Map<string, Promise<void>>();
  /** Handled (and durable) offsets not committed yet: topic:partition -> the next offset to read. */
  private readonly toCommit = new Map<string, { topic: string; partition: number; offset: string }>();
  /** The commit in progress (commits run one at a time, in order). */
  private committing: Promise<void> = Promise.resolve();
  private commitTimer: NodeJS.Timeout | null = null;
  /** coalescePartitions: where each partition's chunk waits for the others of its fetch. */
  private readonly coalescer: ChunkCoalescer<T> | null;

  constructor(
    private readonly config: BatchConsumerConfig,
    private readonly deps: BatchConsumerDeps<T>,
  ) {
    this.coalescer = config.coalescePartitions
      ? new ChunkCoalescer<T>(
          { maxMessages: config.chunkSize ?? 500 },
          {
            handle: (messages, ctx) => this.deps.handle(messages, ctx),
            handleAlone: (messages, ctx) => this.handleBounded(messages, ctx),
          },
        )
      : null;
  }

  async start(): Promise<void> {
    const consumer = this.deps.kafka.consumer({
      groupId: this.config.groupId,
      sessionTimeout: this.config.sessionTimeoutMs ?? 30000,
      heartbeatInterval: Math.max(1000, Math.floor((this.config.sessionTimeoutMs ?? 30000) / 10)),
      maxBytesPerPartition: this.config.maxBytesPerPartition ?? 1024 * 1024,
      // Read committed: records of aborted transactions never reach handlers.
      readUncommitted: false,
      allowAutoTopicCreation: false,
      retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 10000 },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) => {
      this.crashed = e.payload.error;
      this.deps.log.error({ err: e.payload.error, restart: e.payload.restart }, 'consumer_crashed');
      if (e.payload.restart) this.crashed = null;
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      // Partitions taken away by a rebalance no longer wait on this member.
      const assigned = new Set(
        Object.entries(e.payload.memberAssignment).flatMap(([topic, partitions]) => partitions.map((p) => `${topic}:${p}`)),
      );
      for (const key of this.waiting) if (!assigned.has(key)) this.waiting.delete(key);
      // Offsets of partitions another member owns now are its to commit.
      for (const key of this.toCommit.keys()) if (!assigned.has(key)) this.toCommit.delete(key);
    });
    // What was handled is committed while this member still owns its partitions: the next owner starts after it.
    consumer.on(consumer.events.REBALANCING, () => void this.commitHandled());
    await consumer.connect();
    for (const topic of this.config.topics) await consumer.subscribe({ topic, fromBeginning: this.config.fromBeginning ?? false });
    if (this.deps.writeBehind) {
      // A rebalance may hand partitions to another member: make what was handled durable (and committed) first.
      consumer.on(consumer.events.REBALANCING, () => {
        this.deps.writeBehind!.flush().catch((err: unknown) => this.deps.log.warn({ err }, 'flush_on_rebalance_failed'));
      });
    }
    const interval = this.config.commitIntervalMs ?? 1000;
    if (interval > 0) {
      this.commitTimer = setInterval(() => void this.commitHandled(), interval);
      this.commitTimer.unref();
    }
    await consumer.run({
      eachBatchAutoResolve: false,
      // Offsets are committed by handled() / commitHandled() (see the header).
      autoCommit: false,
      partitionsConsumedConcurrently: this.config.partitionsConsumedConcurrently ?? 1,
      eachBatch: async (payload) => {
        this.running++;
        try {
          await this.eachBatch(payload);
        } finally {
          this.running--;
        }
      },
    });
  }

  /** writeBehind: the offset after `offset` becomes committable once what was handled up to it is durable, in order per partition. */
  private commitWhenDurable(topic: string, partition: number, offset: string): void {
    const durable = this.deps.writeBehind!.durable();
    const key = `${topic}:${partition}`;
    const previous = this.commits.get(key) ?? Promise.resolve();
    const commit = previous
      .then(() => durable)
      .then(() => this.handled(topic, partition, offset))
      .catch((err: unknown) => {
        // Not durable yet (a failed flush): a later chunk's commit covers this one.
        this.deps.log.warn({ err, topic, partition, offset }, 'offset_commit_deferred');
      });
    this.commits.set(key, commit);
    void commit.then(() => {
      if (this.commits.get(key) === commit) this.commits.delete(key);
    });
  }

  /** Everything of this partition up to `offset` is handled (and durable): its next offset may be committed. */
  private handled(topic: string, partition: number, offset: string): void {
    this.toCommit.set(`${topic}:${partition}`, { topic, partition, offset: (BigInt(offset) + 1n).toString() });
    if ((this.config.commitIntervalMs ?? 1000) === 0) void this.commitHandled();
  }

  /**
   * Commits the handled offsets of every partition in one request; a failed
   * commit (the coordinator moving, a rebalance) leaves them for the next one.
   */
  private commitHandled(): Promise<void> {
    this.committing = this.committing.then(async () => {
      const consumer = this.consumer;
      if (!consumer || this.toCommit.size === 0) return;
      const taken = [...this.toCommit.entries()];
      this.toCommit.clear();
      try {
        await consumer.commitOffsets(taken.map(([, o]) => o));
      } catch (err) {
        // Put back unless a later offset of the partition is waiting already.
        for (const [key, o] of taken) if (!this.toCommit.has(key)) this.toCommit.set(key, o);
        this.deps.log.warn({ err, partitions: taken.length }, 'offset_commit_failed');
      }
    });
    return this.committing;
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const chunkSize = this.config.chunkSize ?? 500;
    const active = () => !this.stopping && isRunning() && !isStale();
    const ctx: ChunkContext = { topic: batch.topic, partition: batch.partition, heartbeat, isActive: active };
    const partitionKey = `${batch.topic}:${batch.partition}`;
    if (batch.messages.length === 0) return;
    // From idle to busy: the stall clock starts now, not at the last chunk of long ago.
    if (this.waiting.size === 0) this.lastProgressAt = Date.now();
    this.waiting.add(partitionKey);

    for (let start = 0; start < batch.messages.length; start += chunkSize) {
      if (!active()) {
        this.waiting.delete(partitionKey); // the rest is redelivered, maybe to another member
        return;
      }
      const started = process.hrtime.bigint();
      const chunk = batch.messages.slice(start, start + chunkSize);
      const decoded: Array<ConsumedMessage<T>> = [];
      const letters: Parameters<DeadLetterWriter['write']>[0] = [];
      let dropped = 0;
      for (const message of chunk) {
        try {
          decoded.push(this.consumed(batch.topic, batch.partition, message, await this.deps.decode(message, batch.topic)));
        } catch (err) {
          letters.push(this.letter(batch.topic, batch.partition, message, `undecodable: ${(err as Error).message}`, 'decode'));
        }
      }
      if (decoded.length > 0) {
        const outcomes = this.coalescer ? await this.coalescer.submit(decoded, ctx) : await this.handleBounded(decoded, ctx);
        outcomes.forEach((outcome, i) => {
          const m = decoded[i]!;
          if (outcome.kind === 'dlq')
            letters.push(this.letter(m.topic, m.partition, m.raw, outcome.reason, outcome.step ?? this.deps.step));
          if (outcome.kind === 'drop') dropped++;
        });
      }
      // The dead letters are durable before any offset of this chunk is resolved.
      await this.deps.deadLetters.write(letters);
      resolveOffset(chunk[chunk.length - 1]!.offset);
      if (this.deps.writeBehind) this.commitWhenDurable(batch.topic, batch.partition, chunk[chunk.length - 1]!.offset);
      else this.handled(batch.topic, batch.partition, chunk[chunk.length - 1]!.offset);
      await heartbeat();
      this.lastProgressAt = Date.now();
      this.deps.onChunk?.({
        topic: batch.topic,
        partition: batch.partition,
        messages: chunk.length,
        dlq: letters.length,
        dropped,
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
      });
    }
    // Not reached when a chunk throws or the partition is lost: the records still wait.
    this.waiting.delete(partitionKey);
  }

  /**
   * The handler's outcomes for these messages. Infrastructure errors are
   * thrown on; other errors retried, then the failing record isolated by
   * halving (offset order kept) and dead-lettered with the error.
   */
  private async handleBounded(messages: Array<ConsumedMessage<T>>, ctx: ChunkContext): Promise<MessageOutcome[]> {
    const attempts = this.config.maxAttempts ?? 3;
    let failure: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        if (!ctx.isActive()) throw failure;
        await new Promise((r) => setTimeout(r, backoffDelay(attempt - 1, { initialMs: this.config.retryBackoffMs ?? 200, maxMs: 5000 })));
        await ctx.heartbeat();
      }
      try {
        const outcomes = await this.deps.handle(messages, ctx);
        if (outcomes.length !== messages.length) {
          throw new TypeError(`handler returned ${outcomes.length} outcomes for ${messages.length} messages`);
        }
        return outcomes;
      } catch (err) {
        if (isInfrastructureError(err) || !ctx.isActive()) throw err;
        failure = err;
        this.deps.log.warn(
          { topic: ctx.topic, partition: ctx.partition, offset: messages[0]!.offset, count: messages.length, attempt, err },
          'chunk_failed',
        );
      }
    }
    if (messages.length === 1) {
      const reason = `failed ${attempts} times: ${(failure as Error)?.message ?? String(failure)}`;
      return [{ kind: 'dlq', reason: reason.slice(0, 1000) }];
    }
    const half = Math.ceil(messages.length / 2);
    const first = await this.handleBounded(messages.slice(0, half), ctx);
    return [...first, ...(await this.handleBounded(messages.slice(half), ctx))];
  }

  private consumed(topic: string, partition: number, message: KafkaMessage, value: T): ConsumedMessage<T> {
    return {
      topic,
      partition,
      offset: message.offset,
      key: message.key ? message.key.toString() : null,
      timestamp: Number(message.timestamp),
      headers: message.headers,
      value,
      raw: message,
    };
  }

  private letter(topic: string, partition: number, message: KafkaMessage, reason: string, step: string) {
    this.deps.log.warn({ topic, partition, offset: message.offset, reason, step }, 'message_dead_lettered');
    return {
      key: message.key,
      value: message.value,
      headers: message.headers as never,
      reason,
      step,
      source: { topic, partition, offset: message.offset },
    };
  }

  /** Idempotent: finishes the chunk in flight, commits resolved offsets, leaves the group. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const consumer = this.consumer;
    if (this.commitTimer) clearInterval(this.commitTimer);
    if (consumer) {
      // The chunks in flight end at their next boundary (stopping); what they handled is
      // made durable and committed while this member still owns its partitions.
      while (this.running > 0) await new Promise((r) => setTimeout(r, 10));
      if (this.deps.writeBehind) {
        await this.deps.writeBehind.flush().catch((err: unknown) => this.deps.log.warn({ err }, 'flush_on_stop_failed'));
        await Promise.all([...this.commits.values()]);
      }
      await this.commitHandled();
    }
    this.consumer = null;
    if (consumer) await consumer.disconnect();
  }

  /** Liveness: false when the consumer crashed for good, or records wait and nothing was handled for `stallAfterMs`. */
  healthcheck(): { ok: boolean; detail?: string } {
    if (this.crashed) return { ok: false, detail: this.crashed.message };
    const idleMs = Date.now() - this.lastProgressAt;
    if (this.waiting.size > 0 && idleMs > (this.config.stallAfterMs ?? 120_000))
      return {
        ok: false,
        detail: `no progress for ${Math.round(idleMs / 1000)} s with records waiting on ${[...this.waiting].join(', ')}`,
      };
    return { ok: true };
  }

  /** Milliseconds since a chunk was last completed (for lag/stall metrics). */
  msSinceProgress(): number {
    return Date.now() - this.lastProgressAt;
  }
}
