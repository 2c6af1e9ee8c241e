/**
 * The verdict on one audited image job (docs/DESIGN.md §5): a re-run of randomly drawn denoising steps
 * from the latents the worker committed to, plus its seed's noise and the decode of its final latent.
 *
 * What each check catches, on the project's pipeline (figures in packages/diffusion/README.md):
 * - step 0 ≠ the noise of the job's seed → another seed;
 * - a drawn step k → k+1 that the model does not reproduce → another model, skipped or fewer steps,
 *   latents made up to fit a count;
 * - the final latent not decoding to the delivered bytes → an image that is not the trajectory's
 *   (fabricated, or from another run).
 * A perceptual hash alone cannot tell half the steps from an honest re-run; these checks can.
 *
 * FAIL rests only on evidence that hashes to what the worker signed (the receipt's request and
 * output hashes, each image's hash and trajectory root): evidence that does not is the gateway's
 * fault (abstain and report it), never the worker's.
 */
import {
  computeImageOutputHash,
  computeImageRequestHash,
  hashImage,
  type ImageParams,
  type Receipt,
  trajectoryTree,
  ZERO_TRAJECTORY,
} from '@aipg/core';
import { type Address, encodeAbiParameters, type Hex, keccak256, stringToHex } from 'viem';
import { evidenceHash } from './evidence.ts';

/**
 * Largest relative-L2 between a re-run step (or the seed's noise) and the committed latent that is
 * still honest. Calibrated on the project's pipeline (`npm run calibrate:images -w @aipg/validator`,
 * figures in the README): 1,000 honest jobs, 6,500 checks, every one bitwise equal (0); fp16 rounding of
 * the latents gives ~2e-4; the smallest cheat measured was 4.8e-3 (half the steps, trajectory padded),
 * another model ≥ 1.3e-2, another seed's noise 1.4. Other CPU classes, and real GPUs across hardware,
 * need their own calibration before this slashes there.
 */
export const IMAGE_STEP_TOLERANCE = 1e-3;

/** Steps re-run per image (drawn after the job was committed, from the batch's randomness). */
export const IMAGE_STEPS_CHECKED = 2;

export type ImageReason = { code: string; detail: string };

/**
 * What re-runs the job's pipeline: the model the receipt names, on the validator's own machine
 * (`localReexecutor`), or a worker drawn to check for a validator without the weights.
 */
export type ImageReexecutor = {
  /** The pipeline name its receipts sign (`requestHash`): only jobs run by it are re-run. */
  name: string;
  initialLatent(params: ImageParams, image: number): Float32Array | Promise<Float32Array>;
  step(request: {
    promptTokenIds: readonly number[];
    negativeTokenIds: readonly number[];
    params: ImageParams;
    image: number;
    from: number;
    latent: Float32Array;
  }): Promise<Float32Array>;
  /** `keccak256` of the image the final latent of image `image` decodes to (the job's format and size). */
  decodeHash(image: number, latent: Float32Array, params: ImageParams): Promise<Hex>;
};

/** The re-executor over a pipeline on this machine (`@aipg/diffusion`'s `DiffusionPipeline` shape). */
export function localReexecutor(pipeline: {
  name: string;
  initialLatent(params: ImageParams, image: number): Float32Array;
  step: ImageReexecutor['step'];
  decode(
    latent: Float32Array,
    format: ImageParams['format'],
    size: { width: number; height: number },
  ): Promise<Uint8Array>;
}): ImageReexecutor {
  return {
    name: pipeline.name,
    initialLatent: (p, i) => pipeline.initialLatent(p, i),
    step: (r) => pipeline.step(r),
    decodeHash: async (_image, latent, p) =>
      hashImage(await pipeline.decode(latent, p.format, { width: p.width, height: p.height })),
  };
}

export type ImageAuditJob = {
  receipt: Receipt;
  promptTokenIds: readonly number[];
  negativeTokenIds: readonly number[];
  params: ImageParams;
  /** The pipeline the job's receipt says ran it (the worker's advertised `sampler`). */
  pipeline: string;
  /**
   * Each image as the gateway serves it: its hash and trajectory root (as signed), the latents the root
   * opens, and its bytes while the gateway still keeps them (they expire before the latents do; the decode
   * is checked against the signed hash either way).
   */
  images: {
    bytes: Uint8Array | undefined;
    hash: Hex;
    trajectoryRoot: Hex;
    latents: Float32Array[] | undefined;
  }[];
};

export type ImageVerdict = {
  verdict: 'pass' | 'fail' | 'abstain';
  reasons: ImageReason[];
  gatewayFaults: ImageReason[];
  /** Why there is no verdict (abstain without a gateway fault): no method for this pipeline. */
  unsupported?: string | undefined;
  evidenceHash: Hex;
  /** The steps re-run, per image, and the relative-L2 each measured. */
  checked: { image: number; step: number; relativeL2: number }[];
};

/** ‖a − b‖ / ‖b‖ (b the committed value); Infinity when the lengths differ. */
export function relativeL2(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! - b[i]!;
    d += x * x;
    n += b[i]! * b[i]!;
  }
  return n === 0 ? (d === 0 ? 0 : Number.POSITIVE_INFINITY) : Math.sqrt(d / n);
}

/**
 * The steps to re-run of image `image`: `count` distinct steps in [0, steps), drawn from the batch's
 * on-chain randomness, the audited leaf and the validator (fixed after the job was settled: the worker
 * could not know which steps would be checked).
 */
export function drawImageSteps(
  p: { randomness: Hex; leaf: Hex; validator: Address; image: number; steps: number },
  count = IMAGE_STEPS_CHECKED,
): number[] {
  const want = Math.min(count, p.steps);
  const out: number[] = [];
  for (let i = 0; out.length < want; i++) {
    const h = keccak256(
      encodeAbiParameters(
        [
          { type: 'bytes32' },
          { type: 'bytes32' },
          { type: 'bytes32' },
          { type: 'address' },
          { type: 'uint256' },
          { type: 'uint256' },
        ],
        [
          stringToHex('aipg.image-steps.v1', { size: 32 }),
          p.randomness,
          p.leaf,
          p.validator,
          BigInt(p.image),
          BigInt(i),
        ],
      ),
    );
    const step = Number(BigInt(h) % BigInt(p.steps));
    if (!out.includes(step)) out.push(step);
  }
  return out.sort((a, b) => a - b);
}

/** Judges one image job. `draw(image)` gives the steps to re-run for that image. */
export async function judgeImage(
  job: ImageAuditJob,
  pipeline: ImageReexecutor,
  draw: (image: number) => number[],
  tolerance = IMAGE_STEP_TOLERANCE,
): Promise<ImageVerdict> {
  const reasons: ImageReason[] = [];
  const gatewayFaults: ImageReason[] = [];
  const checked: ImageVerdict['checked'] = [];
  const done = (unsupported?: string): ImageVerdict => ({
    verdict: reasons.length > 0 ? 'fail' : gatewayFaults.length > 0 || unsupported ? 'abstain' : 'pass',
    reasons,
    gatewayFaults,
    unsupported,
    evidenceHash: evidenceHash(reasons),
    checked,
  });
  const { receipt, params } = job;
  // The evidence must be what the worker signed; otherwise it is the gateway's doing.
  if (
    computeImageRequestHash(job.promptTokenIds, job.negativeTokenIds, params, job.pipeline) !==
    receipt.requestHash
  )
    gatewayFaults.push({
      code: 'RECEIPT_REQUEST_HASH',
      detail: 'prompt, parameters or pipeline differ from what the worker signed',
    });
  if (
    job.images.length !== params.n ||
    computeImageOutputHash(
      job.images.map((i) => ({ imageHash: i.hash, trajectoryRoot: i.trajectoryRoot })),
    ) !== receipt.outputHash
  )
    gatewayFaults.push({
      code: 'RECEIPT_OUTPUT_HASH',
      detail: 'the images or roots served are not those the worker signed',
    });
  for (const [i, img] of job.images.entries()) {
    if (img.bytes && hashImage(img.bytes) !== img.hash.toLowerCase())
      gatewayFaults.push({
        code: 'IMAGE_BYTES',
        detail: `image ${i}: the bytes served do not hash to the signed image hash`,
      });
    if (img.trajectoryRoot.toLowerCase() === ZERO_TRAJECTORY) continue;
    if (
      !img.latents ||
      img.latents.length !== params.steps + 1 ||
      trajectoryTree(img.latents).root !== img.trajectoryRoot.toLowerCase()
    )
      gatewayFaults.push({
        code: 'IMAGE_LATENTS',
        detail: `image ${i}: the latents served do not open the signed trajectory root`,
      });
  }
  if (gatewayFaults.length > 0) return done();
  if (job.images.some((i) => i.trajectoryRoot.toLowerCase() === ZERO_TRAJECTORY))
    return done(`pipeline ${job.pipeline} commits no trajectory: no step can be re-run`);
  if (job.pipeline !== pipeline.name)
    return done(`pipeline ${job.pipeline} is not the one this validator re-runs (${pipeline.name})`);

  for (const [i, img] of job.images.entries()) {
    const latents = img.latents!;
    // The seed: a run from another seed is consistent with itself; only its start gives it away.
    const noise = relativeL2(await pipeline.initialLatent(params, i), latents[0]!);
    checked.push({ image: i, step: -1, relativeL2: noise });
    if (!(noise <= tolerance))
      reasons.push({
        code: 'IMAGE_SEED',
        detail: `image ${i}: step 0 is not the noise of seed ${(params.seed + i) >>> 0} (relative L2 ${noise.toExponential(2)})`,
      });
    for (const k of draw(i)) {
      const next = await pipeline.step({
        promptTokenIds: job.promptTokenIds,
        negativeTokenIds: job.negativeTokenIds,
        params,
        image: i,
        from: k,
        latent: latents[k]!,
      });
      const d = relativeL2(next, latents[k + 1]!);
      checked.push({ image: i, step: k, relativeL2: d });
      if (!(d <= tolerance))
        reasons.push({
          code: 'IMAGE_STEP',
          detail: `image ${i}: step ${k} → ${k + 1} does not reproduce (relative L2 ${d.toExponential(2)})`,
        });
    }
    // The delivered image must be the trajectory's end (the pipeline's decode is bitwise stable).
    const decoded = await pipeline.decodeHash(i, latents[params.steps]!, params);
    if (decoded.toLowerCase() !== img.hash.toLowerCase())
      reasons.push({
        code: 'IMAGE_DECODE',
        detail: `image ${i}: the delivered image is not the decode of its final latent`,
      });
  }
  return done();
}
