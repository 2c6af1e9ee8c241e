import { computeModelId } from '@aipg/core';
import { type LlamaEngine, MODEL_PRESETS } from '@aipg/inference';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { createOpenAiBackend, type OpenAiBackend } from '../../src/backends/openai/index.ts';
import type { TokenDelta } from '../../src/backends/types.ts';
import { type FakeOpenAi, startFakeOpenAi } from '../fixtures/fake-openai.ts';
import { expectDeltasMatch, greedy, job, render, seeded, tinyEngine, user } from './helpers.ts';

const NAME = 'aipg-tiny-llama';
const HASH = MODEL_PRESETS.tiny.weightsHash;
let engine: LlamaEngine;
let fake: FakeOpenAi;
let backend: OpenAiBackend;

beforeAll(async () => {
  engine = await tinyEngine();
  fake = await startFakeOpenAi({ engine, model: 'aipg/tiny' });
  backend = createOpenAiBackend({
    name: NAME,
    weightsHash: HASH,
    url: `${fake.url}/v1`,
    servedModel: 'aipg/tiny',
  });
  await backend.load();
});
afterAll(async () => {
  await backend?.close();
  await fake?.close();
  await engine?.close();
});
beforeEach(() => {
  fake.fault = undefined;
});

describe('load', () => {
  test('finds the model and checks the server reports token ids and runs a token-id prompt as given', () => {
    expect(backend.kind).toBe('openai');
    expect(backend.sampler).toBe('vllm');
    expect(backend.model).toEqual({ name: NAME, weightsHash: HASH, modelId: computeModelId(NAME, HASH) });
    expect(fake.requests[0]).toMatchObject({
      path: '/v1/completions',
      body: { prompt: [0], return_token_ids: true },
    });
  });

  test('a model the server does not serve is BACKEND_MODEL_NOT_FOUND', async () => {
    const b = createOpenAiBackend({
      name: NAME,
      weightsHash: HASH,
      url: `${fake.url}/v1`,
      servedModel: 'other',
    });
    await expect(b.load()).rejects.toMatchObject({
      code: 'BACKEND_MODEL_NOT_FOUND',
      details: expect.stringContaining('aipg/tiny'),
    });
  });

  test('a server that cannot report token ids is BACKEND_NO_TOKEN_IDS', async () => {
    fake.fault = { kind: 'no-token-ids' };
    const b = createOpenAiBackend({
      name: NAME,
      weightsHash: HASH,
      url: `${fake.url}/v1`,
      servedModel: 'aipg/tiny',
    });
    await expect(b.load()).rejects.toMatchObject({ code: 'BACKEND_NO_TOKEN_IDS' });
    // One that tokenizes a list of ids as text would not run the gateway's ids.
    fake.fault = { kind: 'ids-as-text' };
    await expect(b.load()).rejects.toMatchObject({
      code: 'BACKEND_NO_TOKEN_IDS',
      details: expect.stringContaining('came back as prompt_token_ids'),
    });
  });

  test('an unreachable server is a retryable BACKEND_UNREACHABLE', async () => {
    const b = createOpenAiBackend({ name: NAME, weightsHash: HASH, url: 'http://127.0.0.1:9/v1' });
    await expect(b.load()).rejects.toMatchObject({ code: 'BACKEND_UNREACHABLE', retryable: true });
  });
});

describe('generate', () => {
  const chatIds = () => engine.chatPromptTokenIds(user('hi').messages);

  test("chat without streaming: the gateway's ids sent as the prompt of a completion, every sampled id", async () => {
    const r = await backend.generate(job(engine, user('hi'), greedy()));
    const direct = await engine.generate({ promptTokenIds: chatIds(), params: greedy() });
    expect(r.promptTokenIds).toEqual(chatIds());
    expect(r.outputTokenIds).toEqual(direct.outputTokenIds);
    expect(r.outputTokenIds.at(-1)).toBe(engine.eosTokenId);
    expect(r.finishReason).toBe('stop');
    // No chat endpoint, no server template: the ids (BOS first, once) are the prompt.
    expect(chatIds()[0]).toBe(engine.bosTokenId);
    expect(fake.requests.at(-1)).toMatchObject({
      path: '/v1/completions',
      body: {
        prompt: chatIds(),
        stream: false,
        max_tokens: 40,
        temperature: 0,
        top_p: 1,
        return_token_ids: true,
      },
    });
    expect(fake.requests.at(-1)!.body).not.toHaveProperty('messages');
  });

  test('chat streaming: SSE deltas concatenate to the ids', async () => {
    const deltas: TokenDelta[] = [];
    const r = await backend.generate(
      job(engine, user('What does it cost?'), seeded(18, 40), { onToken: (d) => deltas.push(d) }),
    );
    expect(render(engine, r.outputTokenIds)).toContain('€');
    expectDeltasMatch(r, deltas);
    expect(r.promptTokenIds).toEqual(engine.chatPromptTokenIds(user('What does it cost?').messages));
    expect(fake.requests.at(-1)!.body).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  test('completions, streamed and not, agree', async () => {
    const plain = await backend.generate(job(engine, { prompt: 'the node' }, seeded(3)));
    const deltas: TokenDelta[] = [];
    const streamed = await backend.generate(
      job(engine, { prompt: 'the node' }, seeded(3), { onToken: (d) => deltas.push(d) }),
    );
    expect(plain.promptTokenIds).toEqual(engine.promptTokenIds('the node'));
    expect(streamed).toMatchObject({
      promptTokenIds: plain.promptTokenIds,
      outputTokenIds: plain.outputTokenIds,
      finishReason: plain.finishReason,
    });
    expectDeltasMatch(streamed, deltas);
  });

  test('the ids run are the ones given, whatever the input says', async () => {
    const other = engine.promptTokenIds('the chain of nodes');
    const r = await backend.generate(job(engine, user('hi'), greedy(12), { promptTokenIds: other }));
    const direct = await engine.generate({ promptTokenIds: other, params: greedy(12) });
    expect(r.promptTokenIds).toEqual(other);
    expect(r.outputTokenIds).toEqual(direct.outputTokenIds);
  });

  test('a server reporting other prompt ids than sent is BACKEND_PROMPT_MISMATCH, before any token', async () => {
    fake.fault = { kind: 'ids-as-text' };
    const tokens: TokenDelta[] = [];
    await expect(
      backend.generate(job(engine, { prompt: 'the node' }, greedy(8), { onToken: (d) => tokens.push(d) })),
    ).rejects.toMatchObject({ code: 'BACKEND_PROMPT_MISMATCH', retryable: true });
    expect(tokens).toEqual([]);
    await expect(backend.generate(job(engine, { prompt: 'the node' }, greedy(8)))).rejects.toMatchObject({
      code: 'BACKEND_PROMPT_MISMATCH',
    });
  });

  test('stop strings: tokens kept; length at max tokens', async () => {
    const s = await backend.generate(job(engine, user('hi'), greedy(40, [' to'])));
    expect(s.finishReason).toBe('stop');
    const text = render(engine, s.outputTokenIds);
    expect(text.endsWith(' to')).toBe(true);
    expect(text.indexOf(' to')).toBe(text.length - 3);
    const l = await backend.generate(job(engine, user('hi'), greedy(2)));
    expect(l.finishReason).toBe('length');
    expect(l.outputTokenIds).toHaveLength(2);
  });

  test('abort mid-stream rejects with INFERENCE_ABORTED', async () => {
    const controller = new AbortController();
    const run = backend.generate(
      job(engine, user('hi'), seeded(2, 300), {
        signal: controller.signal,
        onToken: () => controller.abort(),
      }),
    );
    await expect(run).rejects.toMatchObject({ code: 'INFERENCE_ABORTED' });
  });

  test('an error event or a dropped connection mid-stream is a retryable BACKEND_STREAM_ERROR', async () => {
    for (const kind of ['error-event', 'disconnect'] as const) {
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

  test('a server that keeps the stream open after [DONE]: the answer completes all the same', async () => {
    fake.fault = { kind: 'open-after-done' };
    const held = await backend.generate(job(engine, user('hi'), greedy(5)));
    fake.fault = undefined;
    const closed = await backend.generate(job(engine, user('hi'), greedy(5)));
    expect(held.outputTokenIds).toEqual(closed.outputTokenIds);
    expect(held.finishReason).toBe(closed.finishReason);
  });

  test('an HTTP error is BACKEND_HTTP_ERROR with the server message', async () => {
    await expect(backend.generate(job(engine, user('hi'), greedy(100_000)))).rejects.toMatchObject({
      code: 'BACKEND_HTTP_ERROR',
      details: expect.stringContaining('maximum context length'),
    });
    // ids outside the vocabulary: vLLM's 400, not retryable
    await expect(
      backend.generate(job(engine, user('hi'), greedy(), { promptTokenIds: [1, engine.vocabSize + 3] })),
    ).rejects.toMatchObject({
      code: 'BACKEND_HTTP_ERROR',
      retryable: false,
      details: expect.stringContaining('out of vocabulary'),
    });
  });
});
