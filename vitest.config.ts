import { defineConfig } from 'vitest/config';

// Two cores: at most two test files at once, each in its own process (anvil, PGlite and
// llama.cpp hold native resources that must not share a worker thread).
export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
