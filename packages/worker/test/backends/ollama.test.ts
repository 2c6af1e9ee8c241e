import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeModelId } from '@aipg/core';
import { type LlamaEngine, MODEL_PRESETS, type TokenDelta } from '@aipg/inference';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { createOllamaBackend, type OllamaBackend } from '../../src/backends/ollama/index.ts';
import { type FakeOllama, startFakeOllama } from '../fixtures/fake-ollama.ts';
import { expectDeltasMatch, greedy, never, seeded, tinyEngine, tinyModel, user } from './helpers.ts';

const NAME = 'aipg-tiny-llama';
const HASH = MODEL_PRESETS.tiny.weightsHash;
let engine: LlamaEngine;
let fake: FakeOllama;
let backend: OllamaBackend;
let dir: string;

beforeAll(async () => {
  engine = await tinyEngine();
  // Ollama keeps models content-addressed: …/blobs/sha256-<hex>.
  dir = await mkdtemp(join(tmpdir(), 'aipg-ollama-'));
  await mkdir(join(dir, 'blobs'));
  const blobPath = join(dir, 'blobs', `sha256-${HASH.slice(2)}`);
  await copyFile((await tinyModel()).path, blobPath);
  fake = await startFakeOllama({ engine, model: `${NAME}:latest`, blobPath });
  backend = createOllamaBackend({ name: NAME, weightsHash: HASH, url: fake.url });
  await backend.load();
});
afterAll(async () => {
  await backend?.close();
  await fake?.close();
  await engine?.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  fake.fault = undefined;
});

describe('load', () => {
  test('checks the blob digest against the registered hash', () => {
    expect(backend.kind).toBe('ollama');
    expect(backend.model).toEqual({ name: NAME, weightsHash: HASH, modelId: computeModelId(NAME, HASH) });
  });

  test('a model Ollama does not have is BACKEND_MODEL_NOT_FOUND', async () => {
    const b = createOllamaBackend({ name: 'missing-model', weightsHash: HASH, url: fake.url });
    await expect(b.load()).rejects.toMatchObject({
      code: 'BACKEND_MODEL_NOT_FOUND',
      details: expect.stringContaining(`${NAME}:latest`),
    });
  });

  test('other weights are BACKEND_WEIGHTS_MISMATCH', async () => {
    const b = createOllamaBackend({ name: NAME, weightsHash: `0x${'12'.repeat(32)}`, url: fake.url });
    await expect(b.load()).rejects.toMatchObject({ code: 'BACKEND_WEIGHTS_MISMATCH' });
  });

  test('an Ollama without logprobs is BACKEND_NO_TOKEN_IDS', async () => {
    fake.fault = { kind: 'no-logprobs' };
    const b = createOllamaBackend({ name: NAME, weightsHash: HASH, url: fake.url });
    await expect(b.load()).rejects.toMatchObject({ code: 'BACKEND_NO_TOKEN_IDS' });
  });

  test('an unreachable server is a retryable BACKEND_UNREACHABLE', async () => {
    const b = createOllamaBackend({ name: NAME, weightsHash: HASH, url: 'http://127.0.0.1:9' });
    await expect(b.load()).rejects.toMatchObject({ code: 'BACKEND_UNREACHABLE', retryable: true });
  });
});

describe('generate', () => {
  test('without streaming: raw prompt, local prompt ids, ids from logprobs plus the end token', async () => {
    const r = await backend.generate({ input: user('hi'), params: greedy(), signal: never() });
    const direct = await engine.generate({
      promptTokenIds: engine.chatPromptTokenIds(user('hi').messages),
      params: greedy(),
    });
    expect(r.promptTokenIds).toEqual(engine.chatPromptTokenIds(user('hi').messages));
    expect(r.outputTokenIds).toEqual(direct.outputTokenIds);
    expect(r.outputTokenIds.at(-1)).toBe(engine.eosTokenId);
    expect(r.text).toBe(direct.text);
    expect(r.finishReason).toBe('stop');
    const sent = fake.generateRequests.at(-1)!;
    expect(sent).toMatchObject({ raw: true, logprobs: true, prompt: '<|user|>hi</s><|assistant|>' });
    expect(sent.options).toMatchObject({
      num_predict: 40,
      temperature: 0,
      top_p: 1,
      top_k: 0,
      repeat_penalty: 1,
    });
  });

  test('streaming: deltas concatenate, multi-byte characters included', async () => {
    const deltas: TokenDelta[] = [];
    // seed 18 samples "5€" on this prompt: the euro sign is three byte tokens
    const params = { ...seeded(18, 40) };
    const r = await backend.generate({
      input: user('What does it cost?'),
      params,
      signal: never(),
      onToken: (d) => deltas.push(d),
    });
    expect(r.text).toContain('€');
    expectDeltasMatch(r, deltas);
    const direct = await engine.generate({
      promptTokenIds: r.promptTokenIds,
      params,
    });
    expect(r.outputTokenIds).toEqual(direct.outputTokenIds);
  });

  test('stop strings are enforced here, with their tokens kept', async () => {
    const deltas: TokenDelta[] = [];
    const r = await backend.generate({
      input: user('hi'),
      params: greedy(40, [' to']),
      signal: never(),
      onToken: (d) => deltas.push(d),
    });
    expect(fake.generateRequests.at(-1)!.options).not.toHaveProperty('stop');
    expect(r.finishReason).toBe('stop');
    expect(engine.detokenize(r.outputTokenIds)).toBe(`${r.text} to`);
    expectDeltasMatch(r, deltas);
  });

  test('completion prompts and length finishes', async () => {
    const r = await backend.generate({ input: { prompt: 'the node' }, params: greedy(3), signal: never() });
    expect(r.promptTokenIds).toEqual(engine.promptTokenIds('the node'));
    expect(r.finishReason).toBe('length');
    expect(r.outputTokenIds).toHaveLength(3);
  });

  test('abort mid-stream rejects with INFERENCE_ABORTED', async () => {
    const controller = new AbortController();
    const job = backend.generate({
      input: user('hi'),
      params: seeded(2, 300),
      signal: controller.signal,
      onToken: () => controller.abort(new Error('client went away')),
    });
    await expect(job).rejects.toMatchObject({ code: 'INFERENCE_ABORTED' });
  });

  test('an error frame or a dropped connection mid-stream is a retryable BACKEND_STREAM_ERROR', async () => {
    for (const kind of ['error-frame', 'disconnect'] as const) {
      fake.fault = { kind, afterTokens: 2 };
      const tokens: TokenDelta[] = [];
      const job = backend.generate({
        input: user('Tell me a story about the sea'),
        params: seeded(9, 100),
        signal: never(),
        onToken: (d) => tokens.push(d),
      });
      await expect(job).rejects.toMatchObject({ code: 'BACKEND_STREAM_ERROR', retryable: true });
      expect(tokens.length).toBeGreaterThan(0);
    }
  });
});
