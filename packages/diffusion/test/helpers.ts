import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ImageParams, imagePromptTokenIds } from '@aipg/core';
import { afterAll, beforeAll } from 'vitest';
import { createDiffusionPipeline, type DiffusionPipeline } from '../src/index.ts';

/** A fresh models directory for the file's tests, removed after them. */
export function useTempDir(prefix: string): () => string {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return () => dir;
}

/** A pipeline over the `tiny` preset generated into a temporary directory, closed after the file. */
export function usePipeline(threads = 1): () => DiffusionPipeline {
  const dir = useTempDir('aipg-diffusion-');
  let pipeline: DiffusionPipeline | undefined;
  beforeAll(async () => {
    pipeline = await createDiffusionPipeline({ preset: 'tiny', dir: dir(), threads });
  });
  afterAll(async () => {
    await pipeline?.close();
  });
  return () => pipeline!;
}

export const params = (over: Partial<ImageParams> = {}): ImageParams => ({
  width: 256,
  height: 256,
  steps: 8,
  guidance: 5,
  seed: 1234,
  n: 1,
  scheduler: 'ddim',
  format: 'png',
  ...over,
});

export const request = (over: Partial<ImageParams> = {}, prompt = 'a lighthouse at dusk', negative = '') => ({
  promptTokenIds: imagePromptTokenIds(prompt),
  negativeTokenIds: imagePromptTokenIds(negative),
  params: params(over),
});

export const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;
