import { defineConfig } from 'vitest/config';

/**
 * Tests use real servers on 127.0.0.1, real files and child processes, so they run in forked
 * processes with generous timeouts; CI has 2 cores. The JSON report feeds the summary line
 * printed by .ci/run. test/engines/global-setup.ts starts Ceph and PostgreSQL only for the files
 * that ask for them, and stops them at teardown (1-2 s, 13 s seen under heavy load).
 */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    globalSetup: ['test/global-setup.ts', 'test/engines/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 90_000,
    reporters: ['default', ['json', { outputFile: '.vitest-report.json' }]],
  },
});
