import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Suites start real redis-server processes; two cores do not gain from more workers.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        // Pure logic (selector, circuit, command table, config): no processes needed.
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**', '**/node_modules/**'],
          globalSetup: ['test/setup/global.ts'],
        },
      },
    ],
  },
});
