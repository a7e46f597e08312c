export * from './payloads';
export * from './retry-policy';
