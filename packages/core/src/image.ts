/**
 * Image jobs: what one runs with, what its receipt commits to, and what it costs.
 *
 * An image job's receipt uses the same EIP-712 `Receipt` as text, with image meanings:
 * - `requestHash = keccak256(keccak(promptTokenIds) ‖ keccak(negativeTokenIds) ‖ keccak(params) ‖
 *   keccak(pipeline))`: the prompt and negative prompt as the text encoder's token ids, every parameter
 *   (size, steps, guidance, seed, scheduler, count, encoding) and the pipeline that ran them;
 * - `outputHash = keccak256(keccak(imageHash₀ ‖ imageHash₁ ‖ …) ‖ keccak(root₀ ‖ root₁ ‖ …))`: each image's
 *   bytes as delivered (`imageHash = keccak256(bytes)`) and each image's trajectory commitment, the
 *   Merkle root over its per-step latents (`ZERO_TRAJECTORY` from a backend that exposes no latents);
 * - `inputUnits` = prompt tokens, `outputUnits` = pixel-steps (`width × height × steps × n`);
 * - `fee = ⌈pixel-steps × perMegapixelStep × (1 + premium) / 10⁶⌉`.
 */
import type { Address, Hex } from 'viem';
import { bytesToHex, hexToBytes, stringToBytes } from 'viem';
import { keccakBytes, makeSortedMerkleTree, nodeHex, proofOfNode, verifySortedProof } from './merkle.ts';
import type { RateCard } from './model.ts';
import { BPS } from './pricing.ts';
import { receiptDomain, tokenIdsToBytes } from './receipt.ts';

export type ImageFormat = 'png' | 'webp' | 'jpeg';
export const IMAGE_FORMATS = ['png', 'webp', 'jpeg'] as const satisfies readonly ImageFormat[];

/** What an image job runs with (all of it signed into `requestHash`). */
export type ImageParams = {
  width: number;
  height: number;
  /** Denoising steps. */
  steps: number;
  /** Classifier-free guidance scale (1 = none). */
  guidance: number;
  /** Seed of the first image; image `i` uses `(seed + i) mod 2³²`. */
  seed: number;
  /** Images in the job (OpenAI's `n`). */
  n: number;
  /** The scheduler (sampler) of the denoising loop, e.g. `ddim`. */
  scheduler: string;
  /** How the delivered bytes are encoded. */
  format: ImageFormat;
};

/** No trajectory: the backend (ComfyUI, Automatic1111) does not expose its latents. */
export const ZERO_TRAJECTORY: Hex = `0x${'00'.repeat(32)}`;

export function imageParamsBytes(p: ImageParams): Uint8Array {
  return stringToBytes(
    JSON.stringify([p.width, p.height, p.steps, p.guidance, p.seed, p.n, p.scheduler, p.format]),
  );
}

function hashOfHashes(parts: readonly Uint8Array[]): Uint8Array {
  const buf = new Uint8Array(32 * parts.length);
  for (const [i, part] of parts.entries()) buf.set(part, 32 * i);
  return keccakBytes(buf);
}

/** The seed image `i` of a job runs with. */
export function imageSeed(p: Pick<ImageParams, 'seed'>, i: number): number {
  return (p.seed + i) >>> 0;
}

export function computeImageRequestHash(
  promptTokenIds: readonly number[],
  negativeTokenIds: readonly number[],
  params: ImageParams,
  pipeline: string,
): Hex {
  return bytesToHex(
    hashOfHashes([
      keccakBytes(tokenIdsToBytes(promptTokenIds)),
      keccakBytes(tokenIdsToBytes(negativeTokenIds)),
      keccakBytes(imageParamsBytes(params)),
      keccakBytes(stringToBytes(pipeline)),
    ]),
  );
}

/** `keccak256(bytes)` of one delivered image. */
export function hashImage(bytes: Uint8Array): Hex {
  return bytesToHex(keccakBytes(bytes));
}

export function computeImageOutputHash(images: readonly { imageHash: Hex; trajectoryRoot: Hex }[]): Hex {
  return bytesToHex(
    hashOfHashes([
      hashOfHashes(images.map((i) => hexToBytes(i.imageHash))),
      hashOfHashes(images.map((i) => hexToBytes(i.trajectoryRoot))),
    ]),
  );
}

/** `width × height × steps × n`: the receipt's `outputUnits`. */
export function imagePixelSteps(p: Pick<ImageParams, 'width' | 'height' | 'steps' | 'n'>): bigint {
  for (const [k, v] of Object.entries({ width: p.width, height: p.height, steps: p.steps, n: p.n }))
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${k} must be a positive integer`);
  return BigInt(p.width) * BigInt(p.height) * BigInt(p.steps) * BigInt(p.n);
}

/**
 * Fee of an image job in AIPG wei: megapixel-steps at the model's rate, the confidential premium on
 * top, rounded up once. Known before the job runs (size, steps and count are fixed): the gateway
 * reserves exactly this, and the worker signs exactly this.
 */
export function computeImageFee({
  params,
  rates,
  confidential = false,
  confidentialPremiumBps = 0,
}: {
  params: Pick<ImageParams, 'width' | 'height' | 'steps' | 'n'>;
  rates: Pick<RateCard, 'perMegapixelStep'>;
  confidential?: boolean;
  confidentialPremiumBps?: number;
}): bigint {
  const premium = confidential ? BPS + BigInt(confidentialPremiumBps) : BPS;
  const base = imagePixelSteps(params) * rates.perMegapixelStep * premium;
  const div = 1_000_000n * BPS;
  return base === 0n ? 0n : (base - 1n) / div + 1n;
}

/**
 * One step of a trajectory: `keccak256(uint32 step (big-endian) ‖ keccak256(latent))`, the latent as
 * the float32 little-endian bytes after that step (step 0 is the initial noise, step k the latent after
 * k denoising steps). A validator re-runs step k → k+1 from two opened latents and checks both leaves.
 */
export function trajectoryLeaf(step: number, latent: Float32Array): Uint8Array {
  if (!Number.isInteger(step) || step < 0 || step > 0xffffffff) throw new RangeError('invalid step');
  const buf = new Uint8Array(36);
  new DataView(buf.buffer).setUint32(0, step, false);
  buf.set(keccakBytes(latentBytes(latent)), 4);
  return keccakBytes(buf);
}

/** A latent's float32 values as little-endian bytes (what its digest is taken over). */
export function latentBytes(latent: Float32Array): Uint8Array {
  const out = new Uint8Array(latent.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < latent.length; i++) view.setFloat32(4 * i, latent[i]!, true);
  return out;
}

/**
 * The trajectory commitment of one image: the sorted Merkle tree (OpenZeppelin's layout, as receipts
 * use) over `trajectoryLeaf(k, latents[k])` for k = 0…steps. Returns the root and a proof per step.
 */
export function trajectoryTree(latents: readonly Float32Array[]): {
  root: Hex;
  proof(step: number): Hex[];
} {
  const leaves = new Uint8Array(32 * latents.length);
  for (const [k, latent] of latents.entries()) leaves.set(trajectoryLeaf(k, latent), 32 * k);
  const tree = makeSortedMerkleTree(leaves, latents.length);
  return {
    root: nodeHex(tree.nodes, 0),
    proof: (step) => {
      const i = tree.treeIndex[step];
      if (i === undefined) throw new RangeError(`no step ${step} in the trajectory`);
      return proofOfNode(tree.nodes, i);
    },
  };
}

/** Whether `latent` is the committed latent after `step` under `root`. */
export function verifyTrajectoryStep(
  root: Hex,
  step: number,
  latent: Float32Array,
  proof: readonly Hex[],
): boolean {
  try {
    return verifySortedProof(root, trajectoryLeaf(step, latent), proof);
  } catch {
    return false;
  }
}

/**
 * The "token ids" an image prompt is committed as: its UTF-8 bytes. Exact and reversible for every
 * pipeline (a text encoder with its own vocabulary tokenizes the decoded text inside the worker).
 */
export function imagePromptTokenIds(text: string): number[] {
  return [...new TextEncoder().encode(text)];
}

/** The text of `imagePromptTokenIds` (invalid UTF-8 → U+FFFD). */
export function imagePromptText(ids: readonly number[]): string {
  return new TextDecoder().decode(Uint8Array.from(ids));
}

/**
 * The format and size an encoded image declares in its header (PNG IHDR, JPEG SOFn, WebP VP8/VP8L/
 * VP8X), or undefined when the bytes are none of the three. A header check, not a full decode: it
 * catches a worker delivering something other than what the receipt prices (another size, not an image).
 */
export function imageInfo(
  bytes: Uint8Array,
): { format: ImageFormat; width: number; height: number } | undefined {
  const b = bytes;
  const u16be = (i: number) => (b[i]! << 8) | b[i + 1]!;
  const u32be = (i: number) => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
  const u16le = (i: number) => b[i]! | (b[i + 1]! << 8);
  const u24le = (i: number) => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16);
  const ascii = (i: number, n: number) => String.fromCharCode(...b.subarray(i, i + n));
  if (b.length >= 24 && u32be(0) === 0x89504e47 && u32be(4) === 0x0d0a1a0a && ascii(12, 4) === 'IHDR')
    return { format: 'png', width: u32be(16), height: u32be(20) };
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) return undefined;
      const marker = b[i + 1]!;
      if (marker === 0xff) {
        i += 1;
        continue;
      }
      const length = u16be(i + 2);
      // SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC).
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
        return { format: 'jpeg', width: u16be(i + 7), height: u16be(i + 5) };
      if (marker === 0xd9 || marker === 0xda) return undefined;
      i += 2 + length;
    }
    return undefined;
  }
  if (b.length >= 30 && ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') {
    const chunk = ascii(12, 4);
    if (chunk === 'VP8 ' && b[23] === 0x9d && b[24] === 0x01 && b[25] === 0x2a)
      return { format: 'webp', width: u16le(26) & 0x3fff, height: u16le(28) & 0x3fff };
    if (chunk === 'VP8L' && b[20] === 0x2f) {
      const bits = b[21]! | (b[22]! << 8) | (b[23]! << 16) | (b[24]! << 24);
      return { format: 'webp', width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    if (chunk === 'VP8X') return { format: 'webp', width: u24le(24) + 1, height: u24le(27) + 1 };
  }
  return undefined;
}

/**
 * `count` latents of equal length from their float32 little-endian bytes (a frame's `latents`), or
 * undefined when the bytes do not split so.
 */
export function latentsFromBytes(bytes: Uint8Array, count: number): Float32Array[] | undefined {
  if (count < 1 || bytes.length === 0 || bytes.length % (4 * count) !== 0) return undefined;
  const size = bytes.length / 4 / count;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: count }, (_, k) => {
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = view.getFloat32(4 * (k * size + i), true);
    return out;
  });
}

/**
 * What an image cross-check asks of a worker serving the model (for a validator without the weights):
 * the seed's noise (`noise`), one denoising step from a committed latent (`step`), or the decode of the
 * final latent (`decode`). The worker signs its answer (`ImageCheck`, the receipts' domain).
 */
export type ImageCheckOp = 'noise' | 'step' | 'decode';
export const IMAGE_CHECK_OPS = ['noise', 'step', 'decode'] as const satisfies readonly ImageCheckOp[];

export type ImageCheckAttestation = {
  /** The `image-check` frame's `jobId` (fresh per check). */
  checkJobId: Hex;
  auditedJobId: Hex;
  /** The checking worker's bond owner. */
  worker: Address;
  modelId: Hex;
  /** The audited job's request hash as the checker's pipeline computes it: what it ran. */
  requestHash: Hex;
  /** `IMAGE_CHECK_OPS.indexOf(op)`. */
  op: number;
  image: number;
  step: number;
  /** `keccak256(latentBytes(latent))` of the latent it started from (zero for `noise`). */
  input: Hex;
  /** `keccak256(latentBytes(result))` for `noise` and `step`; the decoded image's `keccak256` for `decode`. */
  output: Hex;
};

export const imageCheckTypes = {
  ImageCheck: [
    { name: 'checkJobId', type: 'bytes32' },
    { name: 'auditedJobId', type: 'bytes32' },
    { name: 'worker', type: 'address' },
    { name: 'modelId', type: 'bytes32' },
    { name: 'requestHash', type: 'bytes32' },
    { name: 'op', type: 'uint8' },
    { name: 'image', type: 'uint32' },
    { name: 'step', type: 'uint32' },
    { name: 'input', type: 'bytes32' },
    { name: 'output', type: 'bytes32' },
  ],
} as const;

/** `keccak256(latentBytes(latent))`. */
export function hashLatent(latent: Float32Array): Hex {
  return bytesToHex(keccakBytes(latentBytes(latent)));
}

/** Typed-data parameters for viem's `signTypedData` / `recoverTypedDataAddress`: the receipts' domain. */
export function imageCheckTypedData(a: ImageCheckAttestation, chainId: number, verifyingContract: Address) {
  return {
    domain: receiptDomain(chainId, verifyingContract),
    types: imageCheckTypes,
    primaryType: 'ImageCheck',
    message: a,
  } as const;
}
