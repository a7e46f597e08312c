// The local HTTP receiver lives with the dispatcher's fast tests, which
// cannot import from test/ (their project's rootDir); end-to-end tests use the
// same one. NOTE: its home should be libs/testing.
export * from '../../services/dispatcher/src/testing/receiver';
