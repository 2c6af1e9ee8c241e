import { computeModelId } from '@aipg/core';
import { type LlamaEngine, MODEL_PRESETS, type TokenDelta } from '@aipg/inference';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createBackend,
  createLlamaCppBackend,
  type LlamaCppBackend,
} from '../../src/backends/llama-cpp/index.ts';
import type { WorkerModelOptions } from '../../src/config/options.ts';
import { expectDeltasMatch, greedy, never, seeded, tinyEngine, tinyModel, user } from './helpers.ts';

const NAME = 'aipg-tiny-llama';
let backend: LlamaCppBackend;
let reference: LlamaEngine;

beforeAll(async () => {
  const { path } = await tinyModel();
  backend = createLlamaCppBackend({
    name: NAME,
    gguf: path,
    threads: 1,
    contextSize: 512,
    maxConcurrency: 2,
  });
  await backend.load();
  reference = await tinyEngine();
});
afterAll(async () => {
  await backend?.close();
  await reference?.close();
});

describe('load', () => {
  test('hashes the GGUF into the model identity; load is idempotent', async () => {
    const hash = MODEL_PRESETS.tiny.weightsHash;
    expect(backend.kind).toBe('llama-cpp');
    expect(backend.model).toEqual({ name: NAME, weightsHash: hash, modelId: computeModelId(NAME, hash) });
    await backend.load();
  });

  test('a missing file, a wrong hash and use before load are clear errors', async () => {
    const missing = createLlamaCppBackend({ name: NAME, gguf: '/nonexistent/model.gguf', threads: 1 });
    await expect(missing.load()).rejects.toMatchObject({
      code: 'MODEL_FILE',
      details: '/nonexistent/model.gguf',
    });
    expect(() => missing.model).toThrow(expect.objectContaining({ code: 'BACKEND_NOT_LOADED' }));
    await expect(
      missing.generate({ input: user('hi'), params: greedy(), signal: never() }),
    ).rejects.toMatchObject({
      code: 'BACKEND_NOT_LOADED',
    });
    const { path } = await tinyModel();
    const wrong = createLlamaCppBackend({
      name: NAME,
      gguf: path,
      threads: 1,
      weightsHash: `0x${'ab'.repeat(32)}`,
    });
    await expect(wrong.load()).rejects.toMatchObject({ code: 'BACKEND_WEIGHTS_MISMATCH' });
  });

  test('createBackend builds it from the worker options', async () => {
    const { path } = await tinyModel();
    const options = {
      backend: 'llama-cpp',
      name: NAME,
      weightsHash: undefined,
      gguf: path,
      url: undefined,
      backendModel: undefined,
      apiKey: undefined,
      maxConcurrency: 1,
      threads: 1,
      gpuLayers: undefined,
      contextSize: 256,
    } satisfies WorkerModelOptions;
    const b = createBackend(options, { logger: pino({ level: 'silent' }) });
    await b.load();
    expect(b.model.weightsHash).toBe(MODEL_PRESETS.tiny.weightsHash);
    await b.close();
    expect(() =>
      createBackend({ ...options, gguf: undefined }, { logger: pino({ level: 'silent' }) }),
    ).toThrow();
  });
});

describe('generate', () => {
  test('chat without streaming: canonical prompt ids, end token, text', async () => {
    const r = await backend.generate({ input: user('hi'), params: greedy(), signal: never() });
    expect(r.promptTokenIds).toEqual(reference.chatPromptTokenIds([{ role: 'user', content: 'hi' }]));
    expect(r.finishReason).toBe('stop');
    expect(r.outputTokenIds.at(-1)).toBe(reference.eosTokenId);
    expect(r.text).toBe(reference.detokenize(r.outputTokenIds));
    expect(r.timings.totalMs).toBeGreaterThanOrEqual(r.timings.ttftMs);
  });

  test('streaming: deltas concatenate to the text and the ids', async () => {
    const deltas: TokenDelta[] = [];
    const r = await backend.generate({
      input: user('Tell me a story'),
      params: seeded(4),
      signal: never(),
      onToken: (d) => deltas.push(d),
    });
    expectDeltasMatch(r, deltas);
  });

  test('completion prompts, stop strings and length', async () => {
    const c = await backend.generate({ input: { prompt: 'the node' }, params: greedy(2), signal: never() });
    expect(c.promptTokenIds).toEqual(reference.promptTokenIds('the node'));
    expect(c.finishReason).toBe('length');
    expect(c.outputTokenIds).toHaveLength(2);
    const s = await backend.generate({ input: user('hi'), params: greedy(40, [' to']), signal: never() });
    expect(s.finishReason).toBe('stop');
    expect(reference.detokenize(s.outputTokenIds)).toBe(`${s.text} to`);
  });

  test('abort mid-stream rejects with INFERENCE_ABORTED', async () => {
    const controller = new AbortController();
    const job = backend.generate({
      input: user('hi'),
      params: { ...seeded(1, 300), stop: ['never-appears'] },
      signal: controller.signal,
      onToken: () => controller.abort(),
    });
    await expect(job).rejects.toMatchObject({ code: 'INFERENCE_ABORTED' });
  });
});
