import {
  IMAGE_FORMATS,
  type ImageCapabilities,
  type ImageFormat,
  type ImageParams,
  imageSeed,
  trajectoryTree,
} from '@aipg/core';
import ort from 'onnxruntime-node';
import type { Hex } from 'viem';
import { DiffusionAbortedError, ImageModelFileError, PipelineClosedError } from '../errors.ts';
import { ensureImageModel, type ImageModelFiles, loadImageModel } from '../model/ensure-image-model.ts';
import { LATENT_CHANNELS, TEXT_CONTEXT_LENGTH, VAE_SCALE } from '../model/make-image-model.ts';
import type { ImageModelPresetName } from '../model/presets.ts';
import { gaussian } from '../model/prng.ts';
import { encodeImage } from './encode.ts';
import { applyStep, SCHEDULERS, type Scheduler, type StepPlan, stepPlan } from './schedule.ts';
import { textEncoderInput } from './tokens.ts';

/**
 * The pipeline's name, advertised as the model's `sampler` and signed into every receipt's
 * `requestHash`: it names this code (token layout, noise, schedules, guidance, encoder settings), so
 * a change that alters any output byte must bump it.
 */
export const DIFFUSION_PIPELINE = 'aipg-ldm-v1';

/** What the pipeline accepts, for any model the generator makes. */
export const DIFFUSION_CAPABILITIES = {
  sizes: [
    [256, 256],
    [512, 512],
    [256, 512],
    [512, 256],
  ],
  minSteps: 1,
  maxSteps: 50,
  maxN: 4,
  schedulers: [...SCHEDULERS],
  trajectory: true,
} as const satisfies ImageCapabilities;

/** Previews a job may ask for (OpenAI's `partial_images`). */
export const MAX_PARTIAL_IMAGES = 3;
/** Largest guidance scale accepted (core's `imageParamsSchema` bound). */
const MAX_GUIDANCE = 50;

export type CreateDiffusionPipelineOptions = (
  | { modelDir: string }
  | {
      preset: ImageModelPresetName;
      /** Models directory for the preset (`ensureImageModel`'s `dir`). */
      dir?: string | undefined;
    }
) & {
  /** onnxruntime's intra-op threads (inter-op: 1). Outputs are bitwise the same for any count. */
  threads?: number | undefined;
};

export type DiffusionProgress = {
  /** Index of the image in the job. */
  image: number;
  /** Denoising steps of this image done, 1-based. */
  step: number;
  steps: number;
  /** This step's latent decoded and encoded as the job's format, on the steps chosen for previews. */
  preview?: Uint8Array | undefined;
};

export type DiffusionGenerateRequest = {
  /** The prompt as UTF-8 byte ids (`imagePromptTokenIds`); bytes beyond the 75th are not read. */
  promptTokenIds: readonly number[];
  /** The negative prompt, the unconditional input of guidance; empty = the model's empty prompt. */
  negativeTokenIds: readonly number[];
  params: ImageParams;
  /** Checked before every step and before decoding: a fired signal rejects with DiffusionAbortedError. */
  signal?: AbortSignal | undefined;
  /**
   * Previews (0–3) spread over the job's `n·steps` steps: after global step ⌈j·n·steps/(k+1)⌉,
   * j = 1…k (fewer, without repeats, when the job has k steps or fewer).
   */
  partialImages?: number | undefined;
  /** After every step of every image, in order. */
  onProgress?: ((progress: DiffusionProgress) => void) | undefined;
};

export type DiffusionImage = {
  /** The image encoded as `params.format`: what the user receives. */
  bytes: Uint8Array;
  /** `steps + 1` latents [4, height/8, width/8]: the seed's noise, then the latent after each step. */
  latents: Float32Array[];
  /** `trajectoryTree(latents).root` (@aipg/core). */
  trajectoryRoot: Hex;
};

export type DiffusionGenerateResult = { images: DiffusionImage[]; totalMs: number };

export type DiffusionStepRequest = {
  promptTokenIds: readonly number[];
  negativeTokenIds: readonly number[];
  params: ImageParams;
  /** Which image of the job (the step does not depend on it: the seed only sets the initial noise). */
  image: number;
  /** The step to run: `latent` is latents[from], the result latents[from + 1]. */
  from: number;
  latent: Float32Array;
};

export type DiffusionPipeline = {
  readonly name: string;
  readonly model: { name: string; weightsHash: Hex; dir: string };
  readonly capabilities: ImageCapabilities;
  generate(request: DiffusionGenerateRequest): Promise<DiffusionGenerateResult>;
  /**
   * latents[0] of image `image` of a job: the noise of `imageSeed(params, image)`. A validator checks
   * the committed step 0 against it (a step's re-run cannot tell which seed a trajectory began from).
   */
  initialLatent(params: ImageParams, image: number): Float32Array;
  /** One denoising step exactly as `generate` runs it: a validator's re-run of a committed step. */
  step(request: DiffusionStepRequest): Promise<Float32Array>;
  /**
   * Decodes and encodes a final latent: the bytes `generate` delivered for it. `size` may be left out
   * for a square latent.
   */
  decode(
    latent: Float32Array,
    format: ImageFormat,
    size?: { width: number; height: number },
  ): Promise<Uint8Array>;
  /** Waits for running calls to stop (at their next step) and releases the sessions. */
  close(): Promise<void>;
};

/** Text conditioning of one job: the prompt's embedding, and the negative prompt's under guidance. */
type Conditioning = { cond: Float32Array; uncond: Float32Array | undefined; guidance: number };

export async function createDiffusionPipeline(
  options: CreateDiffusionPipelineOptions,
): Promise<DiffusionPipeline> {
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError('threads must be a positive integer');
  const model: ImageModelFiles =
    'modelDir' in options
      ? await loadImageModel(options.modelDir)
      : await ensureImageModel(options.preset, { dir: options.dir });
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  };
  const created = await Promise.allSettled(
    [model.files.textEncoder, model.files.unet, model.files.vaeDecoder].map((f) =>
      ort.InferenceSession.create(f.path, sessionOptions),
    ),
  );
  const failed = created.find((r) => r.status === 'rejected');
  if (failed) {
    for (const r of created) if (r.status === 'fulfilled') await r.value.release();
    throw new ImageModelFileError('onnxruntime could not load the image model', model.dir, failed.reason);
  }
  const [textEncoder, unet, vae] = created.map(
    (r) => (r as PromiseFulfilledResult<ort.InferenceSession>).value,
  ) as [ort.InferenceSession, ort.InferenceSession, ort.InferenceSession];
  const condWidth = model.config.condWidth;
  let closed = false;
  const running = new Set<Promise<unknown>>();

  /** Runs `fn` unless closed, and lets `close` wait for it. */
  const track = <T>(fn: () => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new PipelineClosedError());
    const p = fn();
    running.add(p);
    const done = () => running.delete(p);
    p.then(done, done);
    return p;
  };
  const assertOpen = () => {
    if (closed) throw new PipelineClosedError();
  };

  async function encodeText(tokenIds: readonly number[], what: string): Promise<Float32Array> {
    const ids = new ort.Tensor('int64', textEncoderInput(tokenIds, what), [1, TEXT_CONTEXT_LENGTH]);
    const out = await textEncoder.run({ input_ids: ids });
    return Float32Array.from(out.text_embeds!.data as Float32Array);
  }

  async function conditioning(request: {
    promptTokenIds: readonly number[];
    negativeTokenIds: readonly number[];
    params: ImageParams;
  }): Promise<Conditioning> {
    const { guidance } = request.params;
    const cond = await encodeText(request.promptTokenIds, 'promptTokenIds');
    // Guidance 1 is the conditional prediction alone: one UNet row per step, the negative prompt unread
    // (still checked, as it is signed into the receipt).
    textEncoderInput(request.negativeTokenIds, 'negativeTokenIds');
    const uncond =
      guidance === 1 ? undefined : await encodeText(request.negativeTokenIds, 'negativeTokenIds');
    return { cond, uncond, guidance };
  }

  /**
   * One step: ε from the UNet (rows [uncond, cond] in one batch under guidance), guided as
   * ε = ε_u + g·(ε_c − ε_u) rounded to float32, then the scheduler's update.
   */
  async function denoise(
    scheduler: Scheduler,
    plan: StepPlan,
    latent: Float32Array,
    { cond, uncond, guidance }: Conditioning,
    width: number,
    height: number,
  ): Promise<Float32Array> {
    const n = latent.length;
    const rows = uncond ? [uncond, cond] : [cond];
    const batch = rows.length;
    const sample = new Float32Array(batch * n);
    const text = new Float32Array(batch * condWidth);
    for (const [r, embedding] of rows.entries()) {
      sample.set(latent, r * n);
      text.set(embedding, r * condWidth);
    }
    const out = await unet.run({
      sample: new ort.Tensor('float32', sample, [
        batch,
        LATENT_CHANNELS,
        height / VAE_SCALE,
        width / VAE_SCALE,
      ]),
      timestep: new ort.Tensor('float32', new Float32Array(batch).fill(plan.timestep), [batch]),
      text_embeds: new ort.Tensor('float32', text, [batch, condWidth]),
    });
    const pred = out.noise_pred!.data as Float32Array;
    let eps: Float32Array;
    if (uncond) {
      eps = new Float32Array(n);
      for (let i = 0; i < n; i++) eps[i] = pred[i]! + guidance * (pred[n + i]! - pred[i]!);
    } else eps = pred;
    const next = new Float32Array(n);
    applyStep(scheduler, plan, latent, eps, next);
    return next;
  }

  async function decodeLatent(
    latent: Float32Array,
    width: number,
    height: number,
    format: ImageFormat,
  ): Promise<Uint8Array> {
    const out = await vae.run({
      latent_sample: new ort.Tensor('float32', latent, [
        1,
        LATENT_CHANNELS,
        height / VAE_SCALE,
        width / VAE_SCALE,
      ]),
    });
    return encodeImage(out.image!.data as Uint8Array, width, height, format);
  }

  async function generate(request: DiffusionGenerateRequest): Promise<DiffusionGenerateResult> {
    const started = performance.now();
    const { params, signal, onProgress } = request;
    validateParams(params);
    const partialImages = request.partialImages ?? 0;
    if (!Number.isInteger(partialImages) || partialImages < 0 || partialImages > MAX_PARTIAL_IMAGES)
      throw new RangeError(`partialImages must be an integer from 0 to ${MAX_PARTIAL_IMAGES}`);
    const { width, height, steps, n } = params;
    const scheduler = params.scheduler as Scheduler;
    const plan = stepPlan(scheduler, steps);
    const previews = previewSteps(n * steps, partialImages);
    const checkpoint = () => {
      if (signal?.aborted) throw new DiffusionAbortedError(signal.reason);
      assertOpen();
    };
    checkpoint();
    const c = await conditioning(request);
    const images: DiffusionImage[] = [];
    for (let image = 0; image < n; image++) {
      const latents = [initialNoise(imageSeed(params, image), width, height)];
      for (const [k, p] of plan.entries()) {
        checkpoint();
        const next = await denoise(scheduler, p, latents[k]!, c, width, height);
        latents.push(next);
        const preview = previews.has(image * steps + k + 1)
          ? await decodeLatent(next, width, height, params.format)
          : undefined;
        onProgress?.({ image, step: k + 1, steps, ...(preview ? { preview } : {}) });
      }
      checkpoint();
      const bytes = await decodeLatent(latents[steps]!, width, height, params.format);
      images.push({ bytes, latents, trajectoryRoot: trajectoryTree(latents).root });
    }
    return { images, totalMs: performance.now() - started };
  }

  async function step(request: DiffusionStepRequest): Promise<Float32Array> {
    const { params, image, from, latent } = request;
    validateParams(params);
    assertImageIndex(image, params.n);
    if (!Number.isInteger(from) || from < 0 || from >= params.steps)
      throw new RangeError(`from must be an integer from 0 to ${params.steps - 1}`);
    assertLatentSize(latent, params.width, params.height);
    const scheduler = params.scheduler as Scheduler;
    const c = await conditioning(request);
    assertOpen();
    return denoise(
      scheduler,
      stepPlan(scheduler, params.steps)[from]!,
      latent,
      c,
      params.width,
      params.height,
    );
  }

  async function decode(
    latent: Float32Array,
    format: ImageFormat,
    size?: { width: number; height: number },
  ): Promise<Uint8Array> {
    if (!IMAGE_FORMATS.includes(format))
      throw new RangeError(`format must be one of ${IMAGE_FORMATS.join(', ')}`);
    const { width, height } = size ?? squareSize(latent);
    assertOffered(width, height);
    assertLatentSize(latent, width, height);
    return decodeLatent(latent, width, height, format);
  }

  return {
    name: DIFFUSION_PIPELINE,
    model: { name: model.name, weightsHash: model.weightsHash, dir: model.dir },
    // A copy: a caller editing its advertisement must not change what the pipeline validates against.
    capabilities: structuredClone(DIFFUSION_CAPABILITIES) as ImageCapabilities,
    initialLatent(params, image) {
      validateParams(params);
      assertImageIndex(image, params.n);
      return initialNoise(imageSeed(params, image), params.width, params.height);
    },
    generate: (request) => track(() => generate(request)),
    step: (request) => track(() => step(request)),
    decode: (latent, format, size) => track(() => decode(latent, format, size)),
    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...running]);
      await Promise.all([textEncoder.release(), unet.release(), vae.release()]);
    },
  };
}

/** The seed's noise, N(0, 1) per value (`gaussian` of prng.ts), in [4, height/8, width/8] order. */
function initialNoise(seed: number, width: number, height: number): Float32Array {
  const normal = gaussian(seed);
  const x = new Float32Array((LATENT_CHANNELS * width * height) / (VAE_SCALE * VAE_SCALE));
  for (let i = 0; i < x.length; i++) x[i] = normal();
  return x;
}

/** Global steps (1-based, over the whole job) after which a preview is sent. */
function previewSteps(total: number, k: number): Set<number> {
  const at = new Set<number>();
  for (let j = 1; j <= k; j++) at.add(Math.ceil((j * total) / (k + 1)));
  return at;
}

/** Checks a job's parameters against DIFFUSION_CAPABILITIES; RangeError naming what is wrong. */
export function validateParams(p: ImageParams): void {
  const caps = DIFFUSION_CAPABILITIES;
  assertOffered(p.width, p.height);
  if (!Number.isInteger(p.steps) || p.steps < caps.minSteps || p.steps > caps.maxSteps)
    throw new RangeError(
      `steps must be an integer from ${caps.minSteps} to ${caps.maxSteps}, got ${p.steps}`,
    );
  if (!Number.isInteger(p.n) || p.n < 1 || p.n > caps.maxN)
    throw new RangeError(`n must be an integer from 1 to ${caps.maxN}, got ${p.n}`);
  if (!(SCHEDULERS as readonly string[]).includes(p.scheduler))
    throw new RangeError(
      `scheduler must be one of ${SCHEDULERS.join(', ')}, got ${JSON.stringify(p.scheduler)}`,
    );
  if (!IMAGE_FORMATS.includes(p.format))
    throw new RangeError(
      `format must be one of ${IMAGE_FORMATS.join(', ')}, got ${JSON.stringify(p.format)}`,
    );
  if (!Number.isFinite(p.guidance) || p.guidance < 0 || p.guidance > MAX_GUIDANCE)
    throw new RangeError(`guidance must be a number from 0 to ${MAX_GUIDANCE}, got ${p.guidance}`);
  if (!Number.isInteger(p.seed) || p.seed < 0 || p.seed > 0xffffffff)
    throw new RangeError(`seed must be an integer from 0 to ${0xffffffff}, got ${p.seed}`);
}

function assertOffered(width: number, height: number): void {
  if (!DIFFUSION_CAPABILITIES.sizes.some(([w, h]) => w === width && h === height))
    throw new RangeError(
      `size ${width}×${height} is not offered (${DIFFUSION_CAPABILITIES.sizes.map(([w, h]) => `${w}×${h}`).join(', ')})`,
    );
}

function assertImageIndex(image: number, n: number): void {
  if (!Number.isInteger(image) || image < 0 || image >= n)
    throw new RangeError(`image must be an integer from 0 to ${n - 1}, got ${image}`);
}

function assertLatentSize(latent: Float32Array, width: number, height: number): void {
  const expected = (LATENT_CHANNELS * width * height) / (VAE_SCALE * VAE_SCALE);
  if (!(latent instanceof Float32Array) || latent.length !== expected)
    throw new RangeError(
      `a ${width}×${height} latent holds ${expected} float32 values, got ${latent.length}`,
    );
}

function squareSize(latent: Float32Array): { width: number; height: number } {
  const side = Math.round(Math.sqrt(latent.length / LATENT_CHANNELS)) * VAE_SCALE;
  return { width: side, height: side };
}
