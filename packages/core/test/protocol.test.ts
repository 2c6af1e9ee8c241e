import { describe, expect, test } from 'vitest';
import {
  gatewayToWorker,
  MAX_SCORE_ENTRIES,
  MAX_SCORE_TOKENS,
  MAX_SCORE_TOP_K,
  workerToGateway,
} from '../src/index.ts';

const id = `0x${'ab'.repeat(32)}`;
const score = (extra: Record<string, unknown> = {}) => ({
  type: 'score',
  jobId: id,
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
    };
    expect(workerToGateway.parse(result)).toEqual(result);
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
