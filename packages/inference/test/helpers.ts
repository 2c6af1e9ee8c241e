import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SamplingParams } from '@aipg/core';
import { type EnsureModelReturnType, ensureModel } from '../src/index.ts';

/** The tiny model, generated once per machine into the OS temp dir (ensureModel checks its hash). */
export function tinyModel(): Promise<EnsureModelReturnType> {
  return ensureModel({ dir: join(tmpdir(), 'aipg-test-models'), preset: 'tiny' });
}

export const greedy = (maxTokens = 40, stop: string[] = []): SamplingParams => ({
  maxTokens,
  temperature: 0,
  topP: 1,
  seed: null,
  stop,
});

export const seeded = (seed: number, maxTokens = 40, stop: string[] = []): SamplingParams => ({
  maxTokens,
  temperature: 1,
  topP: 0.95,
  seed,
  stop,
});
