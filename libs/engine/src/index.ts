export * from './ast';
export * from './cli';
export * from './dependencies';
export * from './event';
export { MAX_PRIMARY_EXPRESSIONS, parseQuery } from './parser';
export * from './printer';
export * from './query-error';
export { evaluateReference, type EvaluationContext } from './reference-evaluator';
export * from './profile-evaluation';
