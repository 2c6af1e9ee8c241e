import type { Hardware } from '@aipg/core';
import { HardwareRequirementError, WorkerErrorCode } from '../errors.ts';

/** docs/DESIGN.md §1: a worker needs a GPU with 4 GB of VRAM; 12 GB or more is recommended. */
export const MIN_VRAM_MB = 4 * 1024;
export const RECOMMENDED_VRAM_MB = 12 * 1024;
/**
 * Cards report a little less than their marketed size (a "12 GB" RTX 4070 reports 12,282 MiB), so
 * a card counts as N GB when it reports at least 97% of N GiB.
 */
const REPORTED_SIZE_TOLERANCE = 0.97;

const gb = (mib: number) => `${(mib / 1024).toFixed(mib % 1024 === 0 ? 0 : 1)} GB`;

export type HardwareRuleContext = {
  /** A local chain (chain id 31337 / network devnet): CPU-only workers are allowed. */
  devnet: boolean;
  network: string;
};

export type HardwareVerdict = {
  /** The GPU the rule was applied to (the one with the most VRAM), if any. */
  bestGpu: Hardware['gpus'][number] | undefined;
  warnings: string[];
};

/**
 * Applies the hardware rule. On a public network: no GPU, or a best GPU under 4 GB, refuses to start
 * (`HardwareRequirementError`); under 12 GB warns. On a devnet anything goes (CPU-only included).
 */
export function checkHardwareRule(hardware: Hardware, context: HardwareRuleContext): HardwareVerdict {
  const bestGpu = [...hardware.gpus].sort((a, b) => b.vramMb - a.vramMb)[0];
  const warnings: string[] = [];
  if (context.devnet) return { bestGpu, warnings };
  if (!bestGpu) {
    throw new HardwareRequirementError(
      `a GPU with at least ${gb(MIN_VRAM_MB)} of VRAM is required on ${context.network}, and none was found (nvidia-smi / rocm-smi); CPU-only workers may only join a devnet`,
      WorkerErrorCode.noGpu,
    );
  }
  if (bestGpu.vramMb < MIN_VRAM_MB * REPORTED_SIZE_TOLERANCE) {
    throw new HardwareRequirementError(
      `a GPU with at least ${gb(MIN_VRAM_MB)} of VRAM is required on ${context.network}; the largest found is ${bestGpu.name} with ${gb(bestGpu.vramMb)}`,
      WorkerErrorCode.vramTooLow,
    );
  }
  if (bestGpu.vramMb < RECOMMENDED_VRAM_MB * REPORTED_SIZE_TOLERANCE) {
    warnings.push(
      `${bestGpu.name} has ${gb(bestGpu.vramMb)} of VRAM; ${gb(RECOMMENDED_VRAM_MB)} or more is recommended: larger models will not fit and this worker will get fewer jobs`,
    );
  }
  return { bestGpu, warnings };
}

/** Warnings for served models whose registered minimum VRAM exceeds the largest GPU (public networks only). */
export function checkModelVram(
  verdict: HardwareVerdict,
  models: readonly { name: string; minVramMb: number }[],
  context: HardwareRuleContext,
): string[] {
  if (context.devnet) return [];
  const vram = verdict.bestGpu?.vramMb ?? 0;
  const alone = models
    .filter((m) => m.minVramMb > 0 && vram < m.minVramMb * REPORTED_SIZE_TOLERANCE)
    .map(
      (m) =>
        `model ${m.name} is registered with a minimum of ${gb(m.minVramMb)} of VRAM; the largest GPU here has ${gb(vram)}`,
    );
  // Chat and image models served by one process share the card: their minimums add up.
  const total = models.reduce((n, m) => n + m.minVramMb, 0);
  const together =
    models.filter((m) => m.minVramMb > 0).length > 1 &&
    alone.length === 0 &&
    vram < total * REPORTED_SIZE_TOLERANCE
      ? [
          `models ${models.map((m) => m.name).join(', ')} served at once need ${gb(total)} of VRAM together; the largest GPU here has ${gb(vram)}`,
        ]
      : [];
  return [...alone, ...together];
}
