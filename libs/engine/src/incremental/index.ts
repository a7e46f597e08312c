export { compileIncremental, type IncrementalContext, type IncrementalEvaluator, type IncrementalState } from './evaluator';
export { FALLBACK_CAP } from './plan';
export { MODE_CAP, UNIQUE_CAP } from './stores';
