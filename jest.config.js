/**
 * Jest projects (HOUSE-STYLE §3.7): `unit` (colocated *.test.ts, no servers), `integration`
 * (test/integration/*.int.test.ts against real PostgreSQL and NATS), `e2e` (tests-e2e, real
 * processes), `faults` (tests-e2e/faults, kills and restarts dependencies). TypeScript is compiled
 * by swc for speed; types are checked by `tsc -b` in the check step.
 */
const swc = [
  '@swc/jest',
  { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' }, sourceMaps: 'inline' },
];
const common = {
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: {
    '^@hubbub/proto$': '<rootDir>/proto/src/index.ts',
    '^@hubbub/([a-z-]+)$': '<rootDir>/packages/$1/src/index.ts',
  },
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  modulePathIgnorePatterns: ['<rootDir>/.*/dist/'],
  testEnvironment: 'node',
};
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{packages,services,proto}/**/src/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: [
        '<rootDir>/{packages,services}/**/test/integration/**/*.int.test.ts',
        '<rootDir>/proto/test/**/*.int.test.ts',
      ],
    },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/tests-e2e/e2e/**/*.e2e.test.ts'] },
    { ...common, displayName: 'faults', testMatch: ['<rootDir>/tests-e2e/faults/**/*.fault.test.ts'] },
  ],
};
