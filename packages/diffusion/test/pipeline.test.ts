import { hashImage, type ImageParams } from '@aipg/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createDiffusionPipeline,
  DIFFUSION_CAPABILITIES,
  type DiffusionPipeline,
  type DiffusionProgress,
  PipelineClosedError,
} from '../src/index.ts';
import { request, sameBytes, usePipeline, useTempDir } from './helpers.ts';

const pipeline = usePipeline(1);

const run = async (over: Partial<ImageParams> = {}, prompt?: string, negative?: string) =>
  (await pipeline().generate(request(over, prompt, negative))).images;

describe('createDiffusionPipeline', () => {
  test('names the pipeline and the model, and advertises its capabilities', () => {
    const p = pipeline();
    expect(p.name).toBe('aipg-ldm-v1');
    expect(p.model).toMatchObject({
      name: 'aipg-tiny-ldm',
      weightsHash: '0x3681ad1c880771b88f3e1e670843436496a2941cc23f349fd8acd9cbeb0749f8',
    });
    expect(p.capabilities).toEqual({
      sizes: [
        [256, 256],
        [512, 512],
        [256, 512],
        [512, 256],
      ],
      minSteps: 1,
      maxSteps: 50,
      maxN: 4,
      schedulers: ['ddim', 'euler'],
      trajectory: true,
    });
  });

  test('loads from a model directory as from the preset', async () => {
    const p = await createDiffusionPipeline({ modelDir: pipeline().model.dir });
    try {
      expect(p.model).toEqual(pipeline().model);
      const [a] = (await p.generate(request({ steps: 2 }))).images;
      const [b] = await run({ steps: 2 });
      expect(a!.trajectoryRoot).toBe(b!.trajectoryRoot);
    } finally {
      await p.close();
    }
  });
});

describe('generate', () => {
  test('delivers encoded images, steps + 1 latents and their trajectory root', async () => {
    const [image] = await run();
    expect(image!.latents).toHaveLength(9);
    for (const latent of image!.latents) expect(latent.length).toBe(4 * 32 * 32);
    expect(image!.trajectoryRoot).toMatch(/^0x[0-9a-f]{64}$/);
    expect(await sharp(image!.bytes).metadata()).toMatchObject({ format: 'png', width: 256, height: 256 });
    // latents[0] is the seed's noise.
    expect(image!.latents[0]).toEqual(pipeline().initialLatent(request().params, 0));
  });

  test('is bitwise deterministic for a seed across runs', async () => {
    const a = await run();
    const b = await run();
    expect(a[0]!.trajectoryRoot).toBe(b[0]!.trajectoryRoot);
    expect(hashImage(a[0]!.bytes)).toBe(hashImage(b[0]!.bytes));
  });

  test('another seed gives another image; image i of a job runs with seed + i', async () => {
    const job = await run({ n: 2 });
    const next = await run({ seed: 1235 });
    expect(job[1]!.trajectoryRoot).not.toBe(job[0]!.trajectoryRoot);
    expect(sameBytes(job[1]!.bytes, job[0]!.bytes)).toBe(false);
    expect(next[0]!.trajectoryRoot).toBe(job[1]!.trajectoryRoot);
    expect(sameBytes(next[0]!.bytes, job[1]!.bytes)).toBe(true);
  });

  test('the prompt, the negative prompt and the guidance each change the output', async () => {
    const base = await run({}, 'a lighthouse at dusk', '');
    const roots = new Set([
      base[0]!.trajectoryRoot,
      (await run({}, 'a lighthouse at dawn', ''))[0]!.trajectoryRoot,
      (await run({}, 'a lighthouse at dusk', 'blurry'))[0]!.trajectoryRoot,
      (await run({ guidance: 7.5 }, 'a lighthouse at dusk', ''))[0]!.trajectoryRoot,
      (await run({ guidance: 0 }, 'a lighthouse at dusk', ''))[0]!.trajectoryRoot,
    ]);
    expect(roots.size).toBe(5);
  });

  test('guidance 1 is the conditional prediction alone: the negative prompt is not read', async () => {
    const a = await run({ guidance: 1 }, 'a lighthouse', '');
    const b = await run({ guidance: 1 }, 'a lighthouse', 'blurry');
    expect(a[0]!.trajectoryRoot).toBe(b[0]!.trajectoryRoot);
    expect((await run({ guidance: 1.5 }, 'a lighthouse', 'blurry'))[0]!.trajectoryRoot).not.toBe(
      a[0]!.trajectoryRoot,
    );
  });

  test('prompt bytes past the 75th are not read', async () => {
    const long = 'x'.repeat(75);
    const a = await run({ steps: 2 }, long);
    const b = await run({ steps: 2 }, `${long} and more`);
    const c = await run({ steps: 2 }, long.slice(1));
    expect(b[0]!.trajectoryRoot).toBe(a[0]!.trajectoryRoot);
    expect(c[0]!.trajectoryRoot).not.toBe(a[0]!.trajectoryRoot);
  });

  test('ddim and euler are distinct, each deterministic', async () => {
    const ddim = await run({ scheduler: 'ddim' });
    const euler = await run({ scheduler: 'euler' });
    const again = await run({ scheduler: 'euler' });
    expect(euler[0]!.trajectoryRoot).not.toBe(ddim[0]!.trajectoryRoot);
    expect(euler[0]!.trajectoryRoot).toBe(again[0]!.trajectoryRoot);
    expect(sameBytes(euler[0]!.bytes, again[0]!.bytes)).toBe(true);
    // Both start from the same noise and end on a latent of ordinary scale.
    expect(euler[0]!.latents[0]).toEqual(ddim[0]!.latents[0]);
    const rms = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
    for (const image of [ddim[0]!, euler[0]!]) {
      expect(rms(image.latents.at(-1)!)).toBeGreaterThan(0.2);
      expect(rms(image.latents.at(-1)!)).toBeLessThan(10);
    }
  });

  test('every size and format: the size asked for, bytes deterministic', async () => {
    for (const [width, height] of DIFFUSION_CAPABILITIES.sizes) {
      const [image] = await run({ width, height, steps: 1 });
      expect(await sharp(image!.bytes).metadata()).toMatchObject({ format: 'png', width, height });
      expect(image!.latents[1]!.length).toBe((4 * width * height) / 64);
    }
    for (const format of ['png', 'webp', 'jpeg'] as const) {
      const [a] = await run({ format, steps: 2 });
      const [b] = await run({ format, steps: 2 });
      expect(await sharp(a!.bytes).metadata()).toMatchObject({ format, width: 256, height: 256 });
      expect(sameBytes(a!.bytes, b!.bytes)).toBe(true);
      expect([...new Set(containers(a!.bytes, format))], format).toEqual(
        {
          png: ['IHDR', 'pHYs', 'IDAT', 'IEND'],
          webp: ['VP8 '],
          jpeg: ['DQT', 'SOF0', 'DHT', 'SOS'],
        }[format],
      );
    }
  });

  test('progress arrives after every step of every image, in order, with previews spread over the job', async () => {
    const events: DiffusionProgress[] = [];
    const { images } = await pipeline().generate({
      ...request({ n: 2, steps: 4 }),
      partialImages: 3,
      onProgress: (p) => events.push(p),
    });
    expect(events.map((e) => [e.image, e.step, e.steps])).toEqual([
      [0, 1, 4],
      [0, 2, 4],
      [0, 3, 4],
      [0, 4, 4],
      [1, 1, 4],
      [1, 2, 4],
      [1, 3, 4],
      [1, 4, 4],
    ]);
    // 8 steps in all, 3 previews: after global steps ⌈8/4⌉, ⌈16/4⌉, ⌈24/4⌉.
    expect(events.filter((e) => e.preview).map((e) => [e.image, e.step])).toEqual([
      [0, 2],
      [0, 4],
      [1, 2],
    ]);
    for (const e of events.filter((e) => e.preview))
      expect(await sharp(e.preview!).metadata()).toMatchObject({ format: 'png', width: 256, height: 256 });
    // A preview of an image's last step is the image itself.
    expect(sameBytes(events[3]!.preview!, images[0]!.bytes)).toBe(true);
    // Without partialImages there are none.
    const plain: DiffusionProgress[] = [];
    await pipeline().generate({ ...request({ steps: 3 }), onProgress: (p) => plain.push(p) });
    expect(plain.map((e) => e.step)).toEqual([1, 2, 3]);
    expect(plain.some((e) => e.preview)).toBe(false);
  });

  test('an abort stops the run between steps', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const error = await pipeline()
      .generate({
        ...request({ steps: 20 }),
        signal: controller.signal,
        onProgress: ({ step }) => {
          seen.push(step);
          if (step === 3) controller.abort(new Error('client gone'));
        },
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'AbortError', code: 'DIFFUSION_ABORTED' });
    expect((error as Error).cause).toEqual(new Error('client gone'));
    expect(seen).toEqual([1, 2, 3]);

    const before: number[] = [];
    await expect(
      pipeline().generate({
        ...request(),
        signal: AbortSignal.abort(),
        onProgress: (p) => before.push(p.step),
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(before).toEqual([]);
  });

  test('invalid parameters are RangeErrors', async () => {
    const bad: Partial<ImageParams>[] = [
      { width: 300, height: 300 },
      { width: 1024, height: 1024 },
      { steps: 0 },
      { steps: 51 },
      { steps: 2.5 },
      { n: 0 },
      { n: 5 },
      { scheduler: 'plms' },
      { format: 'gif' as 'png' },
      { guidance: -1 },
      { guidance: Number.NaN },
      { seed: -1 },
      { seed: 2 ** 32 },
    ];
    for (const over of bad) await expect(pipeline().generate(request(over))).rejects.toThrow(RangeError);
    await expect(pipeline().generate(request({ width: 300, height: 300 }))).rejects.toThrow(
      'size 300×300 is not offered (256×256, 512×512, 256×512, 512×256)',
    );
    await expect(pipeline().generate(request({ steps: 51 }))).rejects.toThrow(
      'steps must be an integer from 1 to 50',
    );
    await expect(pipeline().generate(request({ n: 5 }))).rejects.toThrow('n must be an integer from 1 to 4');
    await expect(pipeline().generate({ ...request(), promptTokenIds: [65, 256] })).rejects.toThrow(
      RangeError,
    );
    await expect(pipeline().generate({ ...request(), negativeTokenIds: [-1] })).rejects.toThrow(RangeError);
    await expect(pipeline().generate({ ...request(), partialImages: 4 })).rejects.toThrow(RangeError);
  });
});

describe('step', () => {
  test('checks its arguments', async () => {
    const [image] = await run({ steps: 2 });
    const ok = { ...request({ steps: 2 }), image: 0, from: 1, latent: image!.latents[1]! };
    expect(await pipeline().step(ok)).toEqual(image!.latents[2]);
    for (const bad of [
      { from: 2 },
      { from: -1 },
      { image: 1 },
      { latent: new Float32Array(4 * 64 * 64) },
      { params: { ...ok.params, steps: 0 } },
      { promptTokenIds: [1000] },
    ])
      await expect(pipeline().step({ ...ok, ...bad })).rejects.toThrow(RangeError);
    expect(() => pipeline().initialLatent(ok.params, 1)).toThrow(RangeError);
  });
});

describe('decode', () => {
  test('the final latent decodes to the delivered bytes, in every format and size', async () => {
    for (const over of [
      {},
      { format: 'webp' as const },
      { format: 'jpeg' as const, width: 512, height: 256 },
    ]) {
      const [image] = await run({ ...over, steps: 3 });
      const p = request(over).params;
      const size = { width: p.width, height: p.height };
      expect(sameBytes(await pipeline().decode(image!.latents[3]!, p.format, size), image!.bytes)).toBe(true);
    }
    const [square] = await run({ steps: 2 });
    expect(sameBytes(await pipeline().decode(square!.latents[2]!, 'png'), square!.bytes)).toBe(true);
    await expect(pipeline().decode(new Float32Array(10), 'png')).rejects.toThrow(RangeError);
    await expect(pipeline().decode(square!.latents[2]!, 'png', { width: 512, height: 512 })).rejects.toThrow(
      RangeError,
    );
  });
});

describe('threads', () => {
  const dir = useTempDir('aipg-diffusion-threads-');
  let two: DiffusionPipeline;
  beforeAll(async () => {
    two = await createDiffusionPipeline({ preset: 'tiny', dir: dir(), threads: 2 });
  });
  afterAll(async () => {
    await two.close();
  });

  test('1 and 2 threads give the same bytes and trajectories', async () => {
    for (const over of [
      {},
      { width: 512, height: 512, steps: 4, scheduler: 'euler', format: 'webp' as const },
    ]) {
      const [a] = (await pipeline().generate(request(over))).images;
      const [b] = (await two.generate(request(over))).images;
      expect(b!.trajectoryRoot).toBe(a!.trajectoryRoot);
      expect(hashImage(b!.bytes)).toBe(hashImage(a!.bytes));
    }
  });
});

test('a closed pipeline refuses new calls; a running job stops at its next step', async () => {
  const p = await createDiffusionPipeline({ modelDir: pipeline().model.dir });
  let closing: Promise<void> | undefined;
  const running = p.generate({
    ...request({ steps: 20 }),
    onProgress: ({ step }) => {
      if (step === 2) closing = p.close();
    },
  });
  await expect(running).rejects.toThrow(PipelineClosedError);
  await closing;
  await expect(p.generate(request())).rejects.toThrow(PipelineClosedError);
  await expect(p.step({ ...request(), image: 0, from: 0, latent: new Float32Array(4096) })).rejects.toThrow(
    PipelineClosedError,
  );
});

/**
 * The structure of an encoded image: PNG chunk types, WebP chunk ids, JPEG markers up to the scan.
 * No text, time, EXIF, ICC or XMP: the bytes depend on the pixels alone.
 */
function containers(bytes: Uint8Array, format: 'png' | 'webp' | 'jpeg'): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ascii = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  const out: string[] = [];
  if (format === 'png')
    for (let at = 8; at < bytes.length; at += 12 + view.getUint32(at)) out.push(ascii(at + 4));
  else if (format === 'webp')
    for (
      let at = 12;
      at < bytes.length;
      at += 8 + view.getUint32(at + 4, true) + (view.getUint32(at + 4, true) & 1)
    )
      out.push(ascii(at));
  else {
    const names: Record<number, string> = { 219: 'DQT', 192: 'SOF0', 196: 'DHT', 218: 'SOS' };
    for (let at = 2; at < bytes.length; at += 2 + view.getUint16(at + 2)) {
      const marker = bytes[at + 1]!;
      out.push(names[marker] ?? marker.toString(16));
      if (marker === 0xda) break;
    }
  }
  return out;
}
