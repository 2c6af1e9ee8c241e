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
  ZERO_TRAJECTORY,
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
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  drawImageSteps,
  type ImageAuditJob,
  type ImageReexecutor,
  judgeImage,
  localReexecutor,
} from '../src/judge/image.ts';

// The image audit on the project's real pipeline: honest jobs always pass (a calibration run of many),
// and each cheat the issue names is caught: another seed, fewer steps, another model, an image that
// is not its trajectory's end. Evidence altered after the worker signed is the gateway's fault.

let dir: string;
let pipeline: DiffusionPipeline;
let twin: DiffusionPipeline;
let local: ImageReexecutor;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-image-judge-'));
  pipeline = await createDiffusionPipeline({ preset: 'tiny', dir });
  local = localReexecutor(pipeline);
  // Another model of the same architecture (other weights): what a substituting worker runs.
  const model = makeImageModel({ ...IMAGE_MODEL_PRESETS.tiny.config, seed: 7 });
  const twinDir = join(dir, 'twin');
  await mkdir(twinDir, { recursive: true });
  for (const file of Object.values(model.files)) await writeFile(join(twinDir, file.name), file.bytes);
  await writeFile(join(twinDir, MANIFEST_FILE), model.manifest);
  twin = await createDiffusionPipeline({ modelDir: twinDir });
});
afterAll(async () => {
  await pipeline?.close();
  await twin?.close();
  await rm(dir, { recursive: true, force: true });
});

const params = (over: Partial<ImageParams> = {}): ImageParams => ({
  width: 256,
  height: 256,
  steps: 4,
  guidance: 5,
  seed: 99,
  n: 1,
  scheduler: 'ddim',
  format: 'png',
  ...over,
});

/** What a worker delivers and signs for `claimed`, having run `ran` on `engine` (honest: the same). */
async function job(
  claimed: ImageParams,
  opts: {
    engine?: DiffusionPipeline;
    ran?: ImageParams;
    prompt?: string;
    mutate?: (images: { bytes: Uint8Array; latents: Float32Array[] }[]) => void;
  } = {},
): Promise<ImageAuditJob> {
  const promptTokenIds = imagePromptTokenIds(opts.prompt ?? 'a lighthouse');
  const negativeTokenIds = imagePromptTokenIds('fog');
  const ran = opts.ran ?? claimed;
  const out = await (opts.engine ?? pipeline).generate({ promptTokenIds, negativeTokenIds, params: ran });
  const images = out.images.map((i) => ({ bytes: i.bytes, latents: i.latents }));
  opts.mutate?.(images);
  const committed = images.map((i) => ({
    bytes: i.bytes,
    latents: i.latents,
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

const everyStep = (steps: number) => () => Array.from({ length: steps }, (_, k) => k);

describe('honest image jobs', () => {
  test('calibration: 60 honest jobs (sizes, steps, seeds, schedulers, prompts, n) all pass, every re-run bitwise', async () => {
    const worst: number[] = [];
    for (let i = 0; i < 60; i++) {
      const p = params({
        seed: 1_000 + i * 7919,
        steps: 1 + (i % 6),
        scheduler: i % 2 ? 'euler' : 'ddim',
        n: 1 + (i % 3 === 0 ? 1 : 0),
        format: (['png', 'webp', 'jpeg'] as const)[i % 3]!,
        guidance: i % 4 === 0 ? 1 : 3 + (i % 5),
      });
      const j = await job(p, { prompt: `honest job ${i}` });
      const v = await judgeImage(j, local, everyStep(p.steps));
      expect(v.verdict, JSON.stringify(v.reasons)).toBe('pass');
      worst.push(Math.max(...v.checked.map((c) => c.relativeL2)));
    }
    expect(Math.max(...worst)).toBe(0);
  });

  test('the steps drawn depend on the batch randomness, the leaf and the validator, and are distinct', () => {
    const base = {
      randomness: `0x${'11'.repeat(32)}` as Hex,
      leaf: `0x${'22'.repeat(32)}` as Hex,
      validator: `0x${'33'.repeat(20)}` as Hex,
      image: 0,
      steps: 20,
    };
    const a = drawImageSteps(base);
    expect(new Set(a).size).toBe(2);
    expect(a.every((k) => k >= 0 && k < 20)).toBe(true);
    expect(drawImageSteps(base)).toEqual(a);
    const others = [
      drawImageSteps({ ...base, randomness: `0x${'12'.repeat(32)}` }),
      drawImageSteps({ ...base, leaf: `0x${'23'.repeat(32)}` }),
      drawImageSteps({ ...base, validator: `0x${'34'.repeat(20)}` }),
    ];
    expect(others.some((o) => o.join() !== a.join())).toBe(true);
    expect(drawImageSteps({ ...base, steps: 1 })).toEqual([0]);
  });
});

describe('cheats are FAILed on evidence the worker signed', () => {
  test('another seed than the one signed: step 0 is not its noise', async () => {
    const v = await judgeImage(await job(params(), { ran: params({ seed: 100 }) }), local, everyStep(4));
    expect(v.verdict).toBe('fail');
    expect(v.reasons.map((r) => r.code)).toContain('IMAGE_SEED');
  });

  test('fewer steps (2 run, 4 claimed, the trajectory padded): the drawn steps do not reproduce', async () => {
    const claimed = params({ steps: 4 });
    const v = await judgeImage(
      await job(claimed, {
        ran: params({ steps: 2 }),
        mutate: (images) => {
          for (const i of images) i.latents.push(i.latents.at(-1)!, i.latents.at(-1)!);
        },
      }),
      local,
      () =>
        drawImageSteps({
          randomness: `0x${'aa'.repeat(32)}`,
          leaf: `0x${'bb'.repeat(32)}`,
          validator: `0x${'cc'.repeat(20)}`,
          image: 0,
          steps: 4,
        }),
    );
    expect(v.verdict).toBe('fail');
    expect(v.reasons.map((r) => r.code)).toContain('IMAGE_STEP');
  });

  test('another model (same architecture, other weights): no step reproduces', async () => {
    const v = await judgeImage(await job(params(), { engine: twin }), local, everyStep(4));
    expect(v.verdict).toBe('fail');
    expect(v.reasons.filter((r) => r.code === 'IMAGE_STEP')).toHaveLength(4);
    expect(Math.min(...v.checked.filter((c) => c.step >= 0).map((c) => c.relativeL2))).toBeGreaterThan(1e-2);
  });

  test('a fabricated image on an honest trajectory: it is not the decode of the final latent', async () => {
    const other = await pipeline.generate({
      promptTokenIds: [1],
      negativeTokenIds: [],
      params: params({ seed: 5 }),
    });
    const v = await judgeImage(
      await job(params(), {
        mutate: (images) => {
          images[0]!.bytes = other.images[0]!.bytes;
        },
      }),
      local,
      everyStep(4),
    );
    expect(v.verdict).toBe('fail');
    expect(v.reasons.map((r) => r.code)).toEqual(['IMAGE_DECODE']);
  });
});

describe('after the gateway let the image bytes expire (the latents are kept for audits)', () => {
  test('the decode is still checked against the hash the worker signed: honest PASS, a fabricated image FAIL', async () => {
    const honest = await job(params());
    const v = await judgeImage(
      { ...honest, images: honest.images.map((i) => ({ ...i, bytes: undefined })) },
      local,
      everyStep(4),
    );
    expect(v.verdict).toBe('pass');
    const other = await pipeline.generate({
      promptTokenIds: [2],
      negativeTokenIds: [],
      params: params({ seed: 77 }),
    });
    const faked = await job(params(), {
      mutate: (images) => {
        images[0]!.bytes = other.images[0]!.bytes;
      },
    });
    const f = await judgeImage(
      { ...faked, images: faked.images.map((i) => ({ ...i, bytes: undefined })) },
      local,
      everyStep(4),
    );
    expect(f.verdict).toBe('fail');
    expect(f.reasons.map((r) => r.code)).toEqual(['IMAGE_DECODE']);
  });
});

describe('never a FAIL without evidence the worker signed', () => {
  test('latents altered by the gateway after signing: its fault, abstain', async () => {
    const j = await job(params());
    j.images[0]!.latents![2] = j.images[0]!.latents![1]!;
    const v = await judgeImage(j, local, everyStep(4));
    expect(v.verdict).toBe('abstain');
    expect(v.reasons).toEqual([]);
    expect(v.gatewayFaults.map((r) => r.code)).toEqual(['IMAGE_LATENTS']);
  });

  test('parameters altered by the gateway (another seed served than signed): its fault, abstain', async () => {
    const j = await job(params());
    const v = await judgeImage({ ...j, params: params({ seed: 100 }) }, local, everyStep(4));
    expect(v.verdict).toBe('abstain');
    expect(v.gatewayFaults.map((r) => r.code)).toEqual(['RECEIPT_REQUEST_HASH']);
  });

  test('a pipeline that commits no trajectory (ComfyUI, A1111): no method, abstain without blame', async () => {
    const j = await job(params());
    const zero = { ...j.images[0]!, trajectoryRoot: ZERO_TRAJECTORY, latents: undefined };
    const receipt = {
      ...j.receipt,
      outputHash: computeImageOutputHash([{ imageHash: zero.hash, trajectoryRoot: ZERO_TRAJECTORY }]),
    };
    const v = await judgeImage({ ...j, receipt, images: [zero] }, local, everyStep(4));
    expect(v).toMatchObject({ verdict: 'abstain', reasons: [], gatewayFaults: [] });
    expect(v.unsupported).toMatch(/commits no trajectory/);
  });
});
