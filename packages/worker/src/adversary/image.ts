/**
 * DEVNET ONLY: dishonest image backends, for the red team (`aipg devnet --adversary image-…`). Each
 * signs an honest-looking receipt over the job it was asked for, with a trajectory its latents open,
 * so the gateway delivers and bills it; only a validator's re-run of drawn steps, of the seed's noise
 * or of the final decode can tell:
 * - `image-fewer-steps`: runs half the steps and pads the trajectory to the count it claims;
 * - `image-other-seed`: runs another seed than the job's;
 * - `image-substitute`: runs another model (the same architecture, other weights) under the claimed one;
 * - `image-random`: runs the job honestly but delivers a random image in its place.
 */
import { randomBytes } from 'node:crypto';
import { trajectoryTree } from '@aipg/core';
import sharp from 'sharp';
import type { BackendModel, GeneratedImage, ImageBackend } from '../backends/types.ts';
import { AdversaryError, AdversaryErrorCode } from './index.ts';

export const IMAGE_ADVERSARY_KINDS = [
  'image-fewer-steps',
  'image-other-seed',
  'image-substitute',
  'image-random',
] as const;
export type ImageAdversaryKind = (typeof IMAGE_ADVERSARY_KINDS)[number];

export const isImageAdversary = (kind: string): kind is ImageAdversaryKind =>
  (IMAGE_ADVERSARY_KINDS as readonly string[]).includes(kind);

/**
 * Wraps `inner` (a backend that exposes its latents) into the adversary `kind`. `claimed`: the model
 * it pretends to run (`image-substitute`, whose `inner` runs other weights).
 */
export function createImageAdversaryBackend(
  inner: ImageBackend,
  kind: ImageAdversaryKind,
  options: { devnet: true; claimed?: BackendModel | undefined },
): ImageBackend {
  if (options?.devnet !== true)
    throw new AdversaryError('A dishonest backend runs on a devnet only', {
      code: AdversaryErrorCode.refused,
      details: 'pass { devnet: true }: adversaries exist to be caught and slashed in tests and demos',
    });
  if (kind === 'image-substitute' && !options.claimed)
    throw new AdversaryError('A substitution needs the claimed (registered) model', {
      code: AdversaryErrorCode.refused,
    });
  const pad = (img: GeneratedImage, steps: number): GeneratedImage => {
    const latents = [...(img.latents ?? [])];
    while (latents.length < steps + 1) latents.push(latents.at(-1)!);
    return { ...img, latents, trajectoryRoot: trajectoryTree(latents).root };
  };
  return {
    kind: inner.kind,
    pipeline: inner.pipeline,
    capabilities: inner.capabilities,
    get model() {
      return kind === 'image-substitute' ? options.claimed! : inner.model;
    },
    load: () => inner.load(),
    close: () => inner.close(),
    // Its cross-checks of others' jobs run on what it really runs (honest, but for a substitute).
    ...(inner.check
      ? { check: (r: Parameters<NonNullable<ImageBackend['check']>>[0]) => inner.check!(r) }
      : {}),
    async generate(request) {
      const p = request.params;
      if (kind === 'image-fewer-steps') {
        const ran = { ...p, steps: Math.max(1, Math.floor(p.steps / 2)) };
        const out = await inner.generate({ ...request, params: ran });
        return { ...out, images: out.images.map((i) => pad(i, p.steps)) };
      }
      if (kind === 'image-other-seed')
        return inner.generate({ ...request, params: { ...p, seed: (p.seed + 1) >>> 0 } });
      const out = await inner.generate(request);
      if (kind !== 'image-random') return out;
      const images = await Promise.all(
        out.images.map(async (i) => {
          const raw = randomBytes(p.width * p.height * 3);
          const bytes = await sharp(raw, { raw: { width: p.width, height: p.height, channels: 3 } })
            .toFormat(p.format)
            .toBuffer();
          return { ...i, bytes: new Uint8Array(bytes) };
        }),
      );
      return { ...out, images };
    },
  };
}
