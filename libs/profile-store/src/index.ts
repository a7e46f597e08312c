export * from './change-records';
export * from './computations.registry';
export * from './profile-state.repository';
export * from './change-committer';
export * from './audience-csv';
export * from './account-evaluation';
export * from './audience-csv-pages';
export * from './engine-event';
