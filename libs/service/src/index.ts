export * from './lifecycle';
export * from './runtime';
export * from './interval-job';
