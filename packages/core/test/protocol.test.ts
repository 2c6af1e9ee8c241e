import { describe, expect, test } from 'vitest';
import {
  advertisedModelSchema,
  CANONICAL_SAMPLER,
  gatewayToWorker,
  MAX_PROMPT_TOKENS,
  MAX_SCORE_ENTRIES,
  MAX_SCORE_TOKENS,
  MAX_SCORE_TOP_K,
  type Receipt,
  receiptFromJson,
  receiptJsonSchema,
  receiptToJson,
  workerToGateway,
} from '../src/index.ts';

const id = `0x${'ab'.repeat(32)}`;
const score = (extra: Record<string, unknown> = {}) => ({
  type: 'score',
  jobId: id,
  auditedJobId: `0x${'cd'.repeat(32)}`,
  modelId: id,
  promptTokenIds: [1, 2, 3],
  outputTokenIds: [4, 5],
  topK: 8,
  ...extra,
});

describe('score frames', () => {
  test('a score job: bounded token arrays and top-k, and a bounded answer', () => {
    expect(gatewayToWorker.parse(score())).toEqual(score());
    expect(gatewayToWorker.safeParse(score({ topK: 0, outputTokenIds: [] })).success).toBe(true);
    expect(gatewayToWorker.safeParse(score({ topK: MAX_SCORE_TOP_K })).success).toBe(true);
    expect(gatewayToWorker.safeParse(score({ topK: MAX_SCORE_TOP_K + 1 })).success).toBe(false);
    expect(gatewayToWorker.safeParse(score({ promptTokenIds: [] })).success).toBe(false);
    expect(gatewayToWorker.safeParse(score({ promptTokenIds: [-1] })).success).toBe(false);
    expect(
      gatewayToWorker.safeParse(score({ promptTokenIds: new Array(MAX_SCORE_TOKENS + 1).fill(1) })).success,
    ).toBe(false);
    const fits = Math.floor(MAX_SCORE_ENTRIES / (MAX_SCORE_TOP_K + 1));
    expect(
      gatewayToWorker.safeParse(score({ topK: MAX_SCORE_TOP_K, outputTokenIds: new Array(fits).fill(1) }))
        .success,
    ).toBe(true);
    const tooMany = gatewayToWorker.safeParse(
      score({ topK: MAX_SCORE_TOP_K, outputTokenIds: new Array(fits + 1).fill(1) }),
    );
    expect(tooMany.error?.issues[0]?.path).toEqual(['outputTokenIds']);
  });

  test('a score result: one position per output token', () => {
    const result = {
      type: 'score-result',
      jobId: id,
      positions: [
        { tokenId: 4, probability: 0.5, rank: 0, top: [{ tokenId: 4, probability: 0.5 }] },
        { tokenId: 5, probability: 1.00000001, rank: 1, top: [] },
      ],
      signature: `0x${'11'.repeat(65)}`,
    };
    expect(workerToGateway.parse(result)).toEqual(result);
    // Unsigned scores are not an answer; nor is a score job without the audited job it scores.
    const { signature: _, ...unsigned } = result;
    expect(workerToGateway.safeParse(unsigned).success).toBe(false);
    const { auditedJobId: __, ...unbound } = score();
    expect(gatewayToWorker.safeParse(unbound).success).toBe(false);
    const bad = (p: Record<string, unknown>) =>
      workerToGateway.safeParse({ ...result, positions: [{ ...result.positions[0], ...p }] }).success;
    expect(bad({ probability: 1.5 })).toBe(false);
    expect(bad({ probability: -0.1 })).toBe(false);
    expect(bad({ rank: -1 })).toBe(false);
    expect(bad({ top: new Array(MAX_SCORE_TOP_K + 1).fill({ tokenId: 1, probability: 0 }) })).toBe(false);
    // A failed score job answers with the existing job-error frame.
    expect(
      workerToGateway.safeParse({
        type: 'job-error',
        jobId: id,
        code: 'SCORE_UNSUPPORTED',
        message: 'no',
        retryable: true,
      }).success,
    ).toBe(true);
  });
});

describe('job frames and receipts carry the receipt number', () => {
  const job = (extra: Record<string, unknown> = {}) => ({
    type: 'job',
    jobId: id,
    seq: '7',
    modelId: id,
    payer: `0x${'11'.repeat(20)}`,
    kind: 'completion',
    input: { prompt: 'hi' },
    promptTokenIds: [1, 300, 301],
    params: { maxTokens: 4, temperature: 0, topP: 1, seed: null, stop: [] },
    pricing: { inputPerMTokens: '1', outputPerMTokens: '2', confidentialPremiumBps: 0 },
    confidential: false,
    stream: false,
    ...extra,
  });

  test('v3: a job frame carries the prompt as the gateway tokenized it', () => {
    expect(gatewayToWorker.safeParse(job({ promptTokenIds: undefined })).success).toBe(false);
    expect(gatewayToWorker.safeParse(job({ promptTokenIds: [] })).success).toBe(false);
    expect(gatewayToWorker.safeParse(job({ promptTokenIds: [1, -2] })).success).toBe(false);
    expect(
      gatewayToWorker.safeParse(job({ promptTokenIds: new Array(MAX_PROMPT_TOKENS + 1).fill(1) })).success,
    ).toBe(false);
  });

  test('v3: every advertised model names its sampler', () => {
    const model = { modelId: id, name: 'm', weightsHash: id, maxConcurrency: 1 };
    expect(advertisedModelSchema.safeParse(model).success).toBe(false);
    expect(advertisedModelSchema.safeParse({ ...model, sampler: CANONICAL_SAMPLER }).success).toBe(true);
    expect(advertisedModelSchema.safeParse({ ...model, sampler: 'vllm' }).success).toBe(true);
    expect(advertisedModelSchema.safeParse({ ...model, sampler: 'Not A Name' }).success).toBe(false);
  });

  test('v3: token frames carry ids only; any text a worker adds is dropped on parse', () => {
    const frame = { type: 'token', jobId: id, tokenIds: [5], text: 'Visit https://evil.example' };
    expect(workerToGateway.parse(frame)).toEqual({ type: 'token', jobId: id, tokenIds: [5] });
  });

  test('a job frame carries a uint64 seq, or none when its job-seq frame brings it later', () => {
    expect(gatewayToWorker.parse(job())).toEqual(job());
    // Sent while its reservation is written: the number follows in a job-seq frame.
    const { seq: _, ...early } = job();
    expect(gatewayToWorker.parse(early)).toEqual(early);
    expect(gatewayToWorker.safeParse(job({ seq: '-1' })).success).toBe(false);
    expect(gatewayToWorker.safeParse(job({ seq: (2n ** 64n - 1n).toString() })).success).toBe(true);
    expect(gatewayToWorker.safeParse(job({ seq: (2n ** 64n).toString() })).success).toBe(false);
    const late = (seq: unknown) => gatewayToWorker.safeParse({ type: 'job-seq', jobId: id, seq }).success;
    expect(late('42')).toBe(true);
    expect(late((2n ** 64n - 1n).toString())).toBe(true);
    for (const bad of [undefined, '-1', (2n ** 64n).toString(), '1.5', 42, '0x2a'])
      expect(late(bad)).toBe(false);
    expect(gatewayToWorker.safeParse({ type: 'job-seq', jobId: '0x12', seq: '1' }).success).toBe(false);
  });

  test('a receipt round-trips its seq through JSON', () => {
    const hash = id as `0x${string}`;
    const receipt: Receipt = {
      jobId: hash,
      gateway: `0x${'22'.repeat(20)}`,
      payer: `0x${'11'.repeat(20)}`,
      worker: `0x${'33'.repeat(20)}`,
      modelId: hash,
      requestHash: hash,
      outputHash: hash,
      inputUnits: 1n,
      outputUnits: 2n,
      fee: 3n,
      completedAt: 4n,
      confidential: false,
      seq: 2n ** 64n - 1n,
    };
    const json = receiptToJson(receipt);
    expect(json.seq).toBe('18446744073709551615');
    expect(receiptFromJson(receiptJsonSchema.parse(json))).toEqual(receipt);
    expect(receiptJsonSchema.safeParse({ ...json, seq: undefined }).success).toBe(false);
  });
});

describe('image frames', () => {
  const id = `0x${'ab'.repeat(32)}`;
  const image = (data: string) => ({
    type: 'image-result',
    jobId: id,
    images: [{ data, imageHash: id, trajectoryRoot: id, latents: 'AAAAAA==' }],
    timings: { totalMs: 1 },
    receipt: {
      jobId: id,
      gateway: `0x${'11'.repeat(20)}`,
      payer: `0x${'22'.repeat(20)}`,
      worker: `0x${'33'.repeat(20)}`,
      modelId: id,
      requestHash: id,
      outputHash: id,
      inputUnits: '1',
      outputUnits: '1',
      fee: '1',
      completedAt: '1',
      confidential: false,
      seq: '1',
    },
    signature: '0x00',
  });
  test('image data and latents are standard padded base64, checked without a backtracking regex', () => {
    for (const ok of [
      '',
      'iVBORw0K',
      'iVBORw0=',
      'iVBORw==',
      Buffer.alloc(3 * 400_000, 7).toString('base64'),
    ])
      expect(workerToGateway.safeParse(image(ok)).success).toBe(true);
    for (const bad of ['iVBORw0', 'iVBO*w0K', 'iVB=Rw0K', 'iVBORw===', 'iVBOR w0K'])
      expect(workerToGateway.safeParse(image(bad)).success, bad).toBe(false);
  });
});
