export * from './config-store';
export * from './config-writer';
export * from './model';
export * from './status';
export * from './destination-secrets';
