import {
  computeImageFee,
  computeImageOutputHash,
  computeImageRequestHash,
  hashImage,
  type ImageJobMessage,
  imageInfo,
  imagePixelSteps,
  latentBytes,
  type Receipt,
  receiptToJson,
} from '@aipg/core';
import type { Address, Hex, LocalAccount } from 'viem';
import type { ImageBackend } from '../backends/types.ts';
import { signReceipt } from './receipt.ts';

/** `steps + 1` latents as one buffer of float32 little-endian values (the frame's `latents`). */
function concatLatents(latents: readonly Float32Array[]): Uint8Array {
  const parts = latents.map((l) => latentBytes(l));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The receipt of an image job: `requestHash` over the prompt and negative prompt bytes, every
 * parameter and the backend's pipeline; `outputHash` over each delivered image's hash and trajectory
 * root; units are prompt bytes and pixel-steps; the fee is megapixel-steps at the job's rate (@aipg/core
 * image.ts). The gateway recomputes every field before it delivers or bills anything.
 */
export function buildImageReceipt(p: {
  job: ImageJobMessage;
  gateway: Address;
  worker: Address;
  pipeline: string;
  images: readonly { imageHash: Hex; trajectoryRoot: Hex }[];
  completedAt: number;
}): Receipt {
  const { job } = p;
  return {
    jobId: job.jobId,
    gateway: p.gateway,
    payer: job.payer,
    worker: p.worker,
    modelId: job.modelId,
    requestHash: computeImageRequestHash(job.promptTokenIds, job.negativeTokenIds, job.params, p.pipeline),
    outputHash: computeImageOutputHash(p.images),
    inputUnits: BigInt(job.promptTokenIds.length),
    outputUnits: imagePixelSteps(job.params),
    fee: computeImageFee({
      params: job.params,
      rates: { perMegapixelStep: BigInt(job.pricing.perMegapixelStep) },
      confidential: job.confidential,
      confidentialPremiumBps: job.pricing.confidentialPremiumBps,
    }),
    completedAt: BigInt(p.completedAt),
    confidential: job.confidential,
    seq: BigInt(job.seq),
  };
}

/**
 * Runs one image job on `backend`: progress (and previews) as it goes, then the images with a signed
 * receipt. Images the backend made in another format or size than asked are an error, not a result
 * the gateway would refuse and count against this worker.
 */
export async function generateImages(p: {
  job: ImageJobMessage;
  backend: ImageBackend;
  signal: AbortSignal;
  account: LocalAccount;
  owner: Address;
  gateway: Address;
  chainId: number;
  grid: Address;
  now: () => number;
  onProgress(frame: { image: number; step: number; steps: number; preview?: string }): void;
}) {
  const { job, backend } = p;
  const started = performance.now();
  const result = await backend.generate({
    promptTokenIds: job.promptTokenIds,
    negativeTokenIds: job.negativeTokenIds,
    params: job.params,
    partialImages: job.partialImages,
    signal: p.signal,
    onProgress: (x) =>
      p.onProgress({
        image: x.image,
        step: x.step,
        steps: x.steps,
        ...(x.preview ? { preview: Buffer.from(x.preview).toString('base64') } : {}),
      }),
  });
  if (result.images.length !== job.params.n)
    throw new Error(`the backend made ${result.images.length} images for n = ${job.params.n}`);
  const images = result.images.map((img, i) => {
    const info = imageInfo(img.bytes);
    const { width, height, format } = job.params;
    if (!info || info.format !== format || info.width !== width || info.height !== height) {
      throw new Error(
        `image ${i} is ${info ? `a ${info.width}×${info.height} ${info.format}` : 'not an image'}, not the ${width}×${height} ${format} asked`,
      );
    }
    return {
      bytes: img.bytes,
      imageHash: hashImage(img.bytes),
      trajectoryRoot: img.trajectoryRoot,
      latents: img.latents,
    };
  });
  const receipt = buildImageReceipt({
    job,
    gateway: p.gateway,
    worker: p.owner,
    pipeline: backend.pipeline,
    images,
    completedAt: Math.floor(p.now() / 1000),
  });
  const signature = await signReceipt(p.account, receipt, p.chainId, p.grid);
  return {
    receipt,
    frame: {
      type: 'image-result' as const,
      jobId: job.jobId,
      images: images.map((i) => ({
        data: Buffer.from(i.bytes).toString('base64'),
        imageHash: i.imageHash,
        trajectoryRoot: i.trajectoryRoot,
        ...(i.latents ? { latents: Buffer.from(concatLatents(i.latents)).toString('base64') } : {}),
      })),
      timings: { totalMs: performance.now() - started },
      receipt: receiptToJson(receipt),
      signature,
    },
  };
}
