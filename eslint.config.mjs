// Type-aware lint with the boundary rules of HOUSE-STYLE §3.8 (modelled on temporal's eslint.config.mjs).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import prettier from 'eslint-config-prettier';

const IO_MODULES = [
  'node:*',
  'net',
  'tls',
  'http',
  'https',
  'fs',
  'dgram',
  'child_process',
  'ws',
  'ssh2',
  'nats',
  '@nats-io/*',
  'knex',
  'pg',
  'pino',
  '@grpc/*',
  'timers',
  'node:timers',
];

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'proto/gen/**',
      '**/*.js',
      '**/*.mjs',
      '**/*.cjs',
      'test-output/**',
      '.data/**',
      '**/public/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'separate-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      'import-x/no-cycle': 'error',
      'import-x/no-relative-packages': 'error',
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@hubbub/*/src/*', '@hubbub/*/dist/*'], message: 'Import a package by its name, not its files.' },
            { group: ['**/services/**', '../../services/*'], message: 'A service never imports another service.' },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'Read env only in main.ts/config.ts; pass config in.' },
      ],
    },
  },
  {
    // Protocol cores do no I/O (HOUSE-STYLE §3.2): bytes in, events and bytes out.
    files: ['services/*/src/protocol/**/*.ts'],
    ignores: ['services/*/src/protocol/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: IO_MODULES, message: 'protocol/ must not do I/O.' }] }],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'setImmediate', 'process'],
    },
  },
  {
    // Composition roots, config, tests, scripts and benchmarks may read the environment.
    files: ['**/main.ts', '**/config.ts', '**/cli.ts', '**/*.test.ts', 'tests-e2e/**/*.ts', 'packages/testing/**/*.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['**/*.test.ts', 'tests-e2e/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  prettier,
);
