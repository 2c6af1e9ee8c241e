/**
 * What the image backends share: the limits a remote image server's model is held to (checked before
 * anything is sent), the prompt's text from its committed bytes, deterministic re-encoding of a
 * server's PNG into the job's format, and where a job's previews fall.
 */
import {
  type ImageCapabilities,
  type ImageFormat,
  type ImageParams,
  InvalidInputError,
  imagePromptText,
  imagePromptTokenIds,
  SAMPLER_NAME,
} from '@aipg/core';
import sharp from 'sharp';
import { BackendError, BackendErrorCode } from './errors.ts';
import { firstDifference } from './ids.ts';
import type { ImageRequest } from './types.ts';

const SMOKE_PROMPT = 'aipg smoke test';

/** What a model on a remote image server accepts: checked before anything is sent to it. */
export type ImageLimits = {
  /** Allowed `[width, height]` pairs (multiples of 8: latents are 1/8 of the image). */
  sizes: readonly (readonly [width: number, height: number])[];
  /** Inclusive step range. */
  steps: readonly [min: number, max: number];
  /** Inclusive classifier-free guidance range. */
  guidance: readonly [min: number, max: number];
  /** Most images per job (1–10). */
  maxN: number;
};

/** What is wrong with a limits configuration (empty when nothing is). */
export function limitProblems(limits: ImageLimits, schedulers: readonly string[]): string[] {
  const problems: string[] = [];
  if (limits.sizes.length === 0 || limits.sizes.length > 32) problems.push('1 to 32 sizes expected');
  for (const [w, h] of limits.sizes)
    if (![w, h].every((v) => Number.isInteger(v) && v >= 8 && v <= 8192 && v % 8 === 0))
      problems.push(`size ${w}x${h}: sides must be multiples of 8 in 8–8192`);
  const [minSteps, maxSteps] = limits.steps;
  if (!(Number.isInteger(minSteps) && Number.isInteger(maxSteps) && minSteps >= 1 && minSteps <= maxSteps))
    problems.push(`steps ${minSteps}–${maxSteps}: expected integers 1 ≤ min ≤ max`);
  if (maxSteps > 1000) problems.push('at most 1000 steps');
  const [minCfg, maxCfg] = limits.guidance;
  if (!(minCfg >= 0 && minCfg <= maxCfg && maxCfg <= 50))
    problems.push(`guidance ${minCfg}–${maxCfg}: 0 ≤ min ≤ max ≤ 50`);
  if (!(Number.isInteger(limits.maxN) && limits.maxN >= 1 && limits.maxN <= 10))
    problems.push('maxN must be 1–10');
  if (schedulers.length === 0 || schedulers.length > 16) problems.push('1 to 16 schedulers expected');
  for (const name of schedulers)
    if (!SAMPLER_NAME.test(name)) problems.push(`scheduler name ${name}: a-z, 0-9, . _ -`);
  return problems;
}

/** Refuses (INVALID_INPUT) a job outside the limits, before the server is contacted. */
export function checkImageParams(
  limits: ImageLimits,
  schedulers: Record<string, unknown>,
  params: ImageParams,
): void {
  const problems: string[] = [];
  if (!limits.sizes.some(([w, h]) => w === params.width && h === params.height))
    problems.push(
      `size ${params.width}x${params.height} not in ${limits.sizes.map(([w, h]) => `${w}x${h}`).join(', ')}`,
    );
  if (!Number.isInteger(params.steps) || params.steps < limits.steps[0] || params.steps > limits.steps[1])
    problems.push(`steps ${params.steps} outside ${limits.steps[0]}–${limits.steps[1]}`);
  if (!(params.guidance >= limits.guidance[0] && params.guidance <= limits.guidance[1]))
    problems.push(`guidance ${params.guidance} outside ${limits.guidance[0]}–${limits.guidance[1]}`);
  if (!Number.isInteger(params.n) || params.n < 1 || params.n > limits.maxN)
    problems.push(`n ${params.n} outside 1–${limits.maxN}`);
  if (!Object.hasOwn(schedulers, params.scheduler))
    problems.push(`scheduler ${params.scheduler} not in ${Object.keys(schedulers).join(', ')}`);
  if (!Number.isInteger(params.seed) || params.seed < 0 || params.seed > 0xffffffff)
    problems.push(`seed ${params.seed} is not a uint32`);
  if (!['png', 'webp', 'jpeg'].includes(params.format)) problems.push(`format ${params.format}`);
  if (problems.length > 0)
    throw new InvalidInputError('The job is outside what this model accepts', problems.join('; '));
}

export function imageCapabilities(limits: ImageLimits, schedulers: string[]): ImageCapabilities {
  return {
    sizes: limits.sizes.map(([w, h]) => [w, h] as [number, number]),
    minSteps: limits.steps[0],
    maxSteps: limits.steps[1],
    maxN: limits.maxN,
    schedulers,
    trajectory: false,
  };
}

/**
 * The text a server is sent for prompt ids (UTF-8 bytes). Ids that do not round-trip (invalid
 * UTF-8, a leading BOM the decoder drops) would run another prompt than the receipt commits to:
 * refused as BACKEND_PROMPT_MISMATCH.
 */
export function promptTextOf(ids: readonly number[], what: string): string {
  const text = imagePromptText(ids);
  const back = imagePromptTokenIds(text);
  const differ = firstDifference(back, ids);
  if (differ !== undefined)
    throw new BackendError(`The ${what} bytes are not UTF-8 text the server can run exactly`, {
      code: BackendErrorCode.promptMismatch,
      details: `first difference at byte ${differ}`,
      retryable: true,
    });
  return text;
}

/** Fixed encoder settings: the same PNG always becomes the same bytes (sharp strips metadata). */
const WEBP = { quality: 90, effort: 4, smartSubsample: false } as const;
const JPEG = { quality: 90, chromaSubsampling: '4:2:0', progressive: false, mozjpeg: false } as const;

/**
 * The bytes the user receives: the server's PNG, checked to be a PNG of the job's size, passed
 * through byte for byte (`png`) or re-encoded with fixed settings (`webp`, `jpeg`).
 */
export async function deliverImage(
  png: Uint8Array,
  params: Pick<ImageParams, 'width' | 'height' | 'format'>,
  what: string,
): Promise<Uint8Array> {
  let meta: { format?: string | undefined; width?: number | undefined; height?: number | undefined };
  try {
    meta = await sharp(png).metadata();
  } catch (cause) {
    throw new BackendError(`${what}: the image does not decode`, {
      code: BackendErrorCode.protocol,
      details: cause instanceof Error ? cause.message : String(cause),
      cause,
    });
  }
  if (meta.format !== 'png' || meta.width !== params.width || meta.height !== params.height)
    throw new BackendError(`${what}: not a PNG of the asked size`, {
      code: BackendErrorCode.protocol,
      details: `asked png ${params.width}x${params.height}, got ${meta.format} ${meta.width}x${meta.height}`,
    });
  return encodeImage(png, params.format);
}

export async function encodeImage(png: Uint8Array, format: ImageFormat): Promise<Uint8Array> {
  if (format === 'png') return png;
  const image = sharp(png);
  const out = await (format === 'webp' ? image.webp(WEBP) : image.jpeg(JPEG)).toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Which progress events carry a preview: `wanted` (OpenAI's `partial_images`, 0–3) spread evenly
 * over a job's `total` events (1-based), each given to the first event at or after its place that
 * has a preview to show.
 */
export function previewPlan(total: number, wanted: number) {
  const marks = Array.from({ length: Math.max(0, wanted) }, (_, j) =>
    Math.ceil(((j + 1) * total) / (wanted + 1)),
  );
  let next = 0;
  return {
    due: (event: number) => next < marks.length && event >= marks[next]!,
    taken: () => {
      next += 1;
    },
  };
}

/** A generation at the smallest allowed size and fewest steps (load's smoke run). */
export function smokeJob(limits: ImageLimits, scheduler: string): ImageRequest {
  const [width, height] = [...limits.sizes].sort((a, b) => a[0] * a[1] - b[0] * b[1])[0]!;
  return {
    promptTokenIds: imagePromptTokenIds(SMOKE_PROMPT),
    negativeTokenIds: [],
    params: {
      width,
      height,
      steps: limits.steps[0],
      guidance: limits.guidance[0],
      seed: 0,
      n: 1,
      scheduler,
      format: 'png',
    },
    partialImages: 0,
    signal: new AbortController().signal,
  };
}
