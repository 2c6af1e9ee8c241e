import { describe, expect, it } from 'vitest';
import * as api from '../../src/index.ts';
import { backoffDelay } from '../../src/index.ts';
import { createWorkerMetrics } from '../../src/metrics/registry.ts';

describe('backoffDelay', () => {
  const cfg = { initialDelayMs: 500, maxDelayMs: 30_000 };
  it('doubles from the initial delay up to the cap', () => {
    expect([0, 1, 2, 3, 6, 7, 50].map((a) => backoffDelay(a, cfg, () => 1))).toEqual([
      500, 1000, 2000, 4000, 30_000, 30_000, 30_000,
    ]);
  });
  it('jitters between half and all of the step', () => {
    expect(backoffDelay(2, cfg, () => 0)).toBe(1000);
    expect(backoffDelay(2, cfg, () => 0.5)).toBe(1500);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(10, cfg);
      expect(d).toBeGreaterThanOrEqual(15_000);
      expect(d).toBeLessThanOrEqual(30_000);
    }
  });
});

describe('metrics', () => {
  it('exports the worker series', async () => {
    const m = createWorkerMetrics();
    m.activeJobs.set({ model: 'm' }, 1);
    const text = await m.render();
    for (const name of [
      'aipg_worker_jobs_total',
      'aipg_worker_tokens_total',
      'aipg_worker_job_errors_total',
      'aipg_worker_active_jobs',
      'aipg_worker_gateway_connected',
      'aipg_worker_job_duration_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text.endsWith('\n')).toBe(true);
  });
});

describe('public API', () => {
  it('exports exactly these names (a change here is an API change)', () => {
    expect(Object.keys(api).sort()).toEqual([
      'ADVERSARY_KINDS',
      'AdversaryError',
      'AdversaryErrorCode',
      'BACKEND_KINDS',
      'BondRequirementError',
      'ChainMismatchError',
      'GATEWAY_WORKER_PATH',
      'HardwareRequirementError',
      'IMAGE_ADVERSARY_KINDS',
      'INJECTED_TEXT',
      'MIN_VRAM_MB',
      'ModelRegistryError',
      'NETWORKS',
      'OVERBILL_FACTOR',
      'RECOMMENDED_VRAM_MB',
      'WORKER_DEFAULTS',
      'WORKER_ENV',
      'WORKER_VERSION',
      'WorkerConfigError',
      'WorkerErrorCode',
      'backoffDelay',
      'buildTextReceipt',
      'checkHardwareRule',
      'checkServedModels',
      'checkWorkerBond',
      'createAdversaryBackend',
      'createDiffusionBackend',
      'createImageAdversaryBackend',
      'createLlamaCppBackend',
      'createSimulatedWorkerTee',
      'createWorker',
      'createWorkerCommon',
      'createWorkerOptions',
      'detectHardware',
      'isImageAdversary',
      'isSubstitute',
      'normalizeGatewayUrl',
      'parseNvidiaSmi',
      'parseRocmSmi',
      'runWorkerStart',
      'signReceipt',
      'startWorker',
      'twinBits',
    ]);
  });
});
