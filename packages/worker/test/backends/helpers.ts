import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SamplingParams } from '@aipg/core';
import { createLlamaEngine, ensureModel, type LlamaEngine, type TokenDelta } from '@aipg/inference';
import { expect } from 'vitest';
import type { GenerateResult } from '../../src/backends/types.ts';

/** The tiny generated model (written once per machine to the OS temp dir, hash-checked). */
export const tinyModel = () => ensureModel({ dir: join(tmpdir(), 'aipg-test-models'), preset: 'tiny' });

/** The real engine the fake servers run on: one thread, two sequences. */
export async function tinyEngine(): Promise<LlamaEngine> {
  const { path } = await tinyModel();
  return createLlamaEngine({ modelPath: path, threads: 1, contextSize: 512, maxConcurrency: 2 });
}

export const greedy = (maxTokens = 40, stop: string[] = []): SamplingParams => ({
  maxTokens,
  temperature: 0,
  topP: 1,
  seed: null,
  stop,
});

export const seeded = (seed: number, maxTokens = 60): SamplingParams => ({
  maxTokens,
  temperature: 1,
  topP: 1,
  seed,
  stop: [],
});

export const user = (content: string) => ({ messages: [{ role: 'user' as const, content }] });

/** Deltas must rebuild the final text and the output ids exactly. */
export function expectDeltasMatch(result: GenerateResult, deltas: TokenDelta[]) {
  expect(deltas.length).toBeGreaterThan(0);
  expect(deltas.map((d) => d.text).join('')).toBe(result.text);
  expect(deltas.flatMap((d) => d.tokenIds)).toEqual(result.outputTokenIds);
}

export const never = () => new AbortController().signal;
