export * from './external-ids';
export * from './rules';
export * from './rules-validation';
export * from './reference-graph';
