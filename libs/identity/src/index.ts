export * from './external-ids';
export * from './rules';
