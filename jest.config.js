// Two projects: `unit` (pure logic, no infrastructure) and `integration`
// (*.int.test.ts and test/**, against real Kafka, schema registry and Redis,
// started by the global setup when none is given).
// ts-jest in transpile-only mode: `npm run build` is what type-checks.
const transform = { '^.+\\.tsx?$': ['ts-jest', { diagnostics: false, tsconfig: '<rootDir>/tsconfig.base.json' }] };
const moduleNameMapper = { '^@engage/([^/]+)$': '<rootDir>/libs/$1/src' };
const testPathIgnorePatterns = ['/node_modules/', '/dist/', '/.cache/'];

module.exports = {
  // Integration tests wait on real brokers; unit tests finish far below this.
  testTimeout: 120000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      moduleNameMapper,
      // NOTE: `*.int.test.ts` also matches `*.test.ts`; the ignore pattern keeps it out.
      testPathIgnorePatterns: [...testPathIgnorePatterns, '\\.int\\.test\\.ts$'],
      testMatch: ['<rootDir>/{libs,services}/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      moduleNameMapper,
      testPathIgnorePatterns,
      testMatch: ['<rootDir>/{libs,services}/**/*.int.test.ts', '<rootDir>/test/**/*.test.ts'],
      globalSetup: '<rootDir>/test/setup/global-setup.js',
      globalTeardown: '<rootDir>/test/setup/global-teardown.js',
    },
  ],
};
