export * from './registry';
export * from './catalog';
export * from './http-overrides';
export * from './audiences';
export * from './vendor-answers';
export * from './full-audience';
