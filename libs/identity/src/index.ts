export * from './external-ids';
export * from './pattern-safety';
export * from './rules';
export * from './rules-validation';
export * from './reference-graph';
export * from './identity-graph.store';
