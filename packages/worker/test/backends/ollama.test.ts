import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeModelId } from '@aipg/core';
import { type LlamaEngine, MODEL_PRESETS } from '@aipg/inference';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { createOllamaBackend, type OllamaBackend } from '../../src/backends/ollama/index.ts';
import type { TokenDelta } from '../../src/backends/types.ts';
import { type FakeOllama, startFakeOllama } from '../fixtures/fake-ollama.ts';
import { expectDeltasMatch, greedy, job, render, seeded, tinyEngine, tinyModel, user } from './helpers.ts';

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
    expect(backend.sampler).toBe('ollama');
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
  test("without streaming: raw prompt text, the gateway's prompt ids, ids from logprobs plus the end token", async () => {
    const ids = engine.chatPromptTokenIds(user('hi').messages);
    const r = await backend.generate(job(engine, user('hi'), greedy()));
    const direct = await engine.generate({ promptTokenIds: ids, params: greedy() });
    expect(r.promptTokenIds).toEqual(ids);
    expect(r.outputTokenIds).toEqual(direct.outputTokenIds);
    expect(r.outputTokenIds.at(-1)).toBe(engine.eosTokenId);
    expect(r.finishReason).toBe('stop');
    const sent = fake.generateRequests.at(-1)!;
    // The gateway's ids start with BOS; the text goes without it (Ollama adds BOS to a raw prompt).
    expect(ids[0]).toBe(engine.bosTokenId);
    expect(sent).toMatchObject({ raw: true, logprobs: true, prompt: '<|user|>hi</s><|assistant|>' });
    expect(sent.options).toMatchObject({
      num_predict: 40,
      temperature: 0,
      top_p: 1,
      top_k: 0,
      repeat_penalty: 1,
    });
  });

  test("refuses, before asking Ollama, a prompt whose local tokenization is not the gateway's ids (retryable)", async () => {
    const before = fake.generateRequests.length;
    // The gateway's ids for another text than the input renders to.
    const other = engine.chatPromptTokenIds(user('hello there').messages);
    await expect(
      backend.generate(job(engine, user('hi'), greedy(), { promptTokenIds: other })),
    ).rejects.toMatchObject({
      code: 'BACKEND_PROMPT_MISMATCH',
      retryable: true,
      details: expect.stringContaining('first difference at position'),
    });
    // Same text, one id off (a gateway that tokenized differently): refused too.
    const ids = engine.chatPromptTokenIds(user('hi').messages);
    const off = [...ids.slice(0, -1), (ids.at(-1)! + 1) % engine.vocabSize];
    await expect(
      backend.generate(job(engine, user('hi'), greedy(), { promptTokenIds: off })),
    ).rejects.toMatchObject({ code: 'BACKEND_PROMPT_MISMATCH', retryable: true });
    // Without BOS (Ollama would add one): refused.
    await expect(
      backend.generate(job(engine, user('hi'), greedy(), { promptTokenIds: ids.slice(1) })),
    ).rejects.toMatchObject({ code: 'BACKEND_PROMPT_MISMATCH' });
    expect(fake.generateRequests.length).toBe(before);
  });

  test('ids outside the vocabulary are INVALID_TOKEN', async () => {
    await expect(
      backend.generate(
        job(engine, user('hi'), greedy(), { promptTokenIds: [engine.bosTokenId, engine.vocabSize] }),
      ),
    ).rejects.toMatchObject({ code: 'INVALID_TOKEN' });
  });

  test('streaming: deltas concatenate, multi-byte characters included', async () => {
    const deltas: TokenDelta[] = [];
    // seed 18 samples "5€" on this prompt: the euro sign is three byte tokens
    const params = { ...seeded(18, 40) };
    const r = await backend.generate(
      job(engine, user('What does it cost?'), params, { onToken: (d) => deltas.push(d) }),
    );
    expect(render(engine, r.outputTokenIds)).toContain('€');
    expectDeltasMatch(r, deltas);
    const direct = await engine.generate({
      promptTokenIds: r.promptTokenIds,
      params,
    });
    expect(r.outputTokenIds).toEqual(direct.outputTokenIds);
  });

  test('stop strings are enforced here, with their tokens kept', async () => {
    const deltas: TokenDelta[] = [];
    const r = await backend.generate(
      job(engine, user('hi'), greedy(40, [' to']), { onToken: (d) => deltas.push(d) }),
    );
    expect(fake.generateRequests.at(-1)!.options).not.toHaveProperty('stop');
    expect(r.finishReason).toBe('stop');
    const text = render(engine, r.outputTokenIds);
    expect(text.endsWith(' to')).toBe(true);
    expect(text.indexOf(' to')).toBe(text.length - 3);
    expectDeltasMatch(r, deltas);
  });

  test('completion prompts and length finishes', async () => {
    const r = await backend.generate(job(engine, { prompt: 'the node' }, greedy(3)));
    expect(r.promptTokenIds).toEqual(engine.promptTokenIds('the node'));
    expect(r.finishReason).toBe('length');
    expect(r.outputTokenIds).toHaveLength(3);
  });

  test('abort mid-stream rejects with INFERENCE_ABORTED', async () => {
    const controller = new AbortController();
    const run = backend.generate(
      job(engine, user('hi'), seeded(2, 300), {
        signal: controller.signal,
        onToken: () => controller.abort(new Error('client went away')),
      }),
    );
    await expect(run).rejects.toMatchObject({ code: 'INFERENCE_ABORTED' });
  });

  test('an error frame or a dropped connection mid-stream is a retryable BACKEND_STREAM_ERROR', async () => {
    for (const kind of ['error-frame', 'disconnect'] as const) {
      fake.fault = { kind, afterTokens: 2 };
      const tokens: TokenDelta[] = [];
      const run = backend.generate(
        job(engine, user('Tell me a story about the sea'), seeded(9, 100), {
          onToken: (d) => tokens.push(d),
        }),
      );
      await expect(run).rejects.toMatchObject({ code: 'BACKEND_STREAM_ERROR', retryable: true });
      expect(tokens.length).toBeGreaterThan(0);
    }
  });
});
