import {
  computeModelId,
  type ImageParams,
  imagePromptTokenIds,
  imageSeed,
  ZERO_TRAJECTORY,
} from '@aipg/core';
import sharp from 'sharp';
import type { Hex } from 'viem';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import {
  type A1111Backend,
  type A1111BackendOptions,
  createA1111Backend,
} from '../../src/backends/a1111/index.ts';
import { encodeImage, type ImageLimits } from '../../src/backends/image.ts';
import type { ImageRequest } from '../../src/backends/types.ts';
import { type FakeA1111, type FakeA1111Options, fakeSha256, startFakeA1111 } from './helpers/fake-a1111.ts';

const NAME = 'aipg-test-sd';
const CKPT = { file: 'aipg-tiny.safetensors', sha256: fakeSha256('aipg-tiny') };
const OTHER = { file: 'sd_xl_base_1.0.safetensors', sha256: fakeSha256('sdxl') };
const HASH = `0x${CKPT.sha256}` as Hex;
const LIMITS: ImageLimits = {
  sizes: [
    [64, 96],
    [64, 64],
    [96, 64],
  ],
  steps: [1, 12],
  guidance: [1, 10],
  maxN: 4,
};

let fake: FakeA1111;
let backend: A1111Backend;
const opened: { close(): Promise<void> }[] = [];

const never = () => new AbortController().signal;
const params = (p: Partial<ImageParams> = {}): ImageParams => ({
  width: 64,
  height: 64,
  steps: 4,
  guidance: 5,
  seed: 42,
  n: 1,
  scheduler: 'euler',
  format: 'png',
  ...p,
});
const job = (p: Partial<ImageParams> = {}, rest: Partial<ImageRequest> = {}): ImageRequest => ({
  promptTokenIds: imagePromptTokenIds('a lighthouse at dusk, 35mm'),
  negativeTokenIds: imagePromptTokenIds('blurry'),
  params: params(p),
  partialImages: 0,
  signal: never(),
  ...rest,
});
const backendFor = (url: string, extra: Partial<A1111BackendOptions> = {}) => {
  const b = createA1111Backend({
    name: NAME,
    weightsHash: HASH,
    url,
    checkpoint: CKPT.file,
    limits: LIMITS,
    progressIntervalMs: 1,
    ...extra,
  });
  opened.push(b);
  return b;
};
const fakeWith = async (options: Partial<FakeA1111Options> = {}) => {
  const f = await startFakeA1111({ checkpoints: [CKPT, OTHER], ...options });
  opened.push(f);
  return f;
};
const isPng = (b: Uint8Array) => Buffer.from(b.subarray(0, 8)).equals(Buffer.from('89504e470d0a1a0a', 'hex'));
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const withoutPolls = (requests: readonly string[]) => requests.filter((r) => r !== 'GET /sdapi/v1/progress');

beforeAll(async () => {
  fake = await fakeWith();
  backend = backendFor(fake.url);
  await backend.load();
});
afterAll(async () => {
  for (const o of opened) await o.close();
});
beforeEach(() => {
  fake.reset();
});

describe('load', () => {
  test('finds the checkpoint, runs a smoke generation on it, then checks the sha256 A1111 computed on load', async () => {
    const fresh = await fakeWith();
    const b = backendFor(fresh.url);
    await b.load();
    expect(withoutPolls(fresh.requests)).toEqual([
      'GET /sdapi/v1/sd-models',
      'GET /sdapi/v1/samplers',
      'GET /sdapi/v1/schedulers',
      'POST /sdapi/v1/txt2img',
      'GET /sdapi/v1/sd-models',
    ]);
    expect(fresh.txt2img).toEqual([
      expect.objectContaining({
        width: 64,
        height: 64,
        steps: 1,
        seed: 0,
        batch_size: 1,
        n_iter: 1,
        subseed_strength: 0,
        sampler_name: 'Euler',
        override_settings: { sd_model_checkpoint: CKPT.file },
      }),
    ]);
    expect(b.kind).toBe('a1111');
    expect(b.pipeline).toBe('a1111');
    expect(b.model).toEqual({ name: NAME, weightsHash: HASH, modelId: computeModelId(NAME, HASH) });
    expect(b.capabilities).toEqual({
      sizes: [
        [64, 96],
        [64, 64],
        [96, 64],
      ],
      minSteps: 1,
      maxSteps: 12,
      maxN: 4,
      schedulers: ['euler', 'euler_a', 'dpmpp_2m_karras', 'ddim'],
      trajectory: false,
    });
  });

  test('a checkpoint whose sha256 is not the registered hash is BACKEND_WEIGHTS_MISMATCH (known before or after the smoke run)', async () => {
    const wrong = { weightsHash: `0x${'cd'.repeat(32)}` as Hex };
    const known = await fakeWith({ hashed: [CKPT.file] });
    await expect(backendFor(known.url, wrong).load()).rejects.toMatchObject({
      code: 'BACKEND_WEIGHTS_MISMATCH',
      details: expect.stringContaining(CKPT.sha256),
    });
    expect(known.txt2img).toEqual([]);
    const unknown = await fakeWith();
    await expect(backendFor(unknown.url, wrong).load()).rejects.toMatchObject({
      code: 'BACKEND_WEIGHTS_MISMATCH',
    });
    expect(unknown.txt2img).toHaveLength(1);
  });

  test('a checkpoint the server does not list is BACKEND_MODEL_NOT_FOUND, nothing generated', async () => {
    await expect(backendFor(fake.url, { checkpoint: 'missing.safetensors' }).load()).rejects.toMatchObject({
      code: 'BACKEND_MODEL_NOT_FOUND',
      retryable: false,
      details: expect.stringContaining(OTHER.file),
    });
    expect(fake.txt2img).toEqual([]);
  });

  test('an A1111 before /schedulers: samplers that need a scheduler are not advertised, none is sent', async () => {
    const old = await fakeWith({ noSchedulers: true });
    const b = backendFor(old.url);
    await b.load();
    expect(b.capabilities.schedulers).toEqual(['euler', 'euler_a', 'ddim']);
    expect(old.txt2img[0]).not.toHaveProperty('scheduler');
    await expect(b.generate(job({ scheduler: 'dpmpp_2m_karras' }))).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    });
  });

  test('an unreachable server is a retryable BACKEND_UNREACHABLE; generate before load is BACKEND_NOT_LOADED', async () => {
    const b = backendFor('http://127.0.0.1:9');
    await expect(b.load()).rejects.toMatchObject({ code: 'BACKEND_UNREACHABLE', retryable: true });
    await expect(b.generate(job())).rejects.toMatchObject({ code: 'BACKEND_NOT_LOADED' });
  });
});

describe('generate', () => {
  test('a PNG of the asked size, byte-identical for the same seed, different for another', async () => {
    const a = await backend.generate(job({ width: 96, height: 64 }));
    const b = await backend.generate(job({ width: 96, height: 64 }));
    const c = await backend.generate(job({ width: 96, height: 64, seed: 43 }));
    const bytes = a.images[0]!.bytes;
    expect(isPng(bytes)).toBe(true);
    expect(await sharp(bytes).metadata()).toMatchObject({ format: 'png', width: 96, height: 64 });
    expect(a.images[0]!.trajectoryRoot).toBe(ZERO_TRAJECTORY);
    expect(same(b.images[0]!.bytes, bytes)).toBe(true);
    expect(same(c.images[0]!.bytes, bytes)).toBe(false);
  });

  test('webp and jpeg: the PNG re-encoded with fixed settings, deterministically', async () => {
    const png = (await backend.generate(job())).images[0]!.bytes;
    for (const format of ['webp', 'jpeg'] as const) {
      const first = (await backend.generate(job({ format }))).images[0]!.bytes;
      const again = (await backend.generate(job({ format }))).images[0]!.bytes;
      expect(await sharp(first).metadata()).toMatchObject({ format, width: 64, height: 64 });
      expect(same(again, first)).toBe(true);
      expect(same(first, await encodeImage(png, format))).toBe(true);
    }
  });

  test('n images: one txt2img of batch n from the job seed; image i is the single image of imageSeed(params, i)', async () => {
    const r = await backend.generate(job({ n: 3, seed: 100, scheduler: 'dpmpp_2m_karras', guidance: 6.5 }));
    expect(fake.txt2img).toEqual([
      expect.objectContaining({
        prompt: 'a lighthouse at dusk, 35mm',
        negative_prompt: 'blurry',
        seed: 100,
        batch_size: 3,
        n_iter: 1,
        subseed_strength: 0,
        sampler_name: 'DPM++ 2M',
        scheduler: 'karras',
        cfg_scale: 6.5,
        steps: 4,
        enable_hr: false,
        override_settings: { sd_model_checkpoint: `${CKPT.file} [${CKPT.sha256.slice(0, 10)}]` },
      }),
    ]);
    expect(r.images).toHaveLength(3);
    for (let i = 0; i < 3; i++) {
      const alone = await backend.generate(
        job({ seed: imageSeed(params({ seed: 100 }), i), scheduler: 'dpmpp_2m_karras', guidance: 6.5 }),
      );
      expect(same(alone.images[0]!.bytes, r.images[i]!.bytes)).toBe(true);
    }
  });

  test('seeds wrapping at 2^32 (A1111 would run 2^32): one request per run of consecutive seeds', async () => {
    const r = await backend.generate(job({ n: 3, seed: 0xfffffffe }));
    expect(fake.txt2img.map((b) => [b.seed, b.batch_size])).toEqual([
      [0xfffffffe, 2],
      [0, 1],
    ]);
    const last = await backend.generate(job({ seed: 0 }));
    expect(same(last.images[0]!.bytes, r.images[2]!.bytes)).toBe(true);
  });

  test('progress: polled while the job runs, every step in order, each step for every image of the batch', async () => {
    const seen: { image: number; step: number; steps: number }[] = [];
    await backend.generate(job({ n: 2, steps: 3 }, { onProgress: (p) => seen.push(p) }));
    expect(seen.map((p) => [p.image, p.step, p.steps])).toEqual([
      [0, 1, 3],
      [1, 1, 3],
      [0, 2, 3],
      [1, 2, 3],
      [0, 3, 3],
      [1, 3, 3],
    ]);
  });

  test("another client's job running first (other step count) is not reported as ours", async () => {
    fake.foreignJob = { steps: 5 };
    const foreignSteps: number[] = [];
    fake.onStep = (who, step) => who === 'foreign' && foreignSteps.push(step);
    const seen: number[] = [];
    await backend.generate(job({ steps: 3 }, { onProgress: (p) => seen.push(p.step) }));
    expect(foreignSteps).toEqual([1, 2, 3, 4, 5]);
    expect(seen).toEqual([1, 2, 3]);
  });

  test('previews: partial_images of the live previews ride on progress events', async () => {
    fake.previews = true;
    const seen: { step: number; preview?: Uint8Array }[] = [];
    await backend.generate(job({ steps: 3 }, { partialImages: 1, onProgress: (p) => seen.push(p) }));
    expect(seen.map((p) => [p.step, p.preview !== undefined])).toEqual([
      [1, false],
      [2, true],
      [3, false],
    ]);
    expect(isPng(seen[1]!.preview!)).toBe(true);
  });
});

describe('refusals', () => {
  test('size, steps, guidance, n or scheduler outside the limits: INVALID_INPUT, nothing sent', async () => {
    const outside: Partial<ImageParams>[] = [
      { width: 512, height: 512 },
      { steps: 13 },
      { guidance: 11 },
      { n: 5 },
      { scheduler: 'lms' },
    ];
    for (const p of outside)
      await expect(backend.generate(job(p)), JSON.stringify(p)).rejects.toMatchObject({
        code: 'INVALID_INPUT',
      });
    await expect(backend.generate(job({}, { promptTokenIds: [0xff] }))).rejects.toMatchObject({
      code: 'BACKEND_PROMPT_MISMATCH',
    });
    expect(fake.requests).toEqual([]);
  });

  test('invalid limits or scheduler names are refused when the backend is created', () => {
    expect(() => backendFor(fake.url, { limits: { ...LIMITS, sizes: [[100, 64]] } })).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT' }),
    );
    expect(() => backendFor(fake.url, { samplers: { 'DPM++ 2M': { sampler: 'DPM++ 2M' } } })).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT' }),
    );
  });
});

describe('cancel', () => {
  test('abort while our job runs: /sdapi/v1/interrupt, then the promise rejects with INFERENCE_ABORTED', async () => {
    fake.holdAtStep = 2;
    const controller = new AbortController();
    const run = backend.generate(
      job({ steps: 4 }, { signal: controller.signal, onProgress: (p) => p.step === 2 && controller.abort() }),
    );
    await expect(run).rejects.toMatchObject({ code: 'INFERENCE_ABORTED' });
    expect(fake.interrupts).toEqual([{ job: 'api', step: 2 }]);
    fake.holdAtStep = undefined;
    const next = await backend.generate(job());
    expect(next.images).toHaveLength(1);
  });

  test("abort while queued behind another client's job: rejects at once, the interrupt waits for our job", async () => {
    fake.foreignJob = { steps: 4 };
    const controller = new AbortController();
    fake.onStep = (who, step) => who === 'foreign' && step === 2 && controller.abort();
    const interrupted = fake.nextInterrupt();
    const run = backend.generate(job({ steps: 3 }, { signal: controller.signal }));
    await expect(run).rejects.toMatchObject({ code: 'INFERENCE_ABORTED' });
    expect(fake.interrupts).toEqual([]);
    await interrupted;
    // Our job, once it started; never the other client's.
    expect(fake.interrupts).toEqual([{ job: 'api', step: expect.any(Number) }]);
    // The next job waits for the server to be done with the aborted one.
    const seen: number[] = [];
    await backend.generate(job({ steps: 2 }, { onProgress: (p) => seen.push(p.step) }));
    expect(seen).toEqual([1, 2]);
  });

  test('an already aborted signal rejects at once, nothing sent', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(backend.generate(job({}, { signal: controller.signal }))).rejects.toMatchObject({
      code: 'INFERENCE_ABORTED',
    });
    expect(fake.requests).toEqual([]);
  });
});

describe('faults', () => {
  test('a server that did not run the asked seeds is BACKEND_PROTOCOL_ERROR', async () => {
    fake.fault = { kind: 'wrong-seed' };
    await expect(backend.generate(job({ n: 2 }))).rejects.toMatchObject({
      code: 'BACKEND_PROTOCOL_ERROR',
      retryable: false,
      details: 'asked [42,43], all_seeds [43,44]',
    });
  });

  test('a server that ignored the checkpoint override is BACKEND_WEIGHTS_MISMATCH', async () => {
    // Another backend loads the other checkpoint; then the server stops switching.
    await backendFor(fake.url, { checkpoint: OTHER.file, weightsHash: `0x${OTHER.sha256}` }).load();
    fake.fault = { kind: 'ignore-override' };
    await expect(backend.generate(job())).rejects.toMatchObject({
      code: 'BACKEND_WEIGHTS_MISMATCH',
      details: expect.stringContaining(`ran sd_model_hash ${OTHER.sha256.slice(0, 10)}`),
    });
  });

  test('more images than asked (a grid) is BACKEND_PROTOCOL_ERROR', async () => {
    fake.fault = { kind: 'extra-image' };
    await expect(backend.generate(job({ n: 2 }))).rejects.toMatchObject({ code: 'BACKEND_PROTOCOL_ERROR' });
  });

  test("HTTP 500 is a retryable BACKEND_HTTP_ERROR with A1111's message", async () => {
    fake.fault = { kind: 'http-500', path: '/sdapi/v1/txt2img' };
    await expect(backend.generate(job())).rejects.toMatchObject({
      code: 'BACKEND_HTTP_ERROR',
      retryable: true,
      details: 'OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB',
    });
  });

  test('a server gone after load: the job is a retryable BACKEND_UNREACHABLE', async () => {
    const gone = await fakeWith();
    const b = backendFor(gone.url);
    await b.load();
    await gone.close();
    await expect(b.generate(job())).rejects.toMatchObject({ code: 'BACKEND_UNREACHABLE', retryable: true });
  });
});
