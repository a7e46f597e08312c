import type { IHeaders, Producer } from 'kafkajs';

export interface DeadLetter {
  /** The original record, bytes untouched. */
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers?: IHeaders;
  /** Why it failed for good: what, where, which limit. */
  reason: string;
  /** The pipeline step that gave up (`decode`, `resolve`, `deliver`, ...). */
  step: string;
  source?: { topic: string; partition: number; offset: string };
}

export const DLQ_HEADERS = {
  reason: 'dlq-reason',
  step: 'dlq-step',
  time: 'dlq-time',
  sourceTopic: 'dlq-source-topic',
  sourcePartition: 'dlq-source-partition',
  sourceOffset: 'dlq-source-offset',
} as const;

/** The one DLQ helper: keeps the original key/value/headers and adds reason/step/time headers. */
export class DeadLetterWriter {
  constructor(
    private readonly config: { topic: string },
    private readonly deps: { producer: Producer; now?: () => number },
  ) {}

  get topic(): string {
    return this.config.topic;
  }

  /** Writes all letters in one request; resolves once the broker has acked them. */
  async write(letters: DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    const now = new Date(this.deps.now?.() ?? Date.now()).toISOString();
    await this.deps.producer.send({
      topic: this.config.topic,
      messages: letters.map((l) => ({
        key: l.key,
        value: l.value,
        headers: {
          ...(l.headers ?? {}),
          [DLQ_HEADERS.reason]: l.reason,
          [DLQ_HEADERS.step]: l.step,
          [DLQ_HEADERS.time]: now,
          ...(l.source
            ? {
                [DLQ_HEADERS.sourceTopic]: l.source.topic,
                [DLQ_HEADERS.sourcePartition]: String(l.source.partition),
                [DLQ_HEADERS.sourceOffset]: l.source.offset,
              }
            : {}),
        },
      })),
    });
  }
}
