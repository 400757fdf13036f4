import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // onnxruntime sessions and worker threads: forks keep native state apart between files.
    pool: 'forks',
    fileParallelism: false,
  },
});
