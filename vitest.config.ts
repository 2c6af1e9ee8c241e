import { defineConfig } from 'vitest/config';

/**
 * The unit project: pure functions and in-process checks (no chain, no model, no browser, no servers of
 * their own), fast enough to run on every save (`npm run test:unit`). Everything else is end to end.
 * `npm test` runs both. A test file is end to end unless it is listed here.
 */
const UNIT = [
  'test/**/*.test.ts',
  // core's own tests, but not its long equivalence runs against viem (receipt-hashing, recover)
  'packages/core/test/keccak.test.ts',
  'packages/core/test/pricing.test.ts',
  'packages/core/test/protocol.test.ts',
  'packages/core/test/receipt.test.ts',
  'packages/core/test/score.test.ts',
  'packages/core/test/audit.test.ts',
  'packages/core/test/coalesce.test.ts',
  'packages/chain/src/errors.test.ts',
  'packages/chain/src/utils/**/*.test.ts',
  'packages/inference/test/text-stream.test.ts',
  'packages/inference/test/sampler.test.ts',
  'packages/diffusion/test/schedule.test.ts',
  'packages/tee/test/envelope.test.ts',
  'packages/tee/test/anchors.test.ts',
  'packages/daemon/test/env.test.ts',
  'packages/daemon/test/key.test.ts',
  'packages/daemon/test/logger.test.ts',
  'packages/daemon/test/metrics.test.ts',
  'packages/daemon/test/run.test.ts',
  'packages/gateway/test/seed.test.ts',
  'packages/gateway/test/units.test.ts',
  'packages/gateway/test/stream.test.ts',
  'packages/gateway/test/room.test.ts',
  'packages/worker/test/node/units.test.ts',
  'packages/worker/test/node/vram.test.ts',
  'packages/worker/test/node/seq-guard.test.ts',
  'packages/worker/test/node/options.test.ts',
  'packages/validator/test/options.test.ts',
  'packages/validator/test/confidential-judge.test.ts',
  'packages/dashboard/test/format.test.ts',
  'packages/cli/test/service-start.test.ts',
];
const ALL = ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'test/**/*.test.ts'];

// Two cores: at most two test files at once, each in its own process (anvil, PGlite and
// llama.cpp hold native resources that must not share a worker thread).
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      // Unit files share their worker's module cache (no fresh process per file): importing the packages
      // once instead of 32 times is most of a unit run. They keep no global state between files.
      { extends: true, test: { name: 'unit', include: UNIT, isolate: false } },
      { extends: true, test: { name: 'e2e', include: ALL, exclude: UNIT } },
    ],
  },
});
