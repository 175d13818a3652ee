import { defineConfig } from 'vitest/config';

/**
 * Tests use real servers on 127.0.0.1, real files and child processes, so they run in forked
 * processes with generous timeouts; CI has 2 cores. The JSON report feeds the summary line
 * printed by .ci/run.
 */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    reporters: ['default', ['json', { outputFile: '.vitest-report.json' }]],
  },
});
