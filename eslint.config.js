// Type-checked lint. Layer boundaries (DESIGN.md §2) are enforced with restricted imports.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const layer = (files, patterns) => ({
  files,
  rules: { 'no-restricted-imports': ['error', { patterns }] },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bin/**', '.tmp/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unnecessary-condition': ['error', { allowConstantLoopConditions: true }],
    },
  },
  // The floor stands alone: it sees shared types only, never the gate or anything with I/O.
  layer(['floor/**/*.ts'], [
    { group: ['../src/*', '!../src/shared', '../src/*/**', '!../src/shared/**'], message: 'floor/ may import only src/shared types.' },
    { group: ['node:fs', 'node:fs/*', 'fs', 'node:net', 'node:child_process'], message: 'floor/ does no I/O.' },
  ]),
  // The gate is pure: no file system, network, processes or clock.
  layer(['src/gate/**/*.ts'], [
    { group: ['node:fs', 'node:fs/*', 'fs', 'node:net', 'node:child_process', '../audit/*', '../config/*', '../cli/*'], message: 'src/gate is pure; it may import floor, shared and errors only.' },
  ]),
  layer(['src/config/**/*.ts'], [
    { group: ['../audit/*', '../cli/*', '../platform/*'], message: 'src/config may import errors, shared and gate types only.' },
  ]),
  layer(['src/platform/**/*.ts'], [
    { group: ['../audit/*', '../config/*', '../cli/*'], message: 'src/platform implements gate interfaces; it may import gate types, errors and floor paths.' },
  ]),
  layer(['src/tools/**/*.ts'], [
    { group: ['../audit/*', '../config/*', '../cli/*', '../platform/*', '../transport/*', '../identity/*', '@grpc/*', 'ws'], message: 'src/tools runs approved tools; it may import gate types, errors and floor paths only.' },
  ]),
  layer(['src/identity/**/*.ts'], [
    { group: ['../gate/*', '../audit/*', '../cli/*', '../tools/*', '../transport/*', '@grpc/*', 'ws'], message: 'src/identity may import errors and config file helpers only.' },
  ]),
  {
    // The transport may use the gate, tools, audit and config only as types; the daemon wires them.
    files: ['src/transport/**/*.ts'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [
        { group: ['../daemon/*', '../cli/*', '../../commands/*'], message: 'src/transport sits below the daemon and CLI.' },
        { group: ['../gate/*', '../tools/*', '../audit/*', '../config/*', '../../floor/*'], allowTypeImports: true, message: 'src/transport imports these layers as types only.' },
        { group: ['node:child_process'], message: 'src/transport runs no processes.' },
      ] }],
    },
  },
  {
    // Only src/transport talks gRPC or WebSocket (DESIGN.md §2).
    files: ['src/**/*.ts', 'commands/**/*.ts', 'floor/**/*.ts'],
    ignores: ['src/transport/**'],
    rules: { 'no-restricted-syntax': ['error', { selector: "ImportDeclaration[source.value=/^(@grpc\\u002F|ws$)/]", message: 'Only src/transport imports @grpc/* or ws.' }] },
  },
  layer(['src/audit/**/*.ts'], [
    { group: ['../gate/*', '../config/*', '../cli/*'], message: 'src/audit may import errors and shared only.' },
  ]),
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-floating-promises': 'error',
    },
  },
);
