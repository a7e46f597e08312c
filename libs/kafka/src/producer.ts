import type { Kafka, Producer } from 'kafkajs';
import { javaCompatiblePartitioner } from './partitioner';

export interface ProducerOptions {
  /** Set for a transactional producer (exactly-once consume-transform-produce). */
  transactionalId?: string;
}

/**
 * A producer with acks=all (kafkajs's default for send) and one request in
 * flight per broker (a retried batch is never overtaken by a later one), with
 * the Java-compatible partitioner so keys land where other Kafka clients put
 * them (partitioner.ts: the same hash as kafkajs's DefaultPartitioner, cheaper).
 *
 * NOT idempotent, unless transactional (which requires it). TRICKY: kafkajs's
 * idempotent producer rolls a partition's sequence number back when a produce
 * request fails, even one that timed out after the broker wrote it; the next,
 * different batch then reuses that sequence, and the broker drops it as a
 * duplicate while acknowledging it: a send that resolves, a record that is
 * not in the log (producer.int.test.ts reproduces it; found by the chaos
 * suite's broker SIGSTOP round as a change record missing after the resume).
 * Without idempotence a retry can at worst write a batch twice, and every
 * record we produce carries an id its consumers dedupe on.
 *
 * TRICKY: upstream kafkajs could also resolve a send without writing some of
 * its partitions (a broker dies, its partitions move to a broker that had
 * already answered, the retry skips them: tulios/kafkajs issue 1303; found by
 * bench/broker-failover as acknowledged events missing). Our patch of
 * sendMessages.js (libs/kafka/patches) tracks acknowledgements per partition
 * and resends every unacknowledged partition to its current leader
 * (send-retry.test.ts).
 */
export function createProducer(kafka: Kafka, opts: ProducerOptions = {}): Producer {
  return kafka.producer({
    idempotent: opts.transactionalId !== undefined,
    maxInFlightRequests: 1,
    transactionalId: opts.transactionalId,
    createPartitioner: javaCompatiblePartitioner,
    allowAutoTopicCreation: false,
  });
}
