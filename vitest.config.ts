import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'marbles',
          include: ['test/marbles/**/*.spec.ts'],
        },
      },
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Tests share one broker and one S3 server on a 2-core machine: run files one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
