export * from './payloads';
export * from './retry-policy';
export * from './list-destination';
export * from './facebook-audiences';
export * from './actions-plan';
export * from './trait-activation';
export * from './full-audience';
