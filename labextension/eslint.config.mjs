// ESLint flat config of the Scans panel: `jlpm lint` (with `prettier --check`).
// Formatting is prettier's alone (.prettierrc); these rules are about the code.
import js from '@eslint/js';
import reactHooks from 'eslint-plugin-react-hooks';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig([
  globalIgnores(['node_modules/', '.yarn/', 'lib/', '../kernel_ext/']),
  js.configs.recommended,
  tseslint.configs.recommended,
  reactHooks.configs.flat.recommended,
  {
    files: ['**/*.{ts,tsx}'],
    rules: {
      // A deliberately unused argument or binding is spelt with a leading underscore.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }
      ],
      eqeqeq: ['error', 'smart'],
      curly: ['error', 'all'],
      'prefer-const': 'error',
      'no-console': ['error', { allow: ['debug', 'warn', 'error'] }]
    }
  },
  {
    // Node scripts: this file and the test runner's config.
    files: ['**/*.mjs', '**/*.mts'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } }
  }
]);
