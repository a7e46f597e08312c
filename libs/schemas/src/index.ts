export * from './generated/avro';
export * from './registry';
export * from './event-key';
