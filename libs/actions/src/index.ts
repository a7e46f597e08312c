export * from './registry';
export * from './catalog';
