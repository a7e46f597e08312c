import { Partitioners, type Kafka, type Producer } from 'kafkajs';

export interface ProducerOptions {
  /** Set for a transactional producer (exactly-once consume-transform-produce). */
  transactionalId?: string;
}

/**
 * An idempotent producer (acks=all, broker-side dedupe of retries), with the
 * Java-compatible partitioner so keys land where other Kafka clients put them.
 */
export function createProducer(kafka: Kafka, opts: ProducerOptions = {}): Producer {
  return kafka.producer({
    idempotent: true,
    // NOTE: kafkajs only guarantees idempotence/order with one request in flight.
    maxInFlightRequests: 1,
    transactionalId: opts.transactionalId,
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
}
