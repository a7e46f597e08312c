// The one consumer wrapper (STYLE.md, "Kafka"):
// - eachBatch, no auto-resolve: an offset is resolved only after its message is
//   fully handled, including its DLQ write;
// - the batch is cut into chunks (bounded in-flight work); the handler gets a
//   whole chunk so it can do one Redis pipeline and one sendBatch per chunk;
// - heartbeat between chunks; stop early on `!isRunning() || isStale()`
//   (a rebalance took the partition away: the rest will be redelivered);
// - a message that cannot be decoded, or that the handler rejects, goes to the
//   DLQ with its reason and the consumer goes on;
// - a thrown error means "infrastructure trouble, try again": kafkajs commits
//   what was resolved and redelivers the rest (kafkajs src/consumer/runner.js).
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from '@engage/logging';
import type { DeadLetterWriter } from './dlq';

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

/** Handles a chunk of one partition, in offset order; returns one outcome per message, same order. */
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
}

export class BatchConsumer<T> {
  private consumer: Consumer | null = null;
  private lastProgressAt = Date.now();
  private stopping = false;
  private crashed: Error | null = null;

  constructor(
    private readonly config: BatchConsumerConfig,
    private readonly deps: BatchConsumerDeps<T>,
  ) {}

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
    await consumer.connect();
    for (const topic of this.config.topics) await consumer.subscribe({ topic, fromBeginning: this.config.fromBeginning ?? false });
    await consumer.run({
      eachBatchAutoResolve: false,
      autoCommit: true,
      autoCommitInterval: 1000,
      partitionsConsumedConcurrently: this.config.partitionsConsumedConcurrently ?? 1,
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const chunkSize = this.config.chunkSize ?? 500;
    const active = () => !this.stopping && isRunning() && !isStale();
    const ctx: ChunkContext = { topic: batch.topic, partition: batch.partition, heartbeat, isActive: active };

    for (let start = 0; start < batch.messages.length; start += chunkSize) {
      if (!active()) return;
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
        const outcomes = await this.deps.handle(decoded, ctx);
        if (outcomes.length !== decoded.length) {
          throw new TypeError(`handler returned ${outcomes.length} outcomes for ${decoded.length} messages`);
        }
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
    this.consumer = null;
    if (consumer) await consumer.disconnect();
  }

  /** Liveness: false only when the consumer crashed for good. */
  healthcheck(): { ok: boolean; detail?: string } {
    return this.crashed ? { ok: false, detail: this.crashed.message } : { ok: true };
  }

  /** Milliseconds since a chunk was last completed (for lag/stall metrics). */
  msSinceProgress(): number {
    return Date.now() - this.lastProgressAt;
  }
}
