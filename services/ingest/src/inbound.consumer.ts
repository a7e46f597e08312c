// engage.events.inbound -> engage.events.raw: Segment calls that producers
// wrote to Kafka directly (README "Producing to Kafka directly"). Each chunk of
// a partition is validated record by record (inbound-record.ts: the HTTP
// path's rules) and its valid events go to the publisher as one request: the
// same dedupe claim and Kafka send as HTTP requests, coalesced with them. A
// record that fails goes to engage.events.inbound.dlq with its reason, and the
// partition goes on.
//
// Order: one publish per chunk, its events in offset order, one send (kafkajs
// groups them per partition in that order); the next chunk of the partition
// waits for it. So the order a producer gave one key is the order on
// engage.events.raw.
// NOTE: except an event whose messageId another request was still writing
// (the same call sent over HTTP at the same moment): it waits for that write
// and is dropped as its duplicate, or written after its chunk's other events.
//
// NOTE: no per-source rate limit here (HTTP answers 429): a record refused
// for its rate would be lost to the DLQ, and a consumer is its own
// backpressure: what the ingest cannot take yet waits in the topic as lag.
import {
  BatchConsumer,
  DeadLetterWriter,
  dlq,
  ok,
  RetriableError,
  type ConsumedMessage,
  type Kafka,
  type MessageOutcome,
  type Producer,
} from '@engage/kafka';
import type { Logger } from '@engage/logging';
import type { Counter } from 'prom-client';
import type { PublishOutcome } from './events.publisher';
import { inboundToEvent, type InboundResult } from './inbound-record';
import type { AcceptedEvent } from './segment-spec';
import type { SourceLookup } from './source-auth';

export interface InboundConsumerConfig {
  groupId: string;
  topic: string;
  dlqTopic: string;
  /** Records per chunk: one dedupe claim and one Kafka send each. */
  chunkSize: number;
  /** Partitions handled at once by this replica. */
  concurrency: number;
  sessionTimeoutMs?: number;
  /** BatchConsumerConfig.commitIntervalMs (KAFKA_COMMIT_INTERVAL_MS). */
  commitIntervalMs?: number;
  /**
   * How long after its append a record whose write key matches no source is
   * looked up again before it is dead-lettered, ms: a source created just
   * before its first record may not have reached this replica's config yet.
   */
  unknownWriteKeyGraceMs: number;
}

export interface InboundMetrics {
  /** Records by outcome: published (accepted or duplicate) or dead_lettered. */
  records: Counter<'outcome'>;
}

export interface InboundConsumerDeps {
  kafka: Kafka;
  /** For the dead letters. */
  producer: Producer;
  sources: SourceLookup;
  publisher: { publish(events: AcceptedEvent[], bytes?: number): Promise<PublishOutcome> };
  log: Logger;
  now?: () => number;
  metrics?: InboundMetrics;
}

const LOOKUP_POLL_MS = 50;

/** The step a dead letter of this topic names (dlq-step header). */
export const INBOUND_STEP = 'ingest-inbound';

export class InboundStep {
  constructor(
    private readonly config: Pick<InboundConsumerConfig, 'unknownWriteKeyGraceMs'>,
    private readonly deps: Pick<InboundConsumerDeps, 'sources' | 'publisher' | 'now'>,
  ) {}

  async handle(messages: Array<ConsumedMessage<Buffer | null>>): Promise<MessageOutcome[]> {
    const records = messages.map((m) => ({
      topic: m.topic,
      partition: m.partition,
      offset: m.offset,
      timestamp: m.timestamp,
      value: m.value,
      headers: m.headers,
    }));
    const results: InboundResult[] = records.map((r) => inboundToEvent(r, this.deps.sources));
    await this.lookUpAgain(records, results);

    const events: AcceptedEvent[] = [];
    let bytes = 0;
    results.forEach((r, i) => {
      if (!r.ok) return;
      events.push(r.event);
      bytes += records[i]!.value!.length;
    });
    const outcome = await this.deps.publisher.publish(events, bytes);
    if (outcome.inFlight > 0) {
      // Written by nobody yet, answered by nobody: the chunk is read again
      // (what this publish wrote is then a duplicate, dropped).
      throw new RetriableError(`${outcome.inFlight} event(s) with a messageId still being written by another request`);
    }
    return results.map((r) => (r.ok ? ok : dlq(r.reason, INBOUND_STEP)));
  }

  /**
   * Records of unknown write keys appended within the grace period: looked up
   * until it ends or they are found.
   * NOTE: the chunk waits meanwhile, at most the grace period (also when a
   * record's timestamp is in the future: a topic created without
   * LogAppendTime takes the producer's). Records of unknown keys arriving
   * all the time would slow their partitions to a chunk per grace period.
   */
  private async lookUpAgain(records: Parameters<typeof inboundToEvent>[0][], results: InboundResult[]): Promise<void> {
    const now = () => this.deps.now?.() ?? Date.now();
    const grace = this.config.unknownWriteKeyGraceMs;
    const until = now() + grace;
    const within = (i: number) => {
      const r = results[i]!;
      return !r.ok && r.unknownWriteKey === true && now() < Math.min(records[i]!.timestamp + grace, until);
    };
    let waiting = results.flatMap((_, i) => (within(i) ? [i] : []));
    while (waiting.length > 0) {
      await new Promise((r) => setTimeout(r, LOOKUP_POLL_MS));
      for (const i of waiting) results[i] = inboundToEvent(records[i]!, this.deps.sources);
      waiting = waiting.filter(within);
    }
  }
}

export function createInboundConsumer(config: InboundConsumerConfig, deps: InboundConsumerDeps): BatchConsumer<Buffer | null> {
  const step = new InboundStep(config, deps);
  return new BatchConsumer<Buffer | null>(
    {
      groupId: config.groupId,
      topics: [config.topic],
      fromBeginning: true,
      chunkSize: config.chunkSize,
      partitionsConsumedConcurrently: config.concurrency,
      sessionTimeoutMs: config.sessionTimeoutMs,
      commitIntervalMs: config.commitIntervalMs,
    },
    {
      kafka: deps.kafka,
      log: deps.log,
      step: INBOUND_STEP,
      // The bytes as written: inboundToEvent judges them, so nothing fails here.
      decode: (m) => m.value,
      handle: (messages) => step.handle(messages),
      deadLetters: new DeadLetterWriter({ topic: config.dlqTopic }, { producer: deps.producer }),
      onChunk: (s) => {
        deps.metrics?.records.inc({ outcome: 'published' }, s.messages - s.dlq - s.dropped);
        deps.metrics?.records.inc({ outcome: 'dead_lettered' }, s.dlq);
      },
    },
  );
}

/** kafkajs ConfigResourceTypes.TOPIC (the enum is not re-exported by @engage/kafka). */
const TOPIC_RESOURCE = 2;

/**
 * The topic's message.timestamp.type. Not LogAppendTime (a topic an operator
 * created by hand): the producers' clocks become the receive times.
 */
export async function inboundTimestampType(kafka: Kafka, topic: string): Promise<string | undefined> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: ['message.timestamp.type'] }],
    });
    return resources[0]?.configEntries.find((e) => e.configName === 'message.timestamp.type')?.configValue;
  } finally {
    await admin.disconnect();
  }
}
