import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CANONICAL_SAMPLER,
  computeModelId,
  computeOutputHash,
  computeRequestHash,
  computeTextFee,
  receiptFromJson,
  scoreAttestation,
  scoreTypedData,
} from '@aipg/core';
import { createTokenizer, type EnsureModelReturnType, ensureModel, type Tokenizer } from '@aipg/inference';
import { recoverTypedDataAddress } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkerOptions, startWorker, type Worker } from '../../src/index.ts';
import { RATES, setupChain, type TestChain } from './helpers/chain.ts';
import { type GatewayPeer, type PeerConnection, startGatewayPeer } from './helpers/gateway-peer.ts';
import { memoryLogger } from './helpers/worker.ts';

/**
 * The whole path with a real engine: flags → options → the llama-cpp backend (created by the
 * backend factory, the tiny GGUF the project generates) → the gateway protocol → signed receipts.
 * The test gateway tokenizes as the real one does: with the model's tokenizer file (no weights).
 */
const OPERATOR = 1;
const greedy = { maxTokens: 24, temperature: 0, topP: 1, seed: null, stop: [] };

let dir: string;
let model: EnsureModelReturnType;
let chain: TestChain;
let peer: GatewayPeer;
let worker: Worker;
let conn: PeerConnection;
let tokenizer: Tokenizer & { close(): Promise<void> };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-worker-e2e-'));
  model = await ensureModel({ dir, preset: 'tiny' });
  tokenizer = await createTokenizer({ modelPath: model.tokenizerPath });
  chain = await setupChain();
  peer = await startGatewayPeer({
    chainId: chain.chainId,
    grid: chain.grid,
    client: chain.publicClient,
    tokenize: (input) =>
      'messages' in input
        ? tokenizer.chatPromptTokenIds(input.messages)
        : tokenizer.promptTokenIds(input.prompt),
  });
  await chain.bondWorker(OPERATOR, '1000');
  await chain.registerModel({
    name: model.name,
    weightsHash: model.weightsHash,
    modelId: computeModelId(model.name, model.weightsHash),
    tokenizerHash: model.tokenizerHash,
  });
  const options = await createWorkerOptions(
    {
      network: 'devnet',
      rpcUrl: chain.rpcUrl,
      grid: chain.grid,
      gateway: peer.url,
      model: model.name,
      gguf: model.path,
      threads: 1,
      maxConcurrency: 2,
    },
    { AIPG_OPERATOR_KEY: chain.account(OPERATOR).privateKey },
  );
  const login = peer.nextWorker();
  worker = await startWorker(options, { logger: memoryLogger().logger });
  conn = await login;
});
afterAll(async () => {
  await worker?.stop();
  await peer?.close();
  await chain?.stop();
  await tokenizer?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a worker on the embedded llama.cpp backend', () => {
  it('advertises the model with the hash of the GGUF file and the canonical sampler', () => {
    expect(conn.hello.models).toEqual([
      {
        modelId: computeModelId(model.name, model.weightsHash),
        name: model.name,
        weightsHash: model.weightsHash,
        maxConcurrency: 2,
        sampler: CANONICAL_SAMPLER,
      },
    ]);
  });

  it("streams a chat answer and signs a receipt over the gateway's prompt ids and the ids that ran", async () => {
    const handle = conn.sendJob({
      stream: true,
      params: greedy,
      content: 'hello grid, tell me about the chain',
    });
    const frame = await handle.done;
    if (frame.type !== 'result') throw new Error(JSON.stringify(frame));
    expect(handle.job.promptTokenIds[0]).toBe(tokenizer.bosTokenId);
    expect(frame.promptTokenIds).toEqual(handle.job.promptTokenIds);
    expect(frame.outputTokenIds.length).toBeGreaterThan(1);
    // Streamed as the engine yields them (one token per turn), but for those of the turn that ended
    // the answer: they leave with the result, which holds every id.
    const streamed = handle.tokens.flatMap((t) => t.tokenIds);
    expect(streamed.length).toBeGreaterThan(0);
    expect(streamed.length).toBeLessThanOrEqual(frame.outputTokenIds.length);
    expect(frame.outputTokenIds.slice(0, streamed.length)).toEqual(streamed);
    // Ids only on the wire: the gateway renders the text from them.
    for (const f of conn.rawFrames.filter((f) => (f as { jobId?: string }).jobId === handle.job.jobId))
      expect(f).not.toHaveProperty('text');

    const receipt = receiptFromJson(frame.receipt);
    expect(receipt.requestHash).toBe(
      computeRequestHash(handle.job.promptTokenIds, greedy, CANONICAL_SAMPLER),
    );
    expect(receipt.outputHash).toBe(computeOutputHash(frame.outputTokenIds, frame.finishReason));
    expect(receipt.inputUnits).toBe(BigInt(frame.promptTokenIds.length));
    expect(receipt.outputUnits).toBe(BigInt(frame.outputTokenIds.length));
    expect(receipt.fee).toBe(
      computeTextFee({
        inputTokens: frame.promptTokenIds.length,
        outputTokens: frame.outputTokenIds.length,
        rates: { inputPerMTokens: RATES.inputPerMTokens, outputPerMTokens: RATES.outputPerMTokens },
      }),
    );
    expect(receipt.worker).toBe(chain.account(OPERATOR).address);
    expect(await chain.receiptSignedBy(OPERATOR, receipt, frame.signature)).toBe(true);
  });

  it("runs the gateway's ids exactly: ids for another text give that text's answer", async () => {
    const ids = tokenizer.promptTokenIds('the proof of work');
    const asCompletion = await conn.sendJob({
      kind: 'completion',
      input: { prompt: 'the proof of work' },
      params: greedy,
    }).done;
    const asIds = await conn.sendJob({ params: greedy, content: 'something else', promptTokenIds: ids }).done;
    if (asCompletion.type !== 'result' || asIds.type !== 'result')
      throw new Error(JSON.stringify([asCompletion, asIds]));
    expect(asCompletion.promptTokenIds).toEqual(ids);
    expect(asIds.promptTokenIds).toEqual(ids);
    expect(asIds.outputTokenIds).toEqual(asCompletion.outputTokenIds);
    expect(asIds.receipt.requestHash).toBe(asCompletion.receipt.requestHash);
  });

  it('refuses prompt ids outside the vocabulary for good, without a receipt', async () => {
    const handle = conn.sendJob({
      params: greedy,
      promptTokenIds: [tokenizer.bosTokenId, 42, tokenizer.vocabSize + 7],
    });
    expect(await handle.done).toMatchObject({
      type: 'job-error',
      code: 'PROMPT_TOKENS_INVALID',
      retryable: false,
      message: expect.stringContaining(`token ${tokenizer.vocabSize + 7}`),
    });
    expect(
      conn.frames.filter((f) => 'jobId' in f && f.jobId === handle.job.jobId).map((f) => f.type),
    ).toEqual(['job-error']);
  });

  it('runs two jobs at once; the same greedy job gives the same output hash', async () => {
    const a = conn.sendJob({ params: greedy, content: 'the proof of work' });
    const b = conn.sendJob({ params: greedy, content: 'the proof of work' });
    const [fa, fb] = await Promise.all([a.done, b.done]);
    if (fa.type !== 'result' || fb.type !== 'result') throw new Error(JSON.stringify([fa, fb]));
    expect(fb.outputTokenIds).toEqual(fa.outputTokenIds);
    expect(fb.receipt.outputHash).toBe(fa.receipt.outputHash);
    expect(fb.receipt.requestHash).toBe(fa.receipt.requestHash);
    expect(conn.invalidFrames).toEqual([]);
  });

  it('scores a claimed output with the model: one position per token, greedy tokens ranked first', async () => {
    const gen = await conn.sendJob({ params: greedy, content: 'score this answer please' }).done;
    if (gen.type !== 'result') throw new Error(JSON.stringify(gen));
    const handle = conn.sendScore({
      promptTokenIds: gen.promptTokenIds,
      outputTokenIds: gen.outputTokenIds,
      topK: 8,
    });
    const frame = await handle.done;
    if (frame.type !== 'score-result') throw new Error(JSON.stringify(frame));
    expect(frame.jobId).toBe(handle.frame.jobId);
    expect(frame.positions.map((p) => p.tokenId)).toEqual(gen.outputTokenIds);
    for (const p of frame.positions) {
      expect(p.rank).toBe(0);
      expect(p.top).toHaveLength(8);
      expect(p.top[0]?.tokenId).toBe(p.tokenId);
      expect(p.top[0]?.probability).toBeCloseTo(p.probability, 6);
      const probs = p.top.map((t) => t.probability);
      expect([...probs].sort((a, b) => b - a)).toEqual(probs);
    }
    // Signed by the operator key, over exactly this score job, the audited job, the bond and the scores.
    const attestation = scoreAttestation({
      scoreJobId: handle.frame.jobId,
      auditedJobId: handle.frame.auditedJobId,
      worker: conn.owner!,
      modelId: handle.frame.modelId,
      promptTokenIds: gen.promptTokenIds,
      outputTokenIds: gen.outputTokenIds,
      topK: 8,
      positions: frame.positions,
    });
    const signed = (a: typeof attestation) =>
      recoverTypedDataAddress({
        ...scoreTypedData(a, chain.chainId, chain.grid),
        signature: frame.signature,
      });
    expect(await signed(attestation)).toBe(chain.account(OPERATOR).address);
    expect(await signed({ ...attestation, auditedJobId: gen.receipt.jobId })).not.toBe(
      chain.account(OPERATOR).address,
    );
    expect(worker.status().jobs.scored).toBe(1);
    expect(conn.invalidFrames).toEqual([]);
  });

  it('score jobs take the model’s concurrency slots; ids outside the vocabulary are refused for good', async () => {
    const long = Array.from({ length: 600 }, (_, i) => 40 + (i % 200));
    const frames = [0, 1, 2].map(() =>
      conn.sendScore({ promptTokenIds: [1, 2, 3], outputTokenIds: long, topK: 4 }),
    );
    const done = await Promise.all(frames.map((f) => f.done));
    expect(done.map((f) => f.type).sort()).toEqual(['job-error', 'score-result', 'score-result']);
    expect(done.find((f) => f.type === 'job-error')).toMatchObject({ code: 'WORKER_BUSY', retryable: true });

    const invalid = await conn.sendScore({ promptTokenIds: [1, 2], outputTokenIds: [10_000_000], topK: 2 })
      .done;
    expect(invalid).toMatchObject({ type: 'job-error', code: 'WORKER_SCORE_INVALID', retryable: false });
  });
});
