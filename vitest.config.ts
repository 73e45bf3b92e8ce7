import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Two files at a time, each in its own process: every file makes its own databases (SQLite
    // files, PostgreSQL databases with unique names) and listens on ports the system picks.
    pool: 'forks',
    maxWorkers: 2,
    // The server and the command line the tests start run compiled (test/helpers/compiled.ts).
    globalSetup: ['test/helpers/compiled.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
