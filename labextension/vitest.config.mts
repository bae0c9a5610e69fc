// Unit tests of the panel's pure helpers (`jlpm test`); they are not part of the build
// (tsconfig.json compiles src/ only).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node'
  }
});
