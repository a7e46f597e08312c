export * from './definition';
export * from './walk';
