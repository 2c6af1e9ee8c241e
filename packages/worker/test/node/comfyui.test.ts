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
  type ComfyUiBackend,
  type ComfyUiRecipe,
  createComfyUiBackend,
  DEFAULT_COMFYUI_RECIPE,
} from '../../src/backends/comfyui/index.ts';
import { encodeImage } from '../../src/backends/image.ts';
import type { ImageRequest } from '../../src/backends/types.ts';
import { type FakeComfyUi, startFakeComfyUi } from './helpers/fake-comfyui.ts';

const NAME = 'aipg-test-sd';
const HASH = `0x${'ab'.repeat(32)}` as Hex;
const CHECKPOINT = 'aipg-tiny.safetensors';
const RECIPE: ComfyUiRecipe = {
  ...DEFAULT_COMFYUI_RECIPE,
  name: 'test-txt2img',
  limits: {
    sizes: [
      [64, 96],
      [64, 64],
      [96, 64],
    ],
    steps: [1, 12],
    guidance: [1, 10],
    maxN: 4,
  },
};

let fake: FakeComfyUi;
let backend: ComfyUiBackend;
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
const backendFor = (url: string, extra: Partial<Parameters<typeof createComfyUiBackend>[0]> = {}) => {
  const b = createComfyUiBackend({
    name: NAME,
    weightsHash: HASH,
    url,
    checkpoint: CHECKPOINT,
    recipe: RECIPE,
    ...extra,
  });
  opened.push(b);
  return b;
};
const isPng = (b: Uint8Array) => Buffer.from(b.subarray(0, 8)).equals(Buffer.from('89504e470d0a1a0a', 'hex'));

beforeAll(async () => {
  fake = await startFakeComfyUi();
  backend = backendFor(fake.url);
  await backend.load();
});
afterAll(async () => {
  for (const b of opened) await b.close();
  await fake?.close();
});
beforeEach(async () => {
  await fake.reset();
});

describe('load', () => {
  test('finds the checkpoint on /object_info and runs a smoke generation before advertising the recipe', async () => {
    const b = backendFor(fake.url);
    expect(b.capabilities.schedulers).toEqual(Object.keys(RECIPE.samplers));
    await b.load();
    expect(fake.requests).toEqual([
      'GET /object_info',
      'POST /prompt',
      expect.stringMatching(/^GET \/history\//),
      'GET /view',
    ]);
    // The smallest allowed size, the fewest steps, one image, on this backend's own client id.
    expect(fake.prompts).toHaveLength(1);
    expect(fake.prompts[0]).toMatchObject({
      client_id: b.clientId,
      prompt: {
        '4': { inputs: { ckpt_name: CHECKPOINT } },
        '5': { inputs: { width: 64, height: 64, batch_size: 1 } },
        '3': { inputs: { steps: 1, seed: 0 } },
      },
    });
    expect(b.clientId).not.toBe(backend.clientId);
    expect(b.kind).toBe('comfyui');
    expect(b.pipeline).toBe('comfyui');
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
    await b.load(); // idempotent
    expect(fake.prompts).toHaveLength(1);
  });

  test('a checkpoint the server does not list is BACKEND_MODEL_NOT_FOUND, before any prompt', async () => {
    const b = backendFor(fake.url, { checkpoint: 'missing.safetensors' });
    await expect(b.load()).rejects.toMatchObject({
      code: 'BACKEND_MODEL_NOT_FOUND',
      retryable: false,
      details: expect.stringContaining(CHECKPOINT),
    });
    expect(fake.prompts).toEqual([]);
    await expect(b.generate(job())).rejects.toMatchObject({ code: 'BACKEND_NOT_LOADED' });
  });

  test('recipe samplers the server lacks are not advertised (newer combo format read too)', async () => {
    const small = await startFakeComfyUi({
      samplers: ['euler', 'ddim'],
      schedulers: ['normal'],
      comboV2: true,
    });
    opened.push(small);
    const b = backendFor(small.url);
    await b.load();
    expect(b.capabilities.schedulers).toEqual(['euler']);
    await expect(b.generate(job({ scheduler: 'ddim' }))).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  test('a failed smoke run fails load: nothing is advertised', async () => {
    fake.fault = { kind: 'wrong-size' };
    const b = backendFor(fake.url);
    await expect(b.load()).rejects.toMatchObject({ code: 'BACKEND_PROTOCOL_ERROR' });
    await expect(b.generate(job())).rejects.toMatchObject({ code: 'BACKEND_NOT_LOADED' });
  });

  test('an unreachable server is a retryable BACKEND_UNREACHABLE; HTTP 500 a retryable BACKEND_HTTP_ERROR', async () => {
    await expect(backendFor('http://127.0.0.1:9').load()).rejects.toMatchObject({
      code: 'BACKEND_UNREACHABLE',
      retryable: true,
    });
    fake.fault = { kind: 'http-500', path: '/object_info' };
    await expect(backendFor(fake.url).load()).rejects.toMatchObject({
      code: 'BACKEND_HTTP_ERROR',
      retryable: true,
    });
  });
});

describe('generate', () => {
  test('a PNG of the asked size, byte-identical for the same seed, different for another', async () => {
    const a = await backend.generate(job({ width: 64, height: 96 }));
    const b = await backend.generate(job({ width: 64, height: 96 }));
    const c = await backend.generate(job({ width: 64, height: 96, seed: 43 }));
    expect(a.images).toHaveLength(1);
    const bytes = a.images[0]!.bytes;
    expect(isPng(bytes)).toBe(true);
    expect(await sharp(bytes).metadata()).toMatchObject({ format: 'png', width: 64, height: 96 });
    expect(a.images[0]!.trajectoryRoot).toBe(ZERO_TRAJECTORY);
    expect(Buffer.from(b.images[0]!.bytes).equals(Buffer.from(bytes))).toBe(true);
    expect(Buffer.from(c.images[0]!.bytes).equals(Buffer.from(bytes))).toBe(false);
    expect(a.timings.totalMs).toBeGreaterThan(0);
  });

  test('webp and jpeg: the PNG re-encoded with fixed settings, deterministically', async () => {
    const png = (await backend.generate(job())).images[0]!.bytes;
    for (const format of ['webp', 'jpeg'] as const) {
      const first = (await backend.generate(job({ format }))).images[0]!.bytes;
      const again = (await backend.generate(job({ format }))).images[0]!.bytes;
      expect(await sharp(first).metadata()).toMatchObject({ format, width: 64, height: 64 });
      expect(Buffer.from(again).equals(Buffer.from(first))).toBe(true);
      expect(Buffer.from(first).equals(Buffer.from(await encodeImage(png, format)))).toBe(true);
      // No metadata carried over.
      const meta = await sharp(first).metadata();
      expect(meta.exif).toBeUndefined();
      expect(meta.icc).toBeUndefined();
    }
  });

  test('the graph sent is the recipe with its slots filled: no other node, no other input', async () => {
    await backend.generate(
      job({ scheduler: 'dpmpp_2m_karras', steps: 7, guidance: 3.5, width: 96, height: 64 }),
    );
    expect(fake.prompts).toHaveLength(1);
    const { prompt, client_id, prompt_id } = fake.prompts[0]!;
    expect(client_id).toBe(backend.clientId);
    expect(prompt_id).toEqual(expect.any(String));
    expect(Object.keys(prompt).sort()).toEqual(Object.keys(RECIPE.graph).sort());
    const slots = new Set(Object.values(RECIPE.slots).map(([id, input]) => `${id}.${input}`));
    for (const [id, node] of Object.entries(RECIPE.graph)) {
      expect(prompt[id]!.class_type).toBe(node.class_type);
      expect(Object.keys(prompt[id]!.inputs).sort()).toEqual(Object.keys(node.inputs).sort());
      for (const [input, value] of Object.entries(node.inputs))
        if (!slots.has(`${id}.${input}`)) expect(prompt[id]!.inputs[input]).toEqual(value);
    }
    expect(prompt).toMatchObject({
      '4': { inputs: { ckpt_name: CHECKPOINT } },
      '6': { inputs: { text: 'a lighthouse at dusk, 35mm' } },
      '7': { inputs: { text: 'blurry' } },
      '3': {
        inputs: { seed: 42, steps: 7, cfg: 3.5, sampler_name: 'dpmpp_2m', scheduler: 'karras', denoise: 1 },
      },
      '5': { inputs: { width: 96, height: 64, batch_size: 1 } },
      '9': { inputs: { filename_prefix: expect.stringMatching(/^aipg_[0-9a-f]{8}_0$/) } },
    });
  });

  test('n images: n prompts of batch size 1, image i on imageSeed(params, i) (wrapping at 2^32)', async () => {
    const p = { n: 3, seed: 0xfffffffe };
    const r = await backend.generate(job(p));
    expect(fake.prompts.map((x) => x.prompt['3']!.inputs.seed)).toEqual([0xfffffffe, 0xffffffff, 0]);
    expect(fake.prompts.map((x) => x.prompt['5']!.inputs.batch_size)).toEqual([1, 1, 1]);
    expect(r.images).toHaveLength(3);
    // Image i is exactly the single image of its seed.
    for (let i = 0; i < 3; i++) {
      const alone = await backend.generate(job({ seed: imageSeed(params(p), i) }));
      expect(Buffer.from(alone.images[0]!.bytes).equals(Buffer.from(r.images[i]!.bytes))).toBe(true);
    }
    expect(new Set(r.images.map((i) => Buffer.from(i.bytes).toString('hex'))).size).toBe(3);
  });

  test("progress: every step of every image, in order, none from other clients' prompts or other nodes", async () => {
    fake.interleaveForeign = true; // a prompt without client_id (broadcast to every socket) behind each of ours
    fake.vaeProgress = true;
    const seen: { image: number; step: number; steps: number }[] = [];
    await backend.generate(job({ n: 2, steps: 3 }, { onProgress: (p) => seen.push(p) }));
    expect(seen).toEqual([
      { image: 0, step: 1, steps: 3 },
      { image: 0, step: 2, steps: 3 },
      { image: 0, step: 3, steps: 3 },
      { image: 1, step: 1, steps: 3 },
      { image: 1, step: 2, steps: 3 },
      { image: 1, step: 3, steps: 3 },
    ]);
    // The foreign prompts really ran between ours, on the same sockets.
    const ours = new Set(fake.prompts.map((p) => p.prompt_id));
    expect(fake.completed.filter((id) => !ours.has(id)).length).toBeGreaterThanOrEqual(1);
  });

  test('previews: partial_images of them ride on progress events, taken from our prompts only', async () => {
    fake.previews = true;
    fake.interleaveForeign = true;
    const seen: { image: number; step: number; preview?: Uint8Array }[] = [];
    await backend.generate(job({ n: 2, steps: 3 }, { partialImages: 2, onProgress: (p) => seen.push(p) }));
    expect(seen.map((p) => [p.image, p.step])).toEqual([
      [0, 1],
      [0, 2],
      [0, 3],
      [1, 1],
      [1, 2],
      [1, 3],
    ]);
    // 2 previews over 6 events: at events 2 and 4.
    expect(seen.map((p) => p.preview !== undefined)).toEqual([false, true, false, true, false, false]);
    for (const p of seen.filter((x) => x.preview)) expect(isPng(p.preview!)).toBe(true);
  });

  test('an older server (its own prompt ids, messages before the POST answer): progress and image all the same', async () => {
    fake.legacyIds = true;
    const seen: number[] = [];
    const r = await backend.generate(job({ steps: 3 }, { onProgress: (p) => seen.push(p.step) }));
    expect(seen).toEqual([1, 2, 3]);
    // The server ran it under an id of its own, not the one the backend proposed.
    expect(fake.completed.at(-1)).toEqual(expect.any(String));
    expect(fake.completed).not.toContain(fake.prompts[0]!.prompt_id);
    const same = await backend.generate(job({ steps: 3 }));
    expect(Buffer.from(same.images[0]!.bytes).equals(Buffer.from(r.images[0]!.bytes))).toBe(true);
  });
});

describe('refusals', () => {
  test('size, steps, guidance, n or scheduler outside the recipe: INVALID_INPUT, nothing sent', async () => {
    const outside: Partial<ImageParams>[] = [
      { width: 128, height: 128 },
      { width: 64, height: 72 },
      { steps: 13 },
      { steps: 0 },
      { guidance: 10.5 },
      { guidance: 0 },
      { n: 5 },
      { scheduler: 'lms' },
    ];
    for (const p of outside)
      await expect(backend.generate(job(p)), JSON.stringify(p)).rejects.toMatchObject({
        code: 'INVALID_INPUT',
        retryable: false,
      });
    expect(fake.requests).toEqual([]);
  });

  test('prompt bytes that are not UTF-8 text run exactly are BACKEND_PROMPT_MISMATCH, nothing sent', async () => {
    for (const ids of [[0xff, 0x41], [0xef, 0xbb, 0xbf, 0x61], [0xc3]])
      await expect(backend.generate(job({}, { promptTokenIds: ids }))).rejects.toMatchObject({
        code: 'BACKEND_PROMPT_MISMATCH',
      });
    await expect(backend.generate(job({}, { negativeTokenIds: [0x80] }))).rejects.toMatchObject({
      code: 'BACKEND_PROMPT_MISMATCH',
    });
    expect(fake.requests).toEqual([]);
  });

  test('a recipe outside the fixed text-to-image shape is refused when the backend is created', () => {
    const variants: [string, (r: ComfyUiRecipe) => void][] = [
      ['LoraLoader', (r) => (r.graph['10'] = { class_type: 'LoraLoader', inputs: { model: ['4', 0] } })],
      ['no value input', (r) => (r.slots.seed = ['3', 'noise_seed'])],
      ['not CLIPTextEncode', (r) => (r.slots.prompt = ['5', 'width'])],
      ['2 KSampler', (r) => (r.graph['11'] = structuredClone(r.graph['3']!))],
      ['denoise', (r) => (r.graph['3']!.inputs.denoise = 0.6)],
      ['multiples of 8', (r) => (r.limits = { ...r.limits, sizes: [[100, 100]] })],
      ['scheduler name', (r) => (r.samplers = { 'Euler A': { sampler: 'euler', scheduler: 'normal' } })],
      ['missing node', (r) => (r.graph['8']!.inputs.samples = ['99', 0])],
    ];
    for (const [problem, change] of variants) {
      const recipe = structuredClone(RECIPE);
      change(recipe);
      expect(() =>
        createComfyUiBackend({ name: NAME, weightsHash: HASH, checkpoint: CHECKPOINT, recipe }),
      ).toThrow(
        expect.objectContaining({ code: 'INVALID_INPUT', details: expect.stringContaining(problem) }),
      );
    }
  });
});

describe('cancel', () => {
  test('abort: our running prompt interrupted by id, our queued one deleted, the promise rejects', async () => {
    fake.holdAtStep = 2;
    const controller = new AbortController();
    let atStep2!: () => void;
    const running = new Promise<void>((resolve) => {
      atStep2 = resolve;
    });
    const run = backend.generate(
      job({ n: 2, steps: 4 }, { signal: controller.signal, onProgress: (p) => p.step === 2 && atStep2() }),
    );
    await Promise.all([running, fake.waitForQueued(2)]);
    controller.abort(new Error('client went away'));
    await expect(run).rejects.toMatchObject({ code: 'INFERENCE_ABORTED' });
    const [first, second] = fake.prompts.map((p) => p.prompt_id!);
    expect(fake.interrupts).toEqual([{ body: { prompt_id: first }, running: first }]);
    expect(fake.deleted).toEqual([second]);
    // The backend goes on serving.
    fake.holdAtStep = undefined;
    const next = await backend.generate(job());
    expect(next.images).toHaveLength(1);
  });

  test('an already aborted signal rejects at once, nothing sent', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(backend.generate(job({}, { signal: controller.signal }))).rejects.toMatchObject({
      code: 'INFERENCE_ABORTED',
    });
    expect(fake.requests).toEqual([]);
  });

  test('a prompt interrupted by someone else is a retryable BACKEND_STREAM_ERROR', async () => {
    fake.holdAtStep = 1;
    const run = backend.generate(
      job(
        { steps: 3 },
        {
          onProgress: () => {
            fetch(`${fake.url}/interrupt`, { method: 'POST' }).catch(() => {});
          },
        },
      ),
    );
    await expect(run).rejects.toMatchObject({ code: 'BACKEND_STREAM_ERROR', retryable: true });
  });
});

describe('faults', () => {
  test('node_errors (HTTP 400) is BACKEND_HTTP_ERROR, not retryable, with ComfyUI’s report', async () => {
    fake.fault = { kind: 'node-errors' };
    await expect(backend.generate(job())).rejects.toMatchObject({
      code: 'BACKEND_HTTP_ERROR',
      retryable: false,
      details: expect.stringMatching(
        /Prompt outputs failed validation.*node 4 \(CheckpointLoaderSimple\): Value not in list/,
      ),
    });
  });

  test('HTTP 500 on /prompt, /history or /view is a retryable BACKEND_HTTP_ERROR', async () => {
    for (const path of ['/prompt', '/history', '/view'] as const) {
      fake.fault = { kind: 'http-500', path };
      await expect(backend.generate(job()), path).rejects.toMatchObject({
        code: 'BACKEND_HTTP_ERROR',
        retryable: true,
        details: expect.stringContaining('Server got itself in trouble'),
      });
    }
  });

  test("execution_error is a retryable BACKEND_STREAM_ERROR; the job's queued prompt is deleted, another client's left alone", async () => {
    fake.fault = { kind: 'execution-error', atStep: 2 };
    fake.holdAtStep = 1; // the first prompt waits at step 1 until both are queued
    fake.interleaveForeign = true; // and a foreign prompt runs (held) when ours fails
    const run = backend.generate(
      job(
        { n: 2, steps: 3 },
        {
          onProgress: (p) => {
            if (p.image === 0 && p.step === 1) void fake.waitForQueued(2).then(() => fake.release());
          },
        },
      ),
    );
    await expect(run).rejects.toMatchObject({
      code: 'BACKEND_STREAM_ERROR',
      retryable: true,
      details: expect.stringContaining('torch.OutOfMemoryError: CUDA out of memory'),
    });
    expect(fake.deleted).toEqual([fake.prompts[1]!.prompt_id]);
    expect(fake.interrupts).toEqual([]); // the running prompt is not ours
  });

  test('a seed the server did not run, or an image of another size, is BACKEND_PROTOCOL_ERROR', async () => {
    fake.fault = { kind: 'wrong-seed' };
    await expect(backend.generate(job())).rejects.toMatchObject({
      code: 'BACKEND_PROTOCOL_ERROR',
      details: 'asked 42, its history says 43',
    });
    fake.fault = { kind: 'wrong-size' };
    await expect(backend.generate(job())).rejects.toMatchObject({
      code: 'BACKEND_PROTOCOL_ERROR',
      details: 'asked png 64x64, got png 72x64',
    });
  });

  test('a dropped WebSocket is a retryable BACKEND_STREAM_ERROR, our prompt is interrupted, the next job reconnects', async () => {
    fake.fault = { kind: 'drop-socket', atStep: 1 };
    fake.holdAtStep = 1;
    await expect(backend.generate(job({ steps: 3 }))).rejects.toMatchObject({
      code: 'BACKEND_STREAM_ERROR',
      retryable: true,
    });
    expect(fake.interrupts).toEqual([
      { body: { prompt_id: fake.prompts[0]!.prompt_id }, running: fake.prompts[0]!.prompt_id },
    ]);
    await fake.reset();
    const seen: number[] = [];
    await backend.generate(job({ steps: 2 }, { onProgress: (p) => seen.push(p.step) }));
    expect(seen).toEqual([1, 2]);
  });

  test('a server gone after load: the job is a retryable BACKEND_UNREACHABLE', async () => {
    const gone = await startFakeComfyUi();
    const b = backendFor(gone.url);
    await b.load();
    await gone.close();
    await expect(b.generate(job())).rejects.toMatchObject({ code: 'BACKEND_UNREACHABLE', retryable: true });
  });
});
