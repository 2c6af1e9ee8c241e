import {
  computeImageFee,
  computeImageOutputHash,
  computeImageRequestHash,
  hashImage,
  type ImageCapabilities,
  type ImageJobMessage,
  type ImageParams,
  type ImageResultMessage,
  imageInfo,
  imagePixelSteps,
  latentsFromBytes,
  type Receipt,
  receiptFromJson,
  trajectoryTree,
  ZERO_TRAJECTORY,
} from '@aipg/core';
import type { Address, Hex } from 'viem';
import type { JobRecord, StoredImage } from '../storage/index.ts';
import { partiesFault, signatureFault } from './receipt-check.ts';

/** Whether a worker's pipeline accepts `p` (size offered, steps in range, count, scheduler). */
export function acceptsImage(caps: ImageCapabilities | undefined, p: ImageParams): boolean {
  if (!caps) return false;
  return (
    caps.sizes.some(([w, h]) => w === p.width && h === p.height) &&
    p.steps >= caps.minSteps &&
    p.steps <= caps.maxSteps &&
    p.n <= caps.maxN &&
    caps.schedulers.includes(p.scheduler)
  );
}

/**
 * An upper bound on the `image-result` frame of a job with `p` (base64 of every image at 3 bytes a
 * pixel, and, with a trajectory, `steps + 1` latents of 4 channels at 1/8 resolution in float32), so a
 * request the hub could not receive in one frame is refused up front, never failed on an honest worker.
 */
export function imageResultBound(p: ImageParams, trajectory: boolean): number {
  const image = p.width * p.height * 3;
  const latents = trajectory ? (p.steps + 1) * Math.ceil(p.width / 8) * Math.ceil(p.height / 8) * 4 * 4 : 0;
  return Math.ceil(((image + latents) * p.n * 4) / 3) + 64 * 1024;
}

/** The `image-job` frame of a prepared image job, for the dispatch numbered `seq`. */
export function imageJobFrame(job: JobRecord, seq: bigint): ImageJobMessage {
  const image = job.image!;
  return {
    type: 'image-job',
    jobId: job.id,
    seq: seq.toString(),
    modelId: job.modelId,
    payer: job.payer,
    promptTokenIds: job.promptTokenIds!,
    negativeTokenIds: image.negativeTokenIds,
    params: image.params,
    pricing: {
      perMegapixelStep: job.pricing.perMegapixelStep ?? '0',
      confidentialPremiumBps: job.pricing.confidentialPremiumBps,
    },
    confidential: false,
    partialImages: job.mode === 'stream' ? image.partialImages : 0,
  };
}

export type ImageExpectation = {
  job: JobRecord;
  seq: bigint;
  gateway: Address;
  worker: Address;
  operator: Address;
  /** The pipeline the worker advertised for the model (its `sampler`): signed into requestHash. */
  pipeline: string;
  chainId: number;
  grid: Address;
  dispatchedAt: number;
  now: number;
  clockSkewSec: number;
};

export type ImageVerdict =
  | {
      ok: true;
      receipt: Receipt;
      /** Each image's bytes, and its latents (float32 LE, `steps + 1`) when its root commits to some. */
      images: { bytes: Uint8Array; latents: Uint8Array | undefined; stored: StoredImage }[];
    }
  | { ok: false; field: string; reason: string };

const _same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Checks a worker's `image-result` against the job, as `verifyResult` does for text: every receipt
 * field, the request hash over exactly the prompt, negative prompt, parameters and advertised pipeline
 * sent; each image's bytes against its hash, its header against the asked format and size; the output
 * hash over those images and their trajectory roots; the units and the fee the job was priced at; then
 * the signature. Only images that pass are delivered, and only then is the job billed.
 */
export async function verifyImageResult(
  frame: ImageResultMessage,
  x: ImageExpectation,
): Promise<ImageVerdict> {
  const fail = (field: string, reason: string): ImageVerdict => ({ ok: false, field, reason });
  const job = x.job;
  const image = job.image!;
  const p = image.params;
  const r = receiptFromJson(frame.receipt);
  const parties = partiesFault(r, frame.jobId, {
    jobId: job.id,
    seq: x.seq,
    gateway: x.gateway,
    payer: job.payer,
    worker: x.worker,
    modelId: job.modelId,
    confidential: false,
  });
  if (parties) return { ok: false, ...parties };
  if (frame.images.length !== p.n) return fail('images', `${frame.images.length} images for n = ${p.n}`);
  const images: { bytes: Uint8Array; latents: Uint8Array | undefined; stored: StoredImage }[] = [];
  for (const [i, img] of frame.images.entries()) {
    const bytes = Buffer.from(img.data, 'base64');
    if (hashImage(bytes) !== img.imageHash.toLowerCase())
      return fail('images', `image ${i}: its bytes do not hash to its imageHash`);
    const info = imageInfo(bytes);
    if (!info || info.format !== p.format || info.width !== p.width || info.height !== p.height) {
      return fail(
        'images',
        `image ${i} is ${info ? `a ${info.width}×${info.height} ${info.format}` : 'not an image'}, not the ${p.width}×${p.height} ${p.format} asked`,
      );
    }
    // A committed trajectory must open: `steps + 1` latents whose tree is the signed root. A root the
    // worker cannot open would let it dodge every step re-run; fewer latents than steps is fewer steps.
    let latents: Uint8Array | undefined;
    if (img.trajectoryRoot.toLowerCase() !== ZERO_TRAJECTORY) {
      if (!img.latents) return fail('images', `image ${i}: a trajectory root without its latents`);
      latents = Buffer.from(img.latents, 'base64');
      const opened = latentsFromBytes(latents, p.steps + 1);
      if (!opened || trajectoryTree(opened).root !== img.trajectoryRoot.toLowerCase())
        return fail(
          'images',
          `image ${i}: its latents do not open the committed trajectory of ${p.steps} steps`,
        );
    }
    images.push({
      bytes,
      latents,
      stored: {
        hash: img.imageHash.toLowerCase() as Hex,
        format: info.format,
        width: info.width,
        height: info.height,
        trajectoryRoot: img.trajectoryRoot.toLowerCase() as Hex,
        size: bytes.length,
      },
    });
  }
  if (r.inputUnits !== BigInt(job.promptTokenIds!.length))
    return fail('inputUnits', 'inputUnits is not the prompt token count');
  if (r.outputUnits !== imagePixelSteps(p))
    return fail('outputUnits', 'outputUnits is not width × height × steps × n');
  if (r.requestHash !== computeImageRequestHash(job.promptTokenIds!, image.negativeTokenIds, p, x.pipeline)) {
    return fail(
      'requestHash',
      `requestHash does not commit to the prompt, the negative prompt, the parameters and the pipeline "${x.pipeline}"`,
    );
  }
  if (
    r.outputHash !==
    computeImageOutputHash(
      images.map((i) => ({ imageHash: i.stored.hash, trajectoryRoot: i.stored.trajectoryRoot })),
    )
  )
    return fail('outputHash', 'outputHash does not commit to the images and their trajectories');
  const fee = computeImageFee({
    params: p,
    rates: { perMegapixelStep: BigInt(job.pricing.perMegapixelStep ?? '0') },
    confidentialPremiumBps: job.pricing.confidentialPremiumBps,
  });
  if (r.fee !== fee) return fail('fee', `fee ${r.fee} differs from the rate card's ${fee}`);
  const signed = await signatureFault(r, frame.signature, x);
  if (signed) return { ok: false, ...signed };
  return { ok: true, receipt: r, images };
}
