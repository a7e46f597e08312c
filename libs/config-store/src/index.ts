export * from './config-store';
export * from './config-writer';
export * from './model';
export * from './status';
export * from './history';
export * from './destination-secrets';
