import { CANONICAL_SAMPLER, computeModelId } from '@aipg/core';
import { type LlamaEngine, MODEL_PRESETS } from '@aipg/inference';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createBackend,
  createLlamaCppBackend,
  type LlamaCppBackend,
} from '../../src/backends/llama-cpp/index.ts';
import type { TokenDelta } from '../../src/backends/types.ts';
import type { WorkerModelOptions } from '../../src/config/options.ts';
import { expectDeltasMatch, greedy, job, render, seeded, tinyEngine, tinyModel, user } from './helpers.ts';

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
    expect(backend.sampler).toBe(CANONICAL_SAMPLER);
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
    await expect(missing.generate(job(reference, user('hi'), greedy()))).rejects.toMatchObject({
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
  test("chat without streaming: runs the gateway's prompt ids, end token", async () => {
    const r = await backend.generate(job(reference, user('hi'), greedy()));
    const ids = reference.chatPromptTokenIds([{ role: 'user', content: 'hi' }]);
    expect(ids[0]).toBe(reference.bosTokenId); // the gateway's ids start with BOS; no second one is added
    expect(r.promptTokenIds).toEqual(ids);
    expect(r.finishReason).toBe('stop');
    expect(r.outputTokenIds.at(-1)).toBe(reference.eosTokenId);
    expect(r.timings.totalMs).toBeGreaterThanOrEqual(r.timings.ttftMs);
    expect(r).not.toHaveProperty('text');
  });

  test('the prompt ids run are the ones given, whatever the input says', async () => {
    // A gateway's ids for another prompt: the backend runs those, never its own tokenization.
    const other = reference.promptTokenIds('the chain of nodes');
    const r = await backend.generate(job(reference, user('hi'), greedy(12), { promptTokenIds: other }));
    const direct = await reference.generate({ promptTokenIds: other, params: greedy(12) });
    expect(r.promptTokenIds).toEqual(other);
    expect(r.outputTokenIds).toEqual(direct.outputTokenIds);
  });

  test('ids outside the vocabulary are refused before anything runs (INVALID_TOKEN)', async () => {
    const bad = [reference.bosTokenId, reference.vocabSize + 5];
    await expect(
      backend.generate(job(reference, user('hi'), greedy(), { promptTokenIds: bad })),
    ).rejects.toMatchObject({ code: 'INVALID_TOKEN' });
  });

  test('streaming: deltas concatenate to the ids', async () => {
    const deltas: TokenDelta[] = [];
    const r = await backend.generate(
      job(reference, user('Tell me a story'), seeded(4), { onToken: (d) => deltas.push(d) }),
    );
    expectDeltasMatch(r, deltas);
    expect(deltas.every((d) => Object.keys(d).join() === 'tokenIds')).toBe(true);
  });

  test('completion prompts, stop strings and length', async () => {
    const c = await backend.generate(job(reference, { prompt: 'the node' }, greedy(2)));
    expect(c.promptTokenIds).toEqual(reference.promptTokenIds('the node'));
    expect(c.finishReason).toBe('length');
    expect(c.outputTokenIds).toHaveLength(2);
    const s = await backend.generate(job(reference, user('hi'), greedy(40, [' to'])));
    expect(s.finishReason).toBe('stop');
    const text = render(reference, s.outputTokenIds);
    expect(text.endsWith(' to')).toBe(true);
    expect(text.indexOf(' to')).toBe(text.length - 3);
  });

  test('abort mid-stream rejects with INFERENCE_ABORTED', async () => {
    const controller = new AbortController();
    const run = backend.generate(
      job(
        reference,
        user('hi'),
        { ...seeded(1, 300), stop: ['never-appears'] },
        { signal: controller.signal, onToken: () => controller.abort() },
      ),
    );
    await expect(run).rejects.toMatchObject({ code: 'INFERENCE_ABORTED' });
  });
});
