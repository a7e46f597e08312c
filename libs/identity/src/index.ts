export * from './external-ids';
export * from './rules';
export * from './rules-validation';
