// ESLint flat config: typescript-eslint with type information, floating promises as errors,
// and the workflow sandbox rules (no Node built-ins, no activity implementations, no I/O libraries).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

const nodeBuiltins = [
  'assert',
  'buffer',
  'child_process',
  'cluster',
  'crypto',
  'dgram',
  'dns',
  'events',
  'fs',
  'fs/promises',
  'http',
  'http2',
  'https',
  'net',
  'os',
  'path',
  'perf_hooks',
  'process',
  'readline',
  'stream',
  'timers',
  'tls',
  'url',
  'util',
  'v8',
  'vm',
  'worker_threads',
  'zlib',
];

export default tseslint.config(
  {
    ignores: ['node_modules/**', '.recflow/**', '.tools/**', 'dist/**', 'bench/results/**', 'test/.tmp/**', '**/*.py'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.mjs', 'scripts/*.mjs', 'bin/*.js'] } },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // No import cycles (type-only imports included: a cycle of types is still a tangle).
    files: ['**/*.ts'],
    ...importX.flatConfigs.typescript,
    settings: {
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver-next': [createTypeScriptImportResolver()],
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  {
    files: ['**/*.mjs', 'bin/*.js'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        require: 'readonly',
        module: 'readonly',
        __dirname: 'readonly',
      },
    },
  },
  {
    files: ['bin/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({ name, message: 'Workflow code is deterministic: no Node built-ins.' })),
            ...nodeBuiltins.map((name) => ({
              name: `node:${name}`,
              message: 'Workflow code is deterministic: no Node built-ins.',
            })),
            { name: '@temporalio/activity', message: 'Activities run on workers, not in workflows.' },
            { name: '@temporalio/worker', message: 'Worker code does not belong in workflows.' },
            { name: '@temporalio/client', message: 'Use child workflows or activities instead of a client.' },
          ],
          patterns: [
            {
              group: ['**/activities/*', '!**/activities/index'],
              message: 'Import activity types with `import type` from activities/.',
              allowTypeImports: true,
            },
            {
              group: ['**/serving/**', '**/workers/**', '**/clients/**'],
              message: 'Workflows import only @temporalio/workflow, workflows/ and sandbox-safe lib/.',
            },
            {
              group: ['onnxruntime-node', '@tensorflow/*', 'danfojs-node', 'prom-client', 'fastify'],
              message: 'No I/O libraries in workflows.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'No process.env in workflows: pass configuration in the input.' },
        { name: 'setInterval', message: 'Use sleep() from @temporalio/workflow.' },
      ],
      'no-restricted-properties': [
        'error',
        {
          object: 'Math',
          property: 'random',
          message: 'Math.random is replaced in the sandbox; prefer uuid4() or a seeded value from the input.',
        },
      ],
    },
  },
);
