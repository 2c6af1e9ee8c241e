import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  computeImageRequestHash,
  hashImage,
  hashLatent,
  type ImageParams,
  imageCheckTypedData,
  imagePromptTokenIds,
  latentBytes,
  latentsFromBytes,
} from '@aipg/core';
import { createDiffusionPipeline, DIFFUSION_PIPELINE, type DiffusionPipeline } from '@aipg/diffusion';
import { type Hex, keccak256, recoverTypedDataAddress, toBytes } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDiffusionBackend, startWorker, type Worker } from '../../src/index.ts';
import { setupChain, type TestChain } from './helpers/chain.ts';
import { type GatewayPeer, type PeerConnection, startGatewayPeer } from './helpers/gateway-peer.ts';
import { workerOptions } from './helpers/worker.ts';

// An image cross-check on a worker serving the embedded pipeline: the seed's noise, one step from a
// committed latent, the decode of a final latent, each exactly what the pipeline computes, and signed.

let chain: TestChain;
let peer: GatewayPeer;
let worker: Worker;
let conn: PeerConnection;
let dir: string;
let local: DiffusionPipeline;
const OWNER = 5;
const OPERATOR = 6;
const params: ImageParams = {
  width: 256,
  height: 256,
  steps: 3,
  guidance: 5,
  seed: 9,
  n: 1,
  scheduler: 'ddim',
  format: 'png',
};
const prompt = {
  promptTokenIds: imagePromptTokenIds('a harbour'),
  negativeTokenIds: imagePromptTokenIds('fog'),
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-image-check-'));
  local = await createDiffusionPipeline({ preset: 'tiny', dir });
  chain = await setupChain();
  peer = await startGatewayPeer({ chainId: chain.chainId, grid: chain.grid, client: chain.publicClient });
  await chain.bondWorker(OWNER, '1000', chain.account(OPERATOR).address);
  const image = createDiffusionBackend({ modelDir: join(dir, 'aipg-tiny-ldm') });
  await image.load();
  await chain.registerModel({ ...image.model, kind: 'image' });
  const options = await workerOptions({
    chain,
    operatorKey: chain.account(OPERATOR).privateKey,
    gatewayUrl: peer.url,
  });
  const login = peer.nextWorker();
  worker = await startWorker(options, { backends: [{ image, maxConcurrency: 1 }] });
  conn = await login;
  await worker.ready();
});
afterAll(async () => {
  await worker?.stop();
  await local?.close();
  await peer?.close();
  await chain?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('image checks', () => {
  it('noise, a step and a decode, each what the pipeline computes, signed by the operator over what was computed', async () => {
    const modelId = conn.hello.models[0]!.modelId as Hex;
    const auditedJobId = keccak256(toBytes('an audited image job'));
    const { images } = await local.generate({ ...prompt, params });
    const latents = images[0]!.latents;
    const ask = (op: 'noise' | 'step' | 'decode', step: number, latent?: Float32Array) =>
      conn.sendImageCheck({
        auditedJobId,
        modelId,
        ...prompt,
        params,
        op,
        image: 0,
        step,
        ...(latent ? { latent: Buffer.from(latentBytes(latent)).toString('base64') } : {}),
      });
    const checks = [
      { op: 'noise' as const, step: 0, input: undefined, expected: latents[0]! },
      { op: 'step' as const, step: 1, input: latents[1]!, expected: latents[2]! },
      { op: 'decode' as const, step: 3, input: latents[3]!, expected: undefined },
    ];
    for (const c of checks) {
      const pending = ask(c.op, c.step, c.input);
      const frame = await pending;
      if (frame.type !== 'image-check-result') throw new Error(JSON.stringify(frame));
      const out = frame.latent ? latentsFromBytes(Buffer.from(frame.latent, 'base64'), 1)![0]! : undefined;
      if (c.expected) expect(Buffer.compare(latentBytes(out!), latentBytes(c.expected))).toBe(0);
      else expect(frame.imageHash).toBe(hashImage(images[0]!.bytes));
      const signer = await recoverTypedDataAddress({
        ...imageCheckTypedData(
          {
            checkJobId: pending.jobId,
            auditedJobId,
            worker: chain.account(OWNER).address,
            modelId,
            requestHash: computeImageRequestHash(
              prompt.promptTokenIds,
              prompt.negativeTokenIds,
              params,
              DIFFUSION_PIPELINE,
            ),
            op: ['noise', 'step', 'decode'].indexOf(c.op),
            image: 0,
            step: c.step,
            input: c.input ? hashLatent(c.input) : `0x${'00'.repeat(32)}`,
            output: out ? hashLatent(out) : frame.imageHash!,
          },
          chain.chainId,
          chain.grid,
        ),
        signature: frame.signature,
      });
      expect(signer).toBe(chain.account(OPERATOR).address);
    }
  });

  it('a step without its latent is an error, never a signed answer', async () => {
    const frame = await conn.sendImageCheck({
      auditedJobId: keccak256(toBytes('x')),
      modelId: conn.hello.models[0]!.modelId as Hex,
      ...prompt,
      params,
      op: 'step',
      image: 0,
      step: 0,
    });
    expect(frame).toMatchObject({ type: 'job-error', code: 'WORKER_BACKEND_FAILED' });
  });
});
