import { computeModelId } from '@aipg/core';
import { type LlamaEngine, MODEL_PRESETS, type TokenDelta } from '@aipg/inference';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { createOpenAiBackend, type OpenAiBackend } from '../../src/backends/openai/index.ts';
import { type FakeOpenAi, startFakeOpenAi } from '../fixtures/fake-openai.ts';
import { expectDeltasMatch, greedy, never, seeded, tinyEngine, user } from './helpers.ts';

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
  test('finds the model and checks the server reports token ids', () => {
    expect(backend.kind).toBe('openai');
    expect(backend.model).toEqual({ name: NAME, weightsHash: HASH, modelId: computeModelId(NAME, HASH) });
    expect(fake.requests[0]).toMatchObject({ path: '/v1/completions', body: { return_token_ids: true } });
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
  });

  test('an unreachable server is a retryable BACKEND_UNREACHABLE', async () => {
    const b = createOpenAiBackend({ name: NAME, weightsHash: HASH, url: 'http://127.0.0.1:9/v1' });
    await expect(b.load()).rejects.toMatchObject({ code: 'BACKEND_UNREACHABLE', retryable: true });
  });
});

describe('generate', () => {
  const chatIds = () => engine.chatPromptTokenIds(user('hi').messages);

  test('chat without streaming: the server template’s prompt ids and every sampled id', async () => {
    const r = await backend.generate({ input: user('hi'), params: greedy(), signal: never() });
    const direct = await engine.generate({ promptTokenIds: chatIds(), params: greedy() });
    expect(r.promptTokenIds).toEqual(chatIds());
    expect(r.outputTokenIds).toEqual(direct.outputTokenIds);
    expect(r.outputTokenIds.at(-1)).toBe(engine.eosTokenId);
    expect(r.text).toBe(direct.text);
    expect(r.finishReason).toBe('stop');
    expect(fake.requests.at(-1)).toMatchObject({
      path: '/v1/chat/completions',
      body: { stream: false, max_tokens: 40, temperature: 0, top_p: 1, return_token_ids: true },
    });
  });

  test('chat streaming: SSE deltas concatenate to the text and the ids', async () => {
    const deltas: TokenDelta[] = [];
    const r = await backend.generate({
      input: user('What does it cost?'),
      params: seeded(18, 40),
      signal: never(),
      onToken: (d) => deltas.push(d),
    });
    expect(r.text).toContain('€');
    expectDeltasMatch(r, deltas);
    expect(r.promptTokenIds).toEqual(engine.chatPromptTokenIds(user('What does it cost?').messages));
    expect(fake.requests.at(-1)!.body).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  test('completions, streamed and not, agree', async () => {
    const plain = await backend.generate({
      input: { prompt: 'the node' },
      params: seeded(3),
      signal: never(),
    });
    const deltas: TokenDelta[] = [];
    const streamed = await backend.generate({
      input: { prompt: 'the node' },
      params: seeded(3),
      signal: never(),
      onToken: (d) => deltas.push(d),
    });
    expect(plain.promptTokenIds).toEqual(engine.promptTokenIds('the node'));
    expect(streamed).toMatchObject({
      text: plain.text,
      promptTokenIds: plain.promptTokenIds,
      outputTokenIds: plain.outputTokenIds,
      finishReason: plain.finishReason,
    });
    expectDeltasMatch(streamed, deltas);
  });

  test('stop strings: text cut before, tokens kept; length at max tokens', async () => {
    const s = await backend.generate({ input: user('hi'), params: greedy(40, [' to']), signal: never() });
    expect(s.finishReason).toBe('stop');
    expect(engine.detokenize(s.outputTokenIds)).toBe(`${s.text} to`);
    const l = await backend.generate({ input: user('hi'), params: greedy(2), signal: never() });
    expect(l.finishReason).toBe('length');
    expect(l.outputTokenIds).toHaveLength(2);
  });

  test('abort mid-stream rejects with INFERENCE_ABORTED', async () => {
    const controller = new AbortController();
    const job = backend.generate({
      input: user('hi'),
      params: seeded(2, 300),
      signal: controller.signal,
      onToken: () => controller.abort(),
    });
    await expect(job).rejects.toMatchObject({ code: 'INFERENCE_ABORTED' });
  });

  test('an error event or a dropped connection mid-stream is a retryable BACKEND_STREAM_ERROR', async () => {
    for (const kind of ['error-event', 'disconnect'] as const) {
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

  test('an HTTP error is BACKEND_HTTP_ERROR with the server message', async () => {
    await expect(
      backend.generate({ input: user('hi'), params: greedy(100_000), signal: never() }),
    ).rejects.toMatchObject({
      code: 'BACKEND_HTTP_ERROR',
      details: expect.stringContaining('maximum context length'),
    });
  });
});
