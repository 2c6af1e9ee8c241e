import {
  computeImageFee,
  computeImageOutputHash,
  computeImageRequestHash,
  computeModelId,
  hashImage,
  type ImageCapabilities,
  imageInfo,
  imagePixelSteps,
  receiptFromJson,
  receiptTypedData,
} from '@aipg/core';
import sharp from 'sharp';
import { keccak256, toBytes, verifyTypedData } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageBackend, ImageRequest } from '../../src/backends/types.ts';
import { startWorker, type Worker } from '../../src/index.ts';
import { setupChain, type TestChain } from './helpers/chain.ts';
import { createFakeBackend } from './helpers/fake-backend.ts';
import { type GatewayPeer, type PeerConnection, startGatewayPeer } from './helpers/gateway-peer.ts';
import { workerOptions } from './helpers/worker.ts';

// The image flavour in the worker: `image-job` frames run on an ImageBackend, progress streamed, the
// receipt built and signed over exactly what ran and what is delivered; a text job for an image model,
// a reused receipt number and a backend that delivers the wrong thing are refused, never signed.

const CAPS: ImageCapabilities = {
  sizes: [
    [64, 64],
    [64, 32],
  ],
  minSteps: 1,
  maxSteps: 8,
  maxN: 2,
  schedulers: ['ddim'],
  trajectory: true,
};

/** An image backend over sharp: one colour per seed, the asked size and format; `lie` delivers another size. */
function testImageBackend(opts: { lie?: boolean } = {}): ImageBackend & { requests: ImageRequest[] } {
  const weightsHash = keccak256(toBytes('test image weights'));
  const requests: ImageRequest[] = [];
  return {
    kind: 'diffusion',
    model: { name: 'test-image', weightsHash, modelId: computeModelId('test-image', weightsHash) },
    pipeline: 'test-pipeline-v1',
    capabilities: CAPS,
    requests,
    async load() {},
    async close() {},
    async generate(r) {
      requests.push(r);
      const { width, height, steps, n, seed, format } = r.params;
      const images = [];
      for (let i = 0; i < n; i++) {
        for (let k = 1; k <= steps; k++) r.onProgress?.({ image: i, step: k, steps });
        const w = opts.lie ? width * 2 : width;
        const raw = Buffer.alloc(w * height * 3, (seed + i) % 251);
        const bytes = await sharp(raw, { raw: { width: w, height, channels: 3 } })
          .toFormat(format)
          .toBuffer();
        images.push({
          bytes: new Uint8Array(bytes),
          trajectoryRoot: keccak256(toBytes(`trajectory ${seed + i}`)),
        });
      }
      return { images, timings: { totalMs: 1 } };
    },
  };
}

let chain: TestChain;
let peer: GatewayPeer;
let worker: Worker;
let conn: PeerConnection;
const image = testImageBackend();
const OWNER = 3;
const OPERATOR = 4;

beforeAll(async () => {
  chain = await setupChain();
  peer = await startGatewayPeer({ chainId: chain.chainId, grid: chain.grid, client: chain.publicClient });
  await chain.bondWorker(OWNER, '1000', chain.account(OPERATOR).address);
  const text = createFakeBackend({ name: 'aipg-tiny' });
  await chain.registerModel(text.model);
  await chain.registerModel({ ...image.model, kind: 'image' });
  const options = await workerOptions({
    chain,
    operatorKey: chain.account(OPERATOR).privateKey,
    gatewayUrl: peer.url,
  });
  const login = peer.nextWorker();
  worker = await startWorker(options, {
    backends: [
      { image, maxConcurrency: 1 },
      { backend: text, maxConcurrency: 1 },
    ],
  });
  conn = await login;
  await worker.ready();
});

afterAll(async () => {
  await worker?.stop();
  await peer?.close();
  await chain?.stop();
});

describe('image jobs on a worker that serves chat and images at once', () => {
  it('advertises the image model with what its pipeline accepts, its pipeline as the sampler', () => {
    expect(conn.hello.models[0]).toMatchObject({
      modelId: image.model.modelId,
      name: 'test-image',
      sampler: 'test-pipeline-v1',
      image: CAPS,
    });
    expect(conn.hello.models[1]).not.toHaveProperty('image');
  });

  it('runs the job, streams progress in order, and signs a receipt over exactly what ran and what it delivers', async () => {
    const h = conn.sendImageJob({
      params: {
        width: 64,
        height: 32,
        steps: 3,
        guidance: 5,
        seed: 7,
        n: 2,
        scheduler: 'ddim',
        format: 'webp',
      },
      negativeTokenIds: [...Buffer.from('blur')],
    });
    const frame = await h.done;
    if (frame.type !== 'image-result') throw new Error(`expected a result, got ${JSON.stringify(frame)}`);
    expect(h.progress.map((p) => `${p.image}:${p.step}/${p.steps}`)).toEqual([
      '0:1/3',
      '0:2/3',
      '0:3/3',
      '1:1/3',
      '1:2/3',
      '1:3/3',
    ]);
    const bytes = frame.images.map((i) => Buffer.from(i.data, 'base64'));
    for (const [i, b] of bytes.entries()) {
      expect(imageInfo(b)).toEqual({ format: 'webp', width: 64, height: 32 });
      expect(frame.images[i]!.imageHash).toBe(hashImage(b));
    }
    const r = receiptFromJson(frame.receipt);
    const job = h.job;
    expect(r).toMatchObject({
      jobId: job.jobId,
      gateway: conn.challenge.gateway,
      payer: job.payer,
      worker: chain.account(OWNER).address,
      modelId: image.model.modelId,
      requestHash: computeImageRequestHash(
        job.promptTokenIds,
        job.negativeTokenIds,
        job.params,
        'test-pipeline-v1',
      ),
      outputHash: computeImageOutputHash(frame.images),
      inputUnits: BigInt(job.promptTokenIds.length),
      outputUnits: imagePixelSteps(job.params),
      fee: computeImageFee({
        params: job.params,
        rates: { perMegapixelStep: BigInt(job.pricing.perMegapixelStep) },
      }),
      confidential: false,
      seq: BigInt(job.seq),
    });
    expect(
      await verifyTypedData({
        address: chain.account(OPERATOR).address,
        ...receiptTypedData(r, chain.chainId, chain.grid),
        signature: frame.signature,
      }),
    ).toBe(true);
    // The backend got exactly the job's prompt bytes and parameters.
    expect(image.requests.at(-1)).toMatchObject({
      promptTokenIds: job.promptTokenIds,
      negativeTokenIds: job.negativeTokenIds,
      params: job.params,
    });
  });

  it('refuses a receipt number it already signed, and a text job sent to the image model', async () => {
    const first = await conn.sendImageJob({ seq: '4242' }).done;
    expect(first.type).toBe('image-result');
    const again = await conn.sendImageJob({ seq: '4242' }).done;
    expect(again).toMatchObject({ type: 'job-error', code: 'WORKER_SEQ_REUSED', retryable: false });
    const text = await conn.sendJob({ modelId: image.model.modelId }).done;
    expect(text).toMatchObject({ type: 'job-error', code: 'WORKER_MODEL_NOT_SERVED', retryable: false });
  });
});

describe('a backend that delivers something other than what was asked', () => {
  it('is an error, never a signed receipt', async () => {
    const liar = testImageBackend({ lie: true });
    const c = await setupChain();
    const p = await startGatewayPeer({ chainId: c.chainId, grid: c.grid, client: c.publicClient });
    try {
      await c.bondWorker(5, '1000', c.account(6).address);
      await c.registerModel({ ...liar.model, kind: 'image' });
      const options = await workerOptions({
        chain: c,
        operatorKey: c.account(6).privateKey,
        gatewayUrl: p.url,
      });
      const login = p.nextWorker();
      const w = await startWorker(options, { backends: [{ image: liar, maxConcurrency: 1 }] });
      try {
        const k = await login;
        await w.ready();
        const frame = await k.sendImageJob().done;
        expect(frame).toMatchObject({ type: 'job-error', code: 'WORKER_BACKEND_FAILED' });
        expect((frame as { message: string }).message).toMatch(/not the 64×64 png asked/);
        expect(k.frames.some((f) => f.type === 'image-result')).toBe(false);
      } finally {
        await w.stop();
      }
    } finally {
      await p.close();
      await c.stop();
    }
  });
});
