export * from './admin';
export * from './batch-consumer';
export * from './client';
export * from './dlq';
export * from './partitioner';
export * from './producer';
export * from './retry';
export * from './topics';
export type { Kafka, Producer, KafkaMessage, IHeaders } from 'kafkajs';
