/**
 * Calibrates the image audit (src/judge/image.ts) on the project's image model: runs `--honest N`
 * honest jobs (sizes, steps, schedulers, guidance, formats, n, prompts and seeds varied) and judges
 * each with every step re-run, expecting no FAIL; then `--cheats M` jobs of each cheat, judged with the
 * node's draw (two steps per image), and prints the catch rate and the relative-L2 figures.
 *
 *   npx tsx packages/validator/scripts/calibrate-images.ts [--honest 1000] [--cheats 50]
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  computeImageOutputHash,
  computeImageRequestHash,
  hashImage,
  type ImageParams,
  imagePromptTokenIds,
  type Receipt,
  trajectoryTree,
} from '@aipg/core';
import {
  createDiffusionPipeline,
  DIFFUSION_PIPELINE,
  type DiffusionPipeline,
  IMAGE_MODEL_PRESETS,
  MANIFEST_FILE,
  makeImageModel,
} from '@aipg/diffusion';
import type { Hex } from 'viem';
import {
  drawImageSteps,
  IMAGE_STEP_TOLERANCE,
  type ImageAuditJob,
  judgeImage,
  localReexecutor,
} from '../src/judge/image.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const HONEST = arg('honest', 1_000);
const CHEATS = arg('cheats', 50);

const dir = await mkdtemp(join(tmpdir(), 'aipg-calibrate-images-'));
const pipeline = await createDiffusionPipeline({ preset: 'tiny', dir });
const local = localReexecutor(pipeline);
const twinModel = makeImageModel({ ...IMAGE_MODEL_PRESETS.tiny.config, seed: 7 });
await mkdir(join(dir, 'twin'), { recursive: true });
for (const f of Object.values(twinModel.files)) await writeFile(join(dir, 'twin', f.name), f.bytes);
await writeFile(join(dir, 'twin', MANIFEST_FILE), twinModel.manifest);
const twin = await createDiffusionPipeline({ modelDir: join(dir, 'twin') });

const SIZES: [number, number][] = [
  [256, 256],
  [256, 512],
  [512, 256],
];
function paramsFor(i: number): ImageParams {
  const [width, height] = SIZES[i % SIZES.length]!;
  return {
    width,
    height,
    steps: 1 + (i % 8),
    guidance: i % 5 === 0 ? 1 : 2 + (i % 7),
    seed: (i * 2_654_435_761) >>> 0,
    n: 1 + (i % 4 === 0 ? 1 : 0),
    scheduler: i % 2 ? 'euler' : 'ddim',
    format: (['png', 'webp', 'jpeg'] as const)[i % 3]!,
  };
}

async function job(
  claimed: ImageParams,
  prompt: string,
  run: {
    engine?: DiffusionPipeline;
    params?: ImageParams;
    mutate?: (x: { bytes: Uint8Array; latents: Float32Array[] }[]) => Promise<void> | void;
  } = {},
): Promise<ImageAuditJob> {
  const promptTokenIds = imagePromptTokenIds(prompt);
  const negativeTokenIds = imagePromptTokenIds(prompt.length % 2 ? '' : 'blurry');
  const out = await (run.engine ?? pipeline).generate({
    promptTokenIds,
    negativeTokenIds,
    params: run.params ?? claimed,
  });
  const images = out.images.map((i) => ({ bytes: i.bytes, latents: i.latents }));
  await run.mutate?.(images);
  const committed = images.map((i) => ({
    ...i,
    hash: hashImage(i.bytes),
    trajectoryRoot: trajectoryTree(i.latents).root,
  }));
  const receipt = {
    requestHash: computeImageRequestHash(promptTokenIds, negativeTokenIds, claimed, DIFFUSION_PIPELINE),
    outputHash: computeImageOutputHash(
      committed.map((c) => ({ imageHash: c.hash, trajectoryRoot: c.trajectoryRoot })),
    ),
  } as Receipt;
  return {
    receipt,
    promptTokenIds,
    negativeTokenIds,
    params: claimed,
    pipeline: DIFFUSION_PIPELINE,
    images: committed,
  };
}

const started = performance.now();
let worst = 0;
let falseFails = 0;
let stepsChecked = 0;
for (let i = 0; i < HONEST; i++) {
  const p = paramsFor(i);
  const v = await judgeImage(await job(p, `honest ${i}: a harbour at night`), local, () =>
    Array.from({ length: p.steps }, (_, k) => k),
  );
  if (v.verdict !== 'pass') falseFails++;
  for (const c of v.checked) worst = Math.max(worst, c.relativeL2);
  stepsChecked += v.checked.length;
}
console.log(
  `honest: ${HONEST} jobs, ${stepsChecked} checks (every step and every seed), ${falseFails} false FAIL, worst relative-L2 ${worst} (tolerance ${IMAGE_STEP_TOLERANCE}) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
);

const draw = (i: number, steps: number) => (image: number) =>
  drawImageSteps({
    randomness: `0x${(i + 1).toString(16).padStart(64, '0')}` as Hex,
    leaf: `0x${(i + 7).toString(16).padStart(64, '0')}` as Hex,
    validator: '0x0000000000000000000000000000000000000001',
    image,
    steps,
  });
const cheats: Record<string, (p: ImageParams, i: number) => Promise<ImageAuditJob>> = {
  'fewer steps (half, trajectory padded)': (p, i) =>
    job(p, `cheat ${i}`, {
      params: { ...p, steps: Math.max(1, Math.floor(p.steps / 2)) },
      mutate: (xs) => {
        for (const x of xs) while (x.latents.length < p.steps + 1) x.latents.push(x.latents.at(-1)!);
      },
    }),
  'another seed': (p, i) => job(p, `cheat ${i}`, { params: { ...p, seed: (p.seed + 1) >>> 0 } }),
  'another model (other weights)': (p, i) => job(p, `cheat ${i}`, { engine: twin }),
  'an image that is not the trajectory’s (another job’s)': async (p, i) => {
    const other = await pipeline.generate({
      promptTokenIds: [7, i & 255],
      negativeTokenIds: [],
      params: { ...p, seed: (p.seed ^ 0x5555) >>> 0 },
    });
    return job(p, `cheat ${i}`, {
      mutate: (xs) => {
        for (const [k, x] of xs.entries()) x.bytes = other.images[k]!.bytes;
      },
    });
  },
};
for (const [name, make] of Object.entries(cheats)) {
  let caught = 0;
  let runs = 0;
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < CHEATS; i++) {
    // at least 2 steps: with 1 step, "half the steps" is the job itself
    const p = { ...paramsFor(i), steps: 2 + (i % 7) };
    const v = await judgeImage(await make(p, i), local, draw(i, p.steps));
    runs++;
    if (v.verdict === 'fail') caught++;
    for (const c of v.checked) if (c.relativeL2 > 0) min = Math.min(min, c.relativeL2);
  }
  console.log(
    `${name}: caught ${caught}/${runs} with 2 drawn steps per image; smallest non-zero relative-L2 ${min === Number.POSITIVE_INFINITY ? '–' : min.toExponential(2)}`,
  );
}
await pipeline.close();
await twin.close();
await rm(dir, { recursive: true, force: true });
