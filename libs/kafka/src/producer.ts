import type { Kafka, Producer } from 'kafkajs';
import { javaCompatiblePartitioner } from './partitioner';

export interface ProducerOptions {
  /** Set for a transactional producer (exactly-once consume-transform-produce). */
  transactionalId?: string;
}

/**
 * An idempotent producer (acks=all, broker-side dedupe of retries), with the
 * Java-compatible partitioner so keys land where other Kafka clients put them
 * (partitioner.ts: the same hash as kafkajs's DefaultPartitioner, cheaper).
 */
export function createProducer(kafka: Kafka, opts: ProducerOptions = {}): Producer {
  return kafka.producer({
    idempotent: true,
    // NOTE: kafkajs only guarantees idempotence/order with one request in flight.
    maxInFlightRequests: 1,
    transactionalId: opts.transactionalId,
    createPartitioner: javaCompatiblePartitioner,
    allowAutoTopicCreation: false,
  });
}
