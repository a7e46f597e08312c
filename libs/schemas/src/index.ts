export * from './generated/avro';
export * from './registry';
