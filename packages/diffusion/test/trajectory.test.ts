/**
 * A validator's check of one committed step: open latents k and k+1 with their Merkle proofs, re-run
 * step k, compare. Honest work reproduces bitwise; each way of cutting corners lands orders of
 * magnitude above the tolerance. The measured figures are printed (README, "Trajectory checks").
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { trajectoryTree, verifyTrajectoryStep } from '@aipg/core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createDiffusionPipeline,
  type DiffusionImage,
  type DiffusionPipeline,
  IMAGE_MODEL_PRESETS,
  MANIFEST_FILE,
  makeImageModel,
  relativeL2,
} from '../src/index.ts';
import { request, usePipeline, useTempDir } from './helpers.ts';

/** The accept tolerance a same-class validator would use (honest re-steps measure 0 here). */
const TOLERANCE = 1e-6;
const STEPS = 8;
const job = request({ steps: STEPS, guidance: 5 });

const pipeline = usePipeline(1);
const dir = useTempDir('aipg-diffusion-twin-');
let twin: DiffusionPipeline;
let honest: DiffusionImage;

beforeAll(async () => {
  // The substitute: the same architecture with other weights (another seed), as a cheat would run.
  const model = makeImageModel({ ...IMAGE_MODEL_PRESETS.tiny.config, seed: 1 });
  await mkdir(dir(), { recursive: true });
  for (const file of Object.values(model.files)) await writeFile(join(dir(), file.name), file.bytes);
  await writeFile(join(dir(), MANIFEST_FILE), model.manifest);
  twin = await createDiffusionPipeline({ modelDir: dir() });
  [honest] = (await pipeline().generate(job)).images as [DiffusionImage];
});
afterAll(async () => {
  await twin?.close();
});

/** The validator: re-runs each step k of a committed trajectory; relative-L2 against latents[k+1]. */
async function recheck(latents: readonly Float32Array[], of = job): Promise<number[]> {
  const out: number[] = [];
  for (let k = 0; k < of.params.steps; k++) {
    const next = await pipeline().step({ ...of, image: 0, from: k, latent: latents[k]! });
    out.push(relativeL2(next, latents[k + 1]!));
  }
  return out;
}

const summary = (xs: number[]) => ({ min: Math.min(...xs), max: Math.max(...xs) });
const figures: Record<string, { min: number; max: number }> = {};

describe('re-running one committed step', () => {
  test('honest: every step reproduces bitwise and verifies against the trajectory root', async () => {
    const tree = trajectoryTree(honest.latents);
    expect(tree.root).toBe(honest.trajectoryRoot);
    for (let k = 0; k < STEPS; k++) {
      expect(verifyTrajectoryStep(honest.trajectoryRoot, k, honest.latents[k]!, tree.proof(k))).toBe(true);
      const next = await pipeline().step({ ...job, image: 0, from: k, latent: honest.latents[k]! });
      expect(relativeL2(next, honest.latents[k + 1]!)).toBe(0);
      expect(verifyTrajectoryStep(honest.trajectoryRoot, k + 1, next, tree.proof(k + 1))).toBe(true);
      // The opened latent must be the committed one: another step's proof does not verify.
      expect(verifyTrajectoryStep(honest.trajectoryRoot, k + 1, honest.latents[k]!, tree.proof(k + 1))).toBe(
        false,
      );
    }
    figures['honest re-step'] = summary(await recheck(honest.latents));
    // The step-0 check: the committed noise is the seed's.
    expect(relativeL2(honest.latents[0]!, pipeline().initialLatent(job.params, 0))).toBe(0);
  });

  test('euler: the honest re-step reproduces bitwise too, for every image of a job', async () => {
    const euler = request({ ...job.params, scheduler: 'euler', n: 2, steps: 5 });
    const { images } = await pipeline().generate(euler);
    for (const [i, image] of images.entries()) {
      for (let k = 0; k < 5; k++) {
        const next = await pipeline().step({ ...euler, image: i, from: k, latent: image.latents[k]! });
        expect(relativeL2(next, image.latents[k + 1]!)).toBe(0);
      }
      expect(image.latents[0]).toEqual(pipeline().initialLatent(euler.params, i));
    }
    // A DDIM re-run of an Euler trajectory does not pass: the scheduler is part of the job.
    const ddim = await recheck(images[0]!.latents, {
      ...euler,
      params: { ...euler.params, scheduler: 'ddim' },
    });
    expect(Math.min(...ddim)).toBeGreaterThan(1000 * TOLERANCE);
  });

  test('honest under a simulated precision change (latents rounded to fp16) stays small', async () => {
    const rounded = honest.latents.map((x) => x.map(toFp16));
    const r: number[] = [];
    for (let k = 0; k < STEPS; k++) {
      const next = await pipeline().step({ ...job, image: 0, from: k, latent: rounded[k]! });
      r.push(relativeL2(next, honest.latents[k + 1]!));
    }
    figures['fp16-rounded input (honest, other dtype)'] = summary(r);
    expect(Math.max(...r)).toBeLessThan(1e-2);
  });

  test('cheats land far above the tolerance at every step', async () => {
    // Substituted weights: the twin's own, internally consistent trajectory.
    const [substituted] = (await twin.generate(job)).images;
    figures['substituted weights (other seed of the generator)'] = summary(
      await recheck(substituted!.latents),
    );

    // A skipped step: latent k+1 claimed to equal latent k.
    const skipped: number[] = [];
    for (let k = 0; k < STEPS; k++) {
      const next = await pipeline().step({ ...job, image: 0, from: k, latent: honest.latents[k]! });
      skipped.push(relativeL2(next, honest.latents[k]!));
    }
    figures['skipped step (latent k+1 = latent k)'] = summary(skipped);

    // Fewer steps: 4 real steps, the commitment padded with midpoints to look like 8.
    const [half] = (await pipeline().generate(request({ ...job.params, steps: STEPS / 2 }))).images;
    const padded = Array.from({ length: STEPS + 1 }, (_, k) =>
      k % 2 === 0
        ? half!.latents[k / 2]!
        : midpoint(half!.latents[(k - 1) / 2]!, half!.latents[(k + 1) / 2]!),
    );
    figures['fewer steps (4 run, 8 committed)'] = summary(await recheck(padded));

    // Another seed: its steps re-run cleanly, but its committed noise is not the seed's.
    const [other] = (await pipeline().generate(request({ ...job.params, seed: job.params.seed + 99 })))
      .images;
    const otherSteps = summary(await recheck(other!.latents));
    expect(otherSteps.max).toBe(0);
    const noise = relativeL2(other!.latents[0]!, pipeline().initialLatent(job.params, 0));
    figures['another seed: step 0 against the seed’s noise'] = { min: noise, max: noise };

    console.log(
      [
        `relative-L2 of a re-run step (${STEPS}-step DDIM, 256², guidance 5; min and max over the ${STEPS} steps):`,
        ...Object.entries(figures).map(
          ([what, { min, max }]) => `  ${what.padEnd(52)} ${min.toExponential(2)} … ${max.toExponential(2)}`,
        ),
      ].join('\n'),
    );
    for (const [what, { min }] of Object.entries(figures))
      if (!what.startsWith('honest') && !what.startsWith('fp16'))
        expect(min, what).toBeGreaterThan(1000 * TOLERANCE);
    expect(figures['honest re-step']!.max).toBeLessThanOrEqual(TOLERANCE);
  });
});

function midpoint(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((v, i) => (v + b[i]!) / 2);
}

/** Rounds to the nearest fp16 value (11 significant bits; range is no concern at these magnitudes). */
function toFp16(v: number): number {
  if (v === 0) return 0;
  const quantum = 2 ** (Math.floor(Math.log2(Math.abs(v))) - 10);
  return Math.round(v / quantum) * quantum;
}
