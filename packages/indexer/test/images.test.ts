import { registerModel } from '@aipg/chain';
import { computeImageFee, computeModelId, imagePromptTokenIds, parseAipg } from '@aipg/core';
import type { StartGatewayReturnType } from '@aipg/gateway';
import { type Hex, keccak256, toBytes } from 'viem';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  createApiKey,
  dropTestSchema,
  MODEL,
  MODEL_ID,
  roles,
  startTestGateway,
  startTestGrid,
  type TestGrid,
} from '../../gateway/test/helpers/grid.ts';
import { type ImageBehaviour, ScriptedWorker } from '../../gateway/test/helpers/worker.ts';
import { readEvents } from './helpers.ts';

// The image flavour in the network API behind the dashboard, on a real gateway (anvil, the Grid, the
// indexer on its own loop) with a worker speaking the real protocol: the image rate card (per
// megapixel-step, the price of a 1024×1024 image at 20 steps), images per minute, seconds per step,
// the queue, image jobs in the feed and the live stream; never a prompt or an image.

const IMAGE_MODEL = {
  name: 'network-image-test',
  weightsHash: keccak256(toBytes('network image weights')) as Hex,
  /** 0.01 AIPG per megapixel-step. */
  rates: { inputPerMTokens: 0n, outputPerMTokens: 0n, perMegapixelStep: parseAipg('0.01') },
  image: {
    sizes: [
      [64, 64],
      [128, 64],
    ] as [number, number][],
    minSteps: 1,
    maxSteps: 12,
    maxN: 3,
    schedulers: ['ddim', 'euler'],
    trajectory: true,
  },
};
const IMAGE_MODEL_ID = computeModelId(IMAGE_MODEL.name, IMAGE_MODEL.weightsHash);
/** Distinctive strings that must never leave the gateway through the network API. */
const PROMPT = 'zebra-unicorn-7f3a9 over a secret lighthouse';
const NEGATIVE = 'negative-quokka-91b2';

let grid: TestGrid;
let gw: StartGatewayReturnType;
let key: string;
let worker: ScriptedWorker;
let behaviour: ImageBehaviour = {};

beforeAll(async () => {
  grid = await startTestGrid();
  await registerModel(grid.client(roles.owner.privateKey), {
    grid: grid.grid,
    name: IMAGE_MODEL.name,
    kind: 'image',
    weightsHash: IMAGE_MODEL.weightsHash,
    tokenizerHash: `0x${'00'.repeat(32)}`,
    parameterCount: 1_000n,
    minVramMb: 0,
    rates: IMAGE_MODEL.rates,
  });
  gw = await startTestGateway(grid, { 'jobs.queueTimeoutMs': 10_000, 'jobs.firstTokenTimeoutMs': 5_000 });
  key = await createApiKey(gw, roles.payer.privateKey);
  worker = new ScriptedWorker({
    url: gw.workerUrl,
    operatorKey: roles.operatorA.privateKey,
    owner: roles.workerA.address,
    models: [
      MODEL,
      {
        name: IMAGE_MODEL.name,
        weightsHash: IMAGE_MODEL.weightsHash,
        sampler: 'test-ldm',
        maxConcurrency: 1,
        image: IMAGE_MODEL.image,
      },
    ],
    imageScript: () => behaviour,
  });
  await worker.connect();
});

afterEach(() => {
  behaviour = {};
});

afterAll(async () => {
  await worker?.close();
  const options = gw?.common.options;
  await gw?.stop();
  if (options) await dropTestSchema(options);
  await grid?.stop();
});

type Amount = { wei: string; aipg: string; display: string };
type ModelView = {
  id: string;
  name: string;
  kind: string;
  rates: Record<string, Amount>;
  capacity: number;
  in_flight: number;
  queue: { queued: number; running: number };
  recent: { jobs: number; tokens_per_second: number; output_tokens: number; input_tokens: number };
  latency: { jobs: number; median_ttft_ms: number | null };
  totals: { jobs: number; input_tokens: string; output_tokens: string; fees: Amount };
  image: {
    example: Record<string, unknown>;
    offered: Record<string, unknown> | null;
    recent: Record<string, number>;
    latency: { window_s: number; jobs: number; median_seconds_per_step: number | null };
    totals: { megapixel_steps: number };
  } | null;
};
type Item = {
  id: string;
  type: string;
  kind: string;
  account: string | null;
  related: string | null;
  model: { id: string; name: string } | null;
  amount: Amount | null;
  details: Record<string, unknown>;
};

async function getText(path: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${gw.url}/v1/network${path}`, { headers });
  expect(res.status, path).toBe(200);
  return res.text();
}
const get = async <T>(path: string): Promise<T> => JSON.parse(await getText(path)) as T;

async function models(): Promise<{ text: ModelView; image: ModelView }> {
  const list = await get<{ data: ModelView[] }>('/models');
  return {
    text: list.data.find((m) => m.id === MODEL_ID.toLowerCase())!,
    image: list.data.find((m) => m.id === IMAGE_MODEL_ID.toLowerCase())!,
  };
}

async function jobItems(): Promise<Item[]> {
  return (await get<{ data: Item[] }>('/activity?kind=job&limit=200')).data;
}

/**
 * Reads are cached for 750 ms (and the cache moves on with the live feed): polls `read` until `ready`
 * holds, then returns that answer.
 */
async function until<T>(read: () => Promise<T>, ready: (v: T) => boolean): Promise<T> {
  let last: T | undefined;
  await expect
    .poll(
      async () => {
        last = await read();
        return ready(last);
      },
      { timeout: 10_000, interval: 100 },
    )
    .toBe(true);
  return last!;
}

function generate(body: Record<string, unknown>) {
  return fetch(`${gw.url}/v1/images/generations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: IMAGE_MODEL.name, response_format: 'url', ...body }),
  });
}

type Generated = {
  grid: { job_id: string; fee_wei: string; images: { hash: string; trajectory_root: string }[] };
};

async function image(body: Record<string, unknown>): Promise<Generated> {
  const res = await generate(body);
  const json = (await res.json()) as Generated;
  expect(res.status, JSON.stringify(json)).toBe(200);
  return json;
}

const fee = (width: number, height: number, steps: number, n: number) =>
  computeImageFee({ params: { width, height, steps, n }, rates: IMAGE_MODEL.rates });

describe('the image flavour in the network API', () => {
  test('the rate card: AIPG per megapixel-step and the price of one 1024×1024 image at 20 steps', async () => {
    // The indexer (its own loop) has to see the registrations first.
    await expect.poll(async () => (await models()).image?.kind, { timeout: 20_000 }).toBe('image');
    const { text, image } = await models();
    expect(image.name).toBe(IMAGE_MODEL.name);
    expect(image.rates.per_megapixel_step).toEqual({
      wei: '10000000000000000',
      aipg: '0.01',
      display: '0.01',
    });
    // ⌈1024 × 1024 × 20 × 1 × 0.01 AIPG / 10⁶⌉, though the worker offers nothing above 128×64.
    const example = fee(1024, 1024, 20, 1);
    expect(example).toBe(209_715_200_000_000_000n);
    expect(image.image?.example).toEqual({
      width: 1024,
      height: 1024,
      steps: 20,
      n: 1,
      size: '1024x1024',
      price: { wei: example.toString(), aipg: '0.2097152', display: '0.2097' },
    });
    expect(image.image?.offered).toEqual({
      sizes: ['64x64', '128x64'],
      min_steps: 1,
      max_steps: 12,
      max_n: 3,
      schedulers: ['ddim', 'euler'],
    });
    expect(image.capacity).toBe(1);
    expect(image.image?.recent).toMatchObject({ jobs: 0, images: 0, images_per_minute: 0 });
    expect(image.image?.latency).toEqual({ window_s: 3_600, jobs: 0, median_seconds_per_step: null });
    expect(image.queue).toEqual({ queued: 0, running: 0 });
    // A text model keeps its per-token rate card and has no image block.
    expect(text.kind).toBe('text');
    expect(text.image).toBeNull();
    expect(text.rates.input_per_m?.aipg).toBe('1');
    expect(text.rates.output_per_m?.aipg).toBe('2');
    const summary = await get<{ models: { active: number; active_image: number } }>('/summary');
    expect(summary.models).toMatchObject({ active: 2, active_image: 1 });
  });

  test('images per minute, seconds per step and the queue; text statistics count text jobs only', async () => {
    // One text job: 6 output tokens (the scripted worker's answer).
    const chat = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL.name, messages: [{ role: 'user', content: 'hello' }] }),
    });
    expect(chat.status).toBe(200);

    // A slow image job (2 images × 10 steps, ≥ 100 ms a step) is in the queue as running while it runs.
    behaviour = { stepDelayMs: 100 };
    const slow = image({ prompt: 'a slow one', size: '128x64', n: 2, steps: 10 });
    await expect
      .poll(async () => (await models()).image.queue, { timeout: 10_000, interval: 50 })
      .toEqual({ queued: 0, running: 1 });
    expect((await models()).image.in_flight).toBe(1);
    const a = await slow;
    behaviour = { stepDelayMs: 20 };
    const b = await image({ prompt: 'a quick one', size: '64x64', n: 1, steps: 4 });
    const { text, image: m } = await until(models, (x) => x.image.recent.jobs === 2);
    expect(m.queue).toEqual({ queued: 0, running: 0 });
    expect(m.in_flight).toBe(0);

    // 3 images in the 5-minute window: 0.6 a minute; 128×64×10×2 + 64×64×4 pixel-steps.
    expect(m.image?.recent).toEqual({
      window_s: 300,
      jobs: 2,
      images: 3,
      images_per_minute: 0.6,
      megapixel_steps: 0.18,
    });
    expect(m.recent.jobs).toBe(2);
    // Seconds per step: the median over the two jobs of total time / (steps × n), as the feed has them.
    const items = await until(jobItems, (list) => list.some((i) => i.id === `job:${b.grid.job_id}`));
    const itemA = items.find((i) => i.id === `job:${a.grid.job_id}`)!;
    const itemB = items.find((i) => i.id === `job:${b.grid.job_id}`)!;
    const spsA = Number(itemA.details.total_ms) / 1000 / 20;
    const spsB = Number(itemB.details.total_ms) / 1000 / 4;
    expect(spsA).toBeGreaterThanOrEqual(0.1);
    expect(spsB).toBeGreaterThanOrEqual(0.02);
    expect(itemA.details.seconds_per_step).toBeCloseTo(spsA, 3);
    expect(m.image?.latency.jobs).toBe(2);
    expect(m.image?.latency.median_seconds_per_step).toBeCloseTo((spsA + spsB) / 2, 3);
    // The model's fees are the two exact image fees; pixel-steps are not tokens.
    const fees = fee(128, 64, 10, 2) + fee(64, 64, 4, 1);
    expect(BigInt(a.grid.fee_wei) + BigInt(b.grid.fee_wei)).toBe(fees);
    expect(m.totals).toEqual({
      jobs: 2,
      input_tokens: '0',
      output_tokens: '0',
      fees: expect.objectContaining({ wei: fees.toString() }),
    });
    expect(m.image?.totals).toEqual({ megapixel_steps: 0.18 });
    expect(m.recent).toMatchObject({ tokens_per_second: 0, output_tokens: 0, input_tokens: 0 });
    expect(m.latency).toMatchObject({ jobs: 0, median_ttft_ms: null });

    // The text model's tokens and first-token time are its own: 6 tokens in 5 minutes.
    expect(text.recent).toMatchObject({ jobs: 1, output_tokens: 6, tokens_per_second: 0.02 });
    expect(text.latency.jobs).toBe(1);
    const summary = await until(
      () =>
        get<{
          throughput: { jobs_per_minute: number; tokens_per_second: number; images_per_minute: number };
          last_24h: { jobs: number; output_tokens: string; images: number; median_ttft_ms: number | null };
        }>('/summary'),
      (x) => x.last_24h.jobs === 3,
    );
    expect(summary.throughput).toMatchObject({
      jobs_per_minute: 0.6,
      tokens_per_second: 0.02,
      images_per_minute: 0.6,
    });
    expect(summary.last_24h).toMatchObject({ jobs: 3, output_tokens: '6', images: 3 });
    // The median first-token time is the text job's alone (an image job's `ttft_ms` is its total time).
    const textItem = items.find((i) => i.model?.id === MODEL_ID.toLowerCase())!;
    expect(summary.last_24h.median_ttft_ms).toBe(textItem.details.ttft_ms);

    const workers = await until(
      () => get<{ data: { address: string; jobs: Record<string, unknown> }[] }>('/workers'),
      (x) => x.data.some((w) => w.jobs.served === 3),
    );
    const w = workers.data.find((x) => x.address === roles.workerA.address)!;
    expect(w.jobs).toMatchObject({ served: 3, images: 3, output_tokens: '6' });

    const ts = await get<{
      points: { images: number; output_tokens: number; jobs: number }[];
      prices: { model_id: string; kind: string; points: { per_megapixel_step: Amount }[] }[];
    }>('/stats/timeseries?window=15m');
    const sum = (k: 'images' | 'output_tokens' | 'jobs') => ts.points.reduce((n, p) => n + p[k], 0);
    expect({ images: sum('images'), output_tokens: sum('output_tokens'), jobs: sum('jobs') }).toEqual({
      images: 3,
      output_tokens: 6,
      jobs: 3,
    });
    const price = ts.prices.find((p) => p.model_id === IMAGE_MODEL_ID.toLowerCase())!;
    expect(price.kind).toBe('image');
    expect(price.points[0]?.per_megapixel_step.wei).toBe(IMAGE_MODEL.rates.perMegapixelStep.toString());
  });

  test('image jobs in the feed and the live stream as image jobs, never their prompt or images', async () => {
    // The live stream fixes where it starts at its first poll (its first `status`): the job runs after.
    const res = await fetch(`${gw.url}/v1/network/events/stream`);
    let polled!: () => void;
    const started = new Promise<void>((r) => {
      polled = r;
    });
    let jobId = '';
    const streamed = readEvents(
      res,
      (e) => e.event === 'activity' && jobId !== '' && (e.data as Item).id === `job:${jobId}`,
      20_000,
      (e) => e.event === 'status' && polled(),
    );
    await started;
    const done = await image({
      prompt: PROMPT,
      negative_prompt: NEGATIVE,
      size: '128x64',
      steps: 3,
      scheduler: 'euler',
      seed: 4242,
    });
    jobId = done.grid.job_id;
    const hashes = done.grid.images.flatMap((i) => [i.hash, i.trajectory_root]);
    expect(hashes).toHaveLength(2);

    // A job the worker fails: in the feed as a failed image job, nothing charged.
    behaviour = { failBeforeProgress: 'job-error' };
    const failed = await generate({ prompt: PROMPT, size: '64x64', steps: 2 });
    expect(failed.status).toBeGreaterThanOrEqual(500);
    const failedId = failed.headers.get('x-grid-job-id')!;
    expect(failedId).toMatch(/^0x[0-9a-f]{64}$/);

    const items = await until(jobItems, (list) => list.some((i) => i.id === `job:${failedId}`));
    const item = items.find((i) => i.id === `job:${jobId}`)!;
    expect(item).toMatchObject({
      type: 'job_completed',
      kind: 'job',
      account: roles.workerA.address,
      related: null,
      model: { id: IMAGE_MODEL_ID.toLowerCase(), name: IMAGE_MODEL.name },
      amount: { wei: fee(128, 64, 3, 1).toString() },
    });
    expect(item.details).toEqual({
      job_id: jobId,
      kind: 'image',
      size: '128x64',
      width: 128,
      height: 64,
      steps: 3,
      n: 1,
      scheduler: 'euler',
      format: 'png',
      megapixel_steps: 0.025,
      total_ms: expect.any(Number),
      seconds_per_step: expect.any(Number),
    });
    expect(item.details.seconds_per_step).toBeCloseTo(Number(item.details.total_ms) / 1000 / 3, 3);
    const failedItem = items.find((i) => i.id === `job:${failedId}`)!;
    expect(failedItem).toMatchObject({ type: 'job_failed', kind: 'job', amount: null, related: null });
    expect(failedItem.details).toMatchObject({
      kind: 'image',
      size: '64x64',
      steps: 2,
      n: 1,
      seconds_per_step: null,
      error: expect.any(String),
    });
    // A text job's item keeps exactly its fields.
    const textItem = items.find((i) => i.model?.id === MODEL_ID.toLowerCase())!;
    expect(Object.keys(textItem.details).sort()).toEqual(
      ['input_tokens', 'job_id', 'output_tokens', 'tokens_per_second', 'total_ms', 'ttft_ms'].sort(),
    );
    expect(textItem.related).toBeNull();

    // The live stream carries the same item.
    const events = await streamed;
    const live = events.find((e) => e.event === 'activity' && (e.data as Item).id === `job:${jobId}`);
    expect((live?.data as Item | undefined)?.details).toEqual(item.details);

    // Nowhere in the network API: not the prompt, the negative prompt, the prompt's bytes, the images,
    // their hashes (they address the images) or trajectory roots, and no payer on public job items.
    const promptBytes = imagePromptTokenIds(PROMPT).join(',');
    const bodies = [
      JSON.stringify(events),
      ...(await Promise.all(
        [
          '/summary',
          '/models',
          `/models/${IMAGE_MODEL.name}`,
          '/workers',
          '/activity?limit=200',
          '/activity?kind=job&limit=200',
          `/activity?address=${roles.workerA.address}`,
          `/operators/${roles.workerA.address}`,
          '/stats/timeseries?window=15m',
          `/stats/timeseries?window=15m&model=${IMAGE_MODEL_ID}`,
        ].map((p) => getText(p)),
      )),
      // The payer's own view of its jobs (its key) names it, and still shows no prompt.
      await getText(`/activity?kind=job&address=${roles.payer.address}&limit=200`, {
        authorization: `Bearer ${key}`,
      }),
    ];
    for (const body of bodies) {
      expect(body).not.toContain('zebra-unicorn');
      expect(body).not.toContain(NEGATIVE);
      expect(body).not.toContain(promptBytes);
      expect(body).not.toContain('/v1/images/files');
      expect(body).not.toContain('b64_json');
      for (const h of hashes) expect(body.toLowerCase()).not.toContain(h.slice(2).toLowerCase());
    }
    const mine = JSON.parse(bodies.at(-1)!) as { data: Item[] };
    expect(mine.data.find((i) => i.id === `job:${jobId}`)?.related).toBe(roles.payer.address);
    expect(bodies[6]!.toLowerCase()).not.toContain(roles.payer.address.slice(2).toLowerCase());
  });
});
