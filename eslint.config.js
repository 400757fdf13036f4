import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      'docs/api/',
      'scratch/',
      '.gpu/',
      '.gl/',
      'runs/',
      'web-demo/dist/',
      'tests/fixtures/',
      '**/*.onnx',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // The demo's service worker runs in the browser's worker scope.
  {
    files: ['web-demo/public/sw.js'],
    languageOptions: { globals: { self: 'readonly', location: 'readonly', fetch: 'readonly', caches: 'readonly', Response: 'readonly' } },
  },
  // HTTP tests (and the browser bench) read JSON bodies and page state whose shape they check themselves.
  { files: ['tests/**/*.ts', 'bench/browser.ts'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
);
