export * from './api-client';
export * from './apply';
export * from './apply-plan';
export * from './main';
export * from './space-file';
export * from './space-state';
