import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { registerModel } from '@aipg/chain';
import {
  AUDIT_HEADERS,
  auditRequestMessage,
  computeImageFee,
  computeImageRequestHash,
  computeModelId,
  hashImage,
  hashLatent,
  type ImageJobMessage,
  imageCheckTypedData,
  imageInfo,
  imagePromptTokenIds,
  latentsFromBytes,
  parseAipg,
  trajectoryTree,
} from '@aipg/core';
import OpenAI from 'openai';
import { type Hex, keccak256, recoverTypedDataAddress, toBytes } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { StartGatewayReturnType } from '../src/index.ts';
import {
  createApiKey,
  dropTestSchema,
  MODEL,
  roles,
  startTestGateway,
  startTestGrid,
  type TestGrid,
} from './helpers/grid.ts';
import { type ImageBehaviour, ScriptedWorker, testPng } from './helpers/worker.ts';

// The image flavour end to end at the gateway: OpenAI's Images API in, `image-job` frames to a worker
// speaking the real protocol, its images and receipt checked, stored and billed, or refused and not.

const IMAGE_MODEL = {
  name: 'tiny-image-test',
  weightsHash: keccak256(toBytes('tiny image weights')) as Hex,
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

let grid: TestGrid;
let gw: StartGatewayReturnType;
let key: string;
let worker: ScriptedWorker;
let behaviour: ImageBehaviour = {};
/** A partial image as a worker sends one (base64 png). */
const PREVIEW = Buffer.from(testPng(64, 64, [9, 9, 9])).toString('base64');
let client: OpenAI;
const extra: ScriptedWorker[] = [];

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
  // A small frame limit, so an answer too large for one frame can be asked for with the test model.
  gw = await startTestGateway(grid, {
    'jobs.firstTokenTimeoutMs': 2_000,
    'hub.maxFrameBytes': 200_000,
    // The webhook receiver of a test below listens on 127.0.0.1 (a devnet-only allowance).
    'webhooks.allowPrivate': true,
  });
  key = await createApiKey(gw, roles.payer.privateKey);
  client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 });
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
        image: IMAGE_MODEL.image,
      },
    ],
    imageScript: () => behaviour,
  });
  await worker.connect();
});

afterEach(async () => {
  behaviour = {};
  await Promise.all(extra.splice(0).map((w) => w.close()));
});

afterAll(async () => {
  await worker?.close();
  const options = gw?.common.options;
  await gw?.stop();
  if (options) await dropTestSchema(options);
  await grid?.stop();
});

async function balance() {
  const res = await fetch(`${gw.url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } });
  const b = (await res.json()) as { unsettled: { wei: string }; reserved: { wei: string } };
  return { unsettled: BigInt(b.unsettled.wei), reserved: BigInt(b.reserved.wei) };
}

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

/** Two 64×64 images of two steps from the image model (what the dishonest-worker tests ask), with `extra`. */
function twoImages(extra: Record<string, unknown> = {}) {
  return post('/v1/images/generations', {
    model: IMAGE_MODEL.name,
    prompt: 'x',
    size: '64x64',
    n: 2,
    steps: 2,
    ...extra,
  });
}

async function expectError(res: Response, status: number, code: string, param?: string) {
  const body = (await res.json()) as { error: { code: string; param: string | null; message: string } };
  expect({ status: res.status, code: body.error.code }).toEqual({ status, code });
  if (param !== undefined) expect(body.error.param).toBe(param);
  return body.error;
}

describe('the image flavour through the Images API', () => {
  test('/v1/models lists the image model with its sizes, steps and an example price', async () => {
    const models = (await (await fetch(`${gw.url}/v1/models`)).json()) as {
      data: {
        id: string;
        grid: { kind: string; rates: Record<string, string>; image?: Record<string, unknown> };
      }[];
    };
    const m = models.data.find((x) => x.id === IMAGE_MODEL.name)!;
    expect(m.grid.kind).toBe('image');
    expect(m.grid.rates.per_megapixel_step_wei).toBe(IMAGE_MODEL.rates.perMegapixelStep.toString());
    const fee = computeImageFee({
      params: { width: 64, height: 64, steps: 12, n: 1 },
      rates: IMAGE_MODEL.rates,
    });
    expect(m.grid.image).toMatchObject({
      sizes: ['64x64', '128x64'],
      min_steps: 1,
      max_steps: 12,
      max_n: 3,
      schedulers: ['ddim', 'euler'],
      example: { size: '64x64', steps: 12, price_wei: fee.toString() },
    });
  });

  test('client.images.generate: n images of the asked size, the exact fee in grid, billed once', async () => {
    const before = await balance();
    const res = await client.images.generate({
      model: IMAGE_MODEL.name,
      prompt: 'a lighthouse at dawn',
      size: '128x64' as '1024x1024',
      n: 2,
      // grid extensions
      ...({ steps: 6, seed: 42, negative_prompt: 'fog', scheduler: 'euler' } as object),
    });
    expect(res.data).toHaveLength(2);
    for (const d of res.data!) {
      const bytes = Buffer.from(d.b64_json!, 'base64');
      expect(imageInfo(bytes)).toEqual({ format: 'png', width: 128, height: 64 });
    }
    const fee = computeImageFee({
      params: { width: 128, height: 64, steps: 6, n: 2 },
      rates: IMAGE_MODEL.rates,
    });
    const g = (
      res as unknown as {
        grid: { fee_wei: string; seed: number; steps: number; scheduler: string; pixel_steps: string };
      }
    ).grid;
    expect(g).toMatchObject({
      fee_wei: fee.toString(),
      seed: 42,
      steps: 6,
      scheduler: 'euler',
      pixel_steps: String(128 * 64 * 6 * 2),
    });
    const sent = worker.imageJobs.at(-1)!;
    expect(sent.params).toEqual({
      width: 128,
      height: 64,
      steps: 6,
      guidance: 7.5,
      seed: 42,
      n: 2,
      scheduler: 'euler',
      format: 'png',
    });
    expect(Buffer.from(sent.negativeTokenIds).toString('utf8')).toBe('fog');
    expect(await balance()).toEqual({ unsettled: before.unsettled + fee, reserved: 0n });
  });

  test('response_format url: a content-addressed link serving exactly those bytes; unknown names are 404', async () => {
    const res = (await (
      await post('/v1/images/generations', {
        model: IMAGE_MODEL.name,
        prompt: 'a red square',
        size: '64x64',
        response_format: 'url',
        steps: 2,
      })
    ).json()) as { data: { url: string }[]; grid: { images: { hash: string }[] } };
    const url = res.data[0]!.url;
    expect(url).toBe(`${gw.url}/v1/images/files/${res.grid.images[0]!.hash}.png`);
    const img = await fetch(url);
    expect(img.status).toBe(200);
    expect(img.headers.get('content-type')).toBe('image/png');
    const bytes = new Uint8Array(await img.arrayBuffer());
    expect(keccak256(bytes)).toBe(res.grid.images[0]!.hash);
    expect((await fetch(`${gw.url}/v1/images/files/0x${'ab'.repeat(32)}.png`)).status).toBe(404);
    expect((await fetch(url.replace('.png', '.webp'))).status).toBe(404);
    expect((await fetch(`${gw.url}/v1/images/files/..%2Fetc%2Fpasswd`)).status).toBe(404);
  });

  test('stream with partial_images: previews as image_generation.partial_image, then one completed event per image', async () => {
    const stream = await client.images.generate({
      model: IMAGE_MODEL.name,
      prompt: 'a boat',
      size: '64x64' as '1024x1024',
      n: 2,
      stream: true,
      partial_images: 2,
      ...({ steps: 4 } as object),
    });
    const events: { type: string; partial_image_index?: number; b64_json?: string }[] = [];
    for await (const e of stream) events.push(e as (typeof events)[number]);
    const partial = events.filter((e) => e.type === 'image_generation.partial_image');
    const completed = events.filter((e) => e.type === 'image_generation.completed');
    expect(partial.map((e) => e.partial_image_index)).toEqual([0, 1, 2, 3]);
    expect(completed).toHaveLength(2);
    expect(events.at(-1)!.type).toBe('image_generation.completed');
    for (const e of completed) expect(imageInfo(Buffer.from(e.b64_json!, 'base64'))?.width).toBe(64);
  });

  test('streamed, a job that fails before any progress is a plain JSON error with its status, not a 200', async () => {
    behaviour = { failBeforeProgress: 'job-error' };
    const res = await post('/v1/images/generations', {
      model: IMAGE_MODEL.name,
      prompt: 'x',
      size: '64x64',
      steps: 2,
      stream: true,
      partial_images: 1,
    });
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('worker_failed');
  });

  test('the same Idempotency-Key answers the same images again, without running the job twice', async () => {
    const body = { model: IMAGE_MODEL.name, prompt: 'once', size: '64x64', steps: 2, seed: 5 };
    const headers = { 'idempotency-key': `img-${Date.now()}` };
    const jobs = worker.imageJobs.length;
    const a = (await (await post('/v1/images/generations', body, headers)).json()) as {
      data: { b64_json: string }[];
      grid: { job_id: string };
    };
    const again = await post('/v1/images/generations', body, headers);
    expect(again.status).toBe(200);
    const b = (await again.json()) as typeof a;
    expect(b.grid.job_id).toBe(a.grid.job_id);
    expect(b.data[0]!.b64_json).toBe(a.data[0]!.b64_json);
    expect(worker.imageJobs.length).toBe(jobs + 1);
  });

  test('async through /v1/jobs: progress while it runs, then the result with links', async () => {
    behaviour = { stepDelayMs: 40 };
    const submitted = (await (
      await post('/v1/jobs', {
        type: 'image.generation',
        request: { model: IMAGE_MODEL.name, prompt: 'a slow painting', size: '64x64', steps: 10 },
      })
    ).json()) as { id: string; status: string };
    const get = async () =>
      (await (
        await fetch(`${gw.url}/v1/jobs/${submitted.id}`, { headers: { authorization: `Bearer ${key}` } })
      ).json()) as {
        status: string;
        type: string;
        progress?: { step: number; steps: number } | null;
        result: { data: { url: string }[] } | null;
      };
    await expect.poll(async () => (await get()).progress?.step ?? 0, { timeout: 5_000 }).toBeGreaterThan(0);
    const running = await get();
    expect(running).toMatchObject({ type: 'image.generation', status: 'running', progress: { steps: 10 } });
    await expect.poll(async () => (await get()).status, { timeout: 10_000 }).toBe('succeeded');
    const done = await get();
    expect(done.result!.data[0]!.url).toMatch(/\/v1\/images\/files\/0x[0-9a-f]{64}\.png$/);
    expect((await fetch(done.result!.data[0]!.url)).status).toBe(200);
  });
});

test('an async image job with a webhook: the signed body carries the job with links to its images', async () => {
  const received: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      received.push(body);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const res = await post('/v1/jobs', {
      type: 'image.generation',
      request: { model: IMAGE_MODEL.name, prompt: 'a webhook painting', size: '64x64', steps: 2 },
      webhook_url: url,
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await expect.poll(() => received.length, { timeout: 10_000 }).toBe(1);
    const hook = JSON.parse(received[0]!) as {
      id: string;
      type: string;
      status: string;
      result: { data: { url: string }[]; grid: { images: { hash: string }[] } };
    };
    expect(hook).toMatchObject({ id, type: 'image.generation', status: 'succeeded' });
    // Links relative to the gateway (a webhook has no request to take an origin from), content-addressed.
    const link = hook.result.data[0]!.url;
    expect(link).toBe(`/v1/images/files/${hook.result.grid.images[0]!.hash}.png`);
    expect((await fetch(`${gw.url}${link}`)).status).toBe(200);
    expect(received[0]).not.toContain('a webhook painting');
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});

describe('what a validator gets to audit an image job', () => {
  const validator = privateKeyToAccount(roles.validatorOperator.privateKey);
  let last = 0;
  async function signedPost(path: string, body: unknown) {
    const timestamp = Math.max(Math.floor(Date.now() / 1000), last + 1);
    last = timestamp;
    const signature = await validator.signMessage({
      message: auditRequestMessage({ method: 'POST', path, timestamp, gateway: gw.gateway }),
    });
    return fetch(`${gw.url}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        [AUDIT_HEADERS.validator]: validator.address,
        [AUDIT_HEADERS.timestamp]: String(timestamp),
        [AUDIT_HEADERS.signature]: signature,
      },
      body: JSON.stringify(body),
    });
  }
  async function signedGet(path: string) {
    const timestamp = Math.max(Math.floor(Date.now() / 1000), last + 1);
    last = timestamp;
    const signature = await validator.signMessage({
      message: auditRequestMessage({ method: 'GET', path, timestamp, gateway: gw.gateway }),
    });
    return fetch(`${gw.url}${path}`, {
      headers: {
        [AUDIT_HEADERS.validator]: validator.address,
        [AUDIT_HEADERS.timestamp]: String(timestamp),
        [AUDIT_HEADERS.signature]: signature,
      },
    });
  }

  /** A checker (worker B, serving the image model) online, and an image job run by worker A to check. */
  async function checkerAndJob(
    prompt: string,
    opts: { imageCheckDelayMs?: number; maxConcurrency?: number } = {},
  ) {
    const checker = new ScriptedWorker({
      url: gw.workerUrl,
      operatorKey: roles.operatorB.privateKey,
      owner: roles.workerB.address,
      ...(opts.imageCheckDelayMs ? { imageCheckDelayMs: opts.imageCheckDelayMs } : {}),
      models: [
        {
          name: IMAGE_MODEL.name,
          weightsHash: IMAGE_MODEL.weightsHash,
          sampler: 'test-ldm',
          image: IMAGE_MODEL.image,
          ...(opts.maxConcurrency ? { maxConcurrency: opts.maxConcurrency } : {}),
        },
      ],
    });
    extra.push(checker);
    await checker.connect();
    const res = (await (
      await post('/v1/images/generations', {
        model: IMAGE_MODEL.name,
        prompt,
        size: '64x64',
        steps: 3,
        grid: { workers: [roles.workerA.address] },
      })
    ).json()) as { grid: { job_id: Hex } };
    return { checker, id: res.grid.job_id };
  }

  test('the job, its parameters and pipeline; each image with the latents its signed root commits to', async () => {
    const res = (await (
      await post('/v1/images/generations', {
        model: IMAGE_MODEL.name,
        prompt: 'audit me',
        size: '64x64',
        n: 2,
        steps: 3,
      })
    ).json()) as { grid: { job_id: Hex; images: { hash: Hex; trajectory_root: Hex }[] } };
    const id = res.grid.job_id;
    const evidence = (await (await signedGet(`/v1/audit/jobs/${id}`)).json()) as {
      kind: string;
      prompt_token_ids: number[];
      image: {
        params: { steps: number; n: number };
        pipeline: string;
        outputs: { hash: Hex; trajectory_root: Hex }[];
      };
    };
    expect(evidence.kind).toBe('image');
    expect(Buffer.from(evidence.prompt_token_ids).toString('utf8')).toBe('audit me');
    expect(evidence.image).toMatchObject({ params: { steps: 3, n: 2 }, pipeline: 'test-ldm' });
    for (const [i, out] of evidence.image.outputs.entries()) {
      const img = (await (await signedGet(`/v1/audit/jobs/${id}/images/${i}`)).json()) as {
        data: string;
        latents: string;
        trajectory_root: Hex;
      };
      expect(hashImage(Buffer.from(img.data, 'base64'))).toBe(out.hash);
      const latents = latentsFromBytes(Buffer.from(img.latents, 'base64'), 4)!;
      expect(trajectoryTree(latents).root).toBe(out.trajectory_root);
      expect(out.trajectory_root).toBe(res.grid.images[i]!.trajectory_root);
    }
    // Unsigned: refused; an image index the job does not have: 404.
    expect((await fetch(`${gw.url}/v1/audit/jobs/${id}/images/0`)).status).toBe(401);
    expect((await signedGet(`/v1/audit/jobs/${id}/images/5`)).status).toBe(404);
  });

  test('a cross-check: the drawn worker re-runs one step from the committed latent, signed; never the audited worker', async () => {
    const { checker, id } = await checkerAndJob('check me');
    const img = (await (await signedGet(`/v1/audit/jobs/${id}/images/0`)).json()) as { latents: string };
    const committed = latentsFromBytes(Buffer.from(img.latents, 'base64'), 4)!;
    const check = (body: Record<string, unknown>) =>
      signedPost('/v1/audit/image-check', { job_id: id, image: 0, ...body });
    const answer = (await (await check({ worker: roles.workerB.address, op: 'step', step: 1 })).json()) as {
      worker: string;
      operator: string;
      check_job_id: Hex;
      latent: string;
      signature: Hex;
    };
    expect(answer).toMatchObject({ worker: roles.workerB.address, operator: roles.operatorB.address });
    const stepped = latentsFromBytes(Buffer.from(answer.latent, 'base64'), 1)![0]!;
    // The checker got the committed latent of step 1 (it answers it + 1).
    expect([...stepped]).toEqual([...committed[1]!.map((x) => x + 1)]);
    expect(checker.imageChecks.at(-1)).toMatchObject({ op: 'step', step: 1, auditedJobId: id });
    const signer = await recoverTypedDataAddress({
      ...imageCheckTypedData(
        {
          checkJobId: answer.check_job_id,
          auditedJobId: id,
          worker: roles.workerB.address,
          modelId: IMAGE_MODEL_ID,
          requestHash: computeImageRequestHash(
            imagePromptTokenIds('check me'),
            [],
            checker.imageChecks.at(-1)!.params,
            'test-ldm',
          ),
          op: 1,
          image: 0,
          step: 1,
          input: hashLatent(committed[1]!),
          output: hashLatent(stepped),
        },
        gw.common.options.chainId ?? 31337,
        grid.grid,
      ),
      signature: answer.signature,
    });
    expect(signer).toBe(roles.operatorB.address);
    // A validator has a bounded number of checks in flight (as for scores: 4 by default).
    checker.opts.imageCheckDelayMs = 300;
    try {
      const many = await Promise.all(
        Array.from({ length: 6 }, () => check({ worker: roles.workerB.address, op: 'noise', step: 0 })),
      );
      const statuses = many.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    } finally {
      checker.opts.imageCheckDelayMs = undefined;
    }
    // The audited worker never checks its own job; a step past the job's steps is refused.
    await expectError(
      await check({ worker: roles.workerA.address, op: 'step', step: 0 }),
      400,
      'invalid_request',
      'worker',
    );
    await expectError(
      await check({ worker: roles.workerB.address, op: 'step', step: 3 }),
      400,
      'invalid_request',
      'step',
    );
    expect(
      (
        await fetch(`${gw.url}/v1/audit/image-check`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ job_id: id, worker: roles.workerB.address, image: 0, op: 'noise', step: 0 }),
        })
      ).status,
    ).toBe(401);
  });

  test('a drawn checker busy with other work is waited for, never failed: one slot, checks in turn, a busy refusal tried again', async () => {
    const { checker, id } = await checkerAndJob('check me in turn', {
      imageCheckDelayMs: 150,
      maxConcurrency: 1,
    });
    const check = (step: number) =>
      signedPost('/v1/audit/image-check', {
        job_id: id,
        image: 0,
        worker: roles.workerB.address,
        op: 'step',
        step,
      });
    // Three checks at once on a worker with one slot: each waits for it, none is sent to a full worker.
    const three = await Promise.all([0, 1, 2].map(check));
    expect(three.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(checker.peakChecks).toBe(1);
    // Busy with another gateway's work: it refuses twice for capacity; the check is sent again and answered.
    const before = checker.imageChecks.length;
    checker.opts.imageCheckBusy = 2;
    const again = await check(1);
    expect(again.status).toBe(200);
    expect(checker.imageChecks.length - before).toBe(3);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).not.toMatch(/aipg_gateway_audit_image_checks_total\{[^}]*outcome="failed"[^}]*\} [1-9]/);
  });
});

describe('a client mistake is a 400 before any work, never a worker fault', () => {
  test.each([
    [{ size: '512x512' }, 'size'],
    [{ size: 'big' }, 'size'],
    [{ steps: 40 }, 'steps'],
    [{ n: 4 }, 'n'],
    [{ scheduler: 'dpm' }, 'scheduler'],
    [{ prompt: '' }, 'prompt'],
    [{ output_compression: 50 }, 'output_compression'],
    [{ background: 'transparent' }, 'background'],
    [{ prompt: 'nul \u0000 inside' }, 'prompt'],
  ])('%j → 400 naming %s', async (over, param) => {
    const jobs = worker.imageJobs.length;
    const res = await post('/v1/images/generations', {
      model: IMAGE_MODEL.name,
      prompt: 'x',
      size: '64x64',
      ...over,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe(param);
    expect(worker.imageJobs.length).toBe(jobs);
  });

  test('an answer too large for one hub frame (images and their latents): 400 before any work', async () => {
    const jobs = worker.imageJobs.length;
    const e = await expectError(
      await post('/v1/images/generations', {
        model: IMAGE_MODEL.name,
        prompt: 'x',
        size: '128x64',
        n: 3,
        steps: 12,
      }),
      400,
      'invalid_request',
      'n',
    );
    expect(e.message).toMatch(/too large for one answer/);
    expect(worker.imageJobs.length).toBe(jobs);
  });

  test('a text model sent to the Images API, or an image model to chat: 400 naming model', async () => {
    await expectError(
      await post('/v1/images/generations', { model: MODEL.name, prompt: 'x' }),
      400,
      'invalid_request',
      'model',
    );
    await expectError(
      await post('/v1/chat/completions', {
        model: IMAGE_MODEL.name,
        messages: [{ role: 'user', content: 'hi' }],
      }),
      400,
      'invalid_request',
      'model',
    );
  });

  test('402 when the payer cannot cover the exact fee, before any work', async () => {
    const poor = await createApiKey(gw, roles.poorPayer.privateKey);
    const jobs = worker.imageJobs.length;
    await expectError(
      await post(
        '/v1/images/generations',
        { model: IMAGE_MODEL.name, prompt: 'x', size: '64x64' },
        { authorization: `Bearer ${poor}` },
      ),
      402,
      'insufficient_balance',
    );
    expect(worker.imageJobs.length).toBe(jobs);
  });
});

describe('a dishonest worker is refused and nothing is charged', () => {
  test.each([
    ['another size than asked', { wrongSize: true }, /not the 64×64 png asked/],
    ['bytes that are not the image it hashed', { corruptBytes: true }, /do not hash/],
    ['one image fewer', { fewerImages: true }, /1 images for n = 2/],
    ['a higher fee', { tamper: (r) => ({ ...r, fee: r.fee * 2n }) }, /fee/],
    [
      'a request hash over another seed',
      { tamper: (r) => ({ ...r, requestHash: keccak256(toBytes('other seed')) }) },
      /requestHash/,
    ],
    ['fewer pixel-steps', { tamper: (r) => ({ ...r, outputUnits: r.outputUnits / 2n }) }, /outputUnits/],
    ['a trajectory root without its latents', { noLatents: true }, /without its latents/],
    ['latents that do not open the root', { unopenedRoot: true }, /do not open the committed trajectory/],
    [
      'a trajectory one step short',
      { fewerLatents: true },
      /do not open the committed trajectory of 2 steps/,
    ],
  ] satisfies [string, ImageBehaviour, RegExp][])('%s', async (_what, b, reason) => {
    behaviour = b;
    const before = await balance();
    const stats = gw.workerStats(roles.workerA.address);
    const res = await twoImages();
    const e = await expectError(res, 502, 'invalid_receipt');
    expect(e.message).toMatch(reason);
    expect(await balance()).toEqual(before);
    expect(gw.workerStats(roles.workerA.address).receiptsRejected).toBe(stats.receiptsRejected + 1);
  });

  test.each([
    [
      'the last step again, 500 times',
      (job: ImageJobMessage) =>
        Array.from({ length: 500 }, () => ({ image: 0, step: job.params.steps, steps: job.params.steps })),
      /progress step 2 of image 0 out of order/,
    ],
    [
      'a preview nobody asked for',
      (job: ImageJobMessage) => [{ image: 1, step: 1, steps: job.params.steps, preview: PREVIEW }],
      /more previews than the 0 asked/,
    ],
    [
      "a step past the job's steps",
      (job: ImageJobMessage) => [{ image: 1, step: job.params.steps + 1, steps: job.params.steps + 1 }],
      /progress step 3 of image 1 out of order/,
    ],
    [
      'an image past n',
      (job: ImageJobMessage) => [{ image: job.params.n, step: 1, steps: job.params.steps }],
      /progress of image 2 of a job of 2/,
    ],
  ])(
    'progress no pipeline sends (%s): the attempt ends there, the job cancelled, nothing charged',
    async (_what, extraProgress, reason) => {
      behaviour = { extraProgress };
      const before = await balance();
      const stats = gw.workerStats(roles.workerA.address);
      const res = await twoImages();
      const jobId = res.headers.get('x-grid-job-id')!;
      const e = await expectError(res, 502, 'worker_failed');
      expect(e.message).toMatch(reason);
      expect(await balance()).toEqual(before);
      expect(gw.workerStats(roles.workerA.address).jobsFailed).toBe(stats.jobsFailed + 1);
      // The cancel leaves with the turn that refused the frame: one round trip later the worker has it.
      await expect.poll(() => worker.cancels.includes(jobId), { timeout: 5_000 }).toBe(true);
    },
  );

  test('streamed, previews past partial_images per image: the client gets those allowed, then the error', async () => {
    // Image 0 sends its one preview (step 2); then two more for image 1 before its steps: the second is
    // one more than n × partial_images.
    behaviour = {
      extraProgress: () => [
        { image: 1, step: 1, steps: 2, preview: PREVIEW },
        { image: 1, step: 2, steps: 2, preview: PREVIEW },
      ],
    };
    const before = await balance();
    const res = await twoImages({ stream: true, partial_images: 1 });
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body.split('image_generation.partial_image').length - 1).toBe(2);
    expect(body).toMatch(/more previews than the 1 asked per image/);
    expect(body).not.toMatch(/image_generation\.completed/);
    expect(await balance()).toEqual(before);
  });

  test('a worker refusing for capacity is not counted against it; the job waits and runs', async () => {
    let refused = 0;
    worker.opts.imageScript = () => (refused++ === 0 ? { failBeforeProgress: 'busy' } : {});
    try {
      const stats = gw.workerStats(roles.workerA.address);
      const res = await post('/v1/images/generations', {
        model: IMAGE_MODEL.name,
        prompt: 'x',
        size: '64x64',
        steps: 1,
      });
      expect(res.status).toBe(200);
      expect(gw.workerStats(roles.workerA.address).jobsFailed).toBe(stats.jobsFailed);
    } finally {
      worker.opts.imageScript = () => behaviour;
    }
  });
});

test('a worker advertising an image model without what its pipeline accepts is refused at login', async () => {
  const w = new ScriptedWorker({
    url: gw.workerUrl,
    operatorKey: roles.operatorB.privateKey,
    owner: roles.workerB.address,
    models: [{ name: IMAGE_MODEL.name, weightsHash: IMAGE_MODEL.weightsHash }],
  });
  extra.push(w);
  await expect(w.connect()).rejects.toThrow(/image model/);
  expect(IMAGE_MODEL_ID).toMatch(/^0x/);
});
