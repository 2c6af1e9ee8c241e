import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeModelId, type SamplingParams } from '@aipg/core';
import { ensureModel } from '@aipg/inference';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type AdversaryEvent,
  type AdversaryKind,
  createAdversaryBackend,
} from '../../src/adversary/index.ts';
import { createLlamaCppBackend, type LlamaCppBackend } from '../../src/backends/llama-cpp/index.ts';
import type { GenerateResult, TokenDelta } from '../../src/backends/types.ts';
import { greedy, never, seeded, tinyModel, user } from './helpers.ts';

// Each lie must pass what the gateway checks on a result (receipt-check.ts): output within
// max_tokens, a `length` finish only at max_tokens, streamed ids = the result's ids; and it must be
// self-consistent: the text is the decoded ids (end tokens decode to nothing). Only re-scoring with
// the registered model can tell.

let tiny: LlamaCppBackend;
let small: LlamaCppBackend;

beforeAll(async () => {
  const t = await tinyModel();
  const s = await ensureModel({ dir: join(tmpdir(), 'aipg-test-models'), preset: 'small' });
  tiny = createLlamaCppBackend({ name: t.name, gguf: t.path, threads: 1, contextSize: 512 });
  small = createLlamaCppBackend({ name: s.name, gguf: s.path, threads: 1, contextSize: 512 });
  await Promise.all([tiny.load(), small.load()]);
});
afterAll(async () => {
  await tiny?.close();
  await small?.close();
});

const prompts = ['hi', 'What does it cost?', 'Tell me about the chain.', 'Who runs the grid?'];

/** Runs one job streaming and checks what the gateway would check, plus text ↔ ids. */
async function run(kind: AdversaryKind, params: SamplingParams, prompt: string) {
  const events: AdversaryEvent[] = [];
  const backend = createAdversaryBackend(tiny, kind, kind === 'substitute' ? small.model : undefined, {
    devnet: true,
    onJob: (e) => events.push(e),
  });
  const deltas: TokenDelta[] = [];
  const r = await backend.generate({
    input: user(prompt),
    params,
    signal: never(),
    onToken: (d) => deltas.push(d),
  });
  expectGatewayAccepts(r, deltas, params);
  expect(events).toHaveLength(1);
  const honest = await tiny.generate({ input: user(prompt), params, signal: never() });
  return { r, honest, event: events[0]! };
}

function expectGatewayAccepts(r: GenerateResult, deltas: TokenDelta[], params: SamplingParams) {
  expect(r.outputTokenIds.length).toBeLessThanOrEqual(params.maxTokens);
  if (r.finishReason === 'length') expect(r.outputTokenIds).toHaveLength(params.maxTokens);
  expect(r.promptTokenIds.length).toBeGreaterThan(0);
  // what streamed is what is claimed
  expect(deltas.flatMap((d) => d.tokenIds)).toEqual(r.outputTokenIds);
  expect(deltas.map((d) => d.text).join('')).toBe(r.text);
  // the text is the decoded ids
  const e = tiny.engine;
  expect(r.text).toBe(e.detokenize(r.outputTokenIds.filter((id) => !e.isEndToken(id))));
}

describe('createAdversaryBackend', () => {
  test('refuses outside a devnet, an unknown kind, and a substitution without a claimed model', () => {
    expect(() => createAdversaryBackend(tiny, 'truncate', undefined, { devnet: false })).toThrow(
      expect.objectContaining({ code: 'ADVERSARY_REFUSED' }),
    );
    expect(() => createAdversaryBackend(tiny, 'truncate', undefined, undefined as never)).toThrow(
      expect.objectContaining({ code: 'ADVERSARY_REFUSED' }),
    );
    expect(() => createAdversaryBackend(tiny, 'lie' as AdversaryKind, undefined, { devnet: true })).toThrow(
      expect.objectContaining({ code: 'ADVERSARY_REFUSED' }),
    );
    expect(() => createAdversaryBackend(tiny, 'substitute', undefined, { devnet: true })).toThrow(
      expect.objectContaining({ code: 'ADVERSARY_REFUSED' }),
    );
  });

  test('substitute: the presets share vocabulary and template, so only the distribution differs', async () => {
    expect(tiny.engine.vocabSize).toBe(small.engine.vocabSize);
    for (const p of prompts) {
      const m = [{ role: 'user' as const, content: p }];
      expect(tiny.engine.chatPromptTokenIds(m)).toEqual(small.engine.chatPromptTokenIds(m));
    }
    const backend = createAdversaryBackend(tiny, 'substitute', small.model, { devnet: true });
    expect(backend.model).toEqual(small.model);
    expect(backend.model.modelId).toBe(computeModelId(small.model.name, small.model.weightsHash));
    expect(backend.adversary).toBe('substitute');
    // claiming the weights it runs is no substitution
    await expect(
      createAdversaryBackend(tiny, 'substitute', tiny.model, { devnet: true }).load(),
    ).rejects.toMatchObject({ code: 'ADVERSARY_REFUSED' });

    let differs = 0;
    for (const p of prompts) {
      const { r } = await run('substitute', greedy(24), p);
      const real = await small.generate({ input: user(p), params: greedy(24), signal: never() });
      expect(r.promptTokenIds).toEqual(real.promptTokenIds);
      if (r.outputTokenIds.join() !== real.outputTokenIds.join()) differs++;
    }
    expect(differs).toBeGreaterThan(0);
  });

  test('truncate: about half of the output, no end token, finish stop', async () => {
    for (const [i, p] of prompts.entries()) {
      const params = i % 2 ? seeded(i + 1, 40) : greedy(40);
      const { r, honest, event } = await run('truncate', params, p);
      const e = tiny.engine;
      const real = honest.outputTokenIds.filter((id) => !e.isEndToken(id));
      expect(r.finishReason).toBe('stop');
      expect(r.promptTokenIds).toEqual(honest.promptTokenIds);
      expect(r.outputTokenIds).toEqual(real.slice(0, Math.max(1, Math.floor(real.length / 2))));
      expect(r.outputTokenIds.some((id) => e.isEndToken(id))).toBe(false);
      expect(event.honest?.outputTokens).toBe(honest.outputTokenIds.length);
      expect(event.claimed.outputTokens).toBe(r.outputTokenIds.length);
    }
  });

  test('fabricate: word pieces and an end token the model never produced', async () => {
    const backend = createAdversaryBackend(tiny, 'fabricate', undefined, { devnet: true });
    const e = tiny.engine;
    for (const p of prompts) {
      const { r, honest, event } = await run('fabricate', greedy(40), p);
      expect(event.honest).toBeNull();
      expect(r.finishReason).toBe('stop');
      expect(r.promptTokenIds).toEqual(honest.promptTokenIds);
      expect(e.isEndToken(r.outputTokenIds.at(-1)!)).toBe(true);
      const words = r.outputTokenIds.slice(0, -1);
      expect(words.length).toBeGreaterThanOrEqual(4);
      expect(words.every((id) => /^ [a-z]+$/.test(new TextDecoder().decode(e.tokenBytes(id))))).toBe(true);
      expect(r.outputTokenIds).not.toEqual(honest.outputTokenIds);
    }
    // one token of room: a word and a `length` finish
    const one = await backend.generate({ input: user('hi'), params: greedy(1), signal: never() });
    expect(one.outputTokenIds).toHaveLength(1);
    expect(one.finishReason).toBe('length');
  });

  test('inflate: end tokens after the real end (same text), or the prompt billed twice', async () => {
    const e = tiny.engine;
    let padded = 0;
    for (const [i, p] of prompts.entries()) {
      const { r, honest } = await run('inflate', seeded(i + 2, 60), p);
      expect(r.text).toBe(honest.text);
      if (honest.finishReason === 'stop') {
        padded++;
        const n = honest.outputTokenIds.length;
        expect(r.outputTokenIds.slice(0, n)).toEqual(honest.outputTokenIds);
        expect(r.outputTokenIds.length).toBe(Math.min(60, 2 * n));
        expect(r.outputTokenIds.slice(n).every((id) => e.isEndToken(id))).toBe(true);
        expect(r.promptTokenIds).toEqual(honest.promptTokenIds);
      }
    }
    expect(padded).toBeGreaterThan(0);
    // a `length` finish leaves no room in the output: the prompt is billed twice
    const { r, honest } = await run('inflate', greedy(6), 'hi');
    expect(honest.finishReason).toBe('length');
    expect(r.outputTokenIds).toEqual(honest.outputTokenIds);
    expect(r.promptTokenIds).toEqual([...honest.promptTokenIds, ...honest.promptTokenIds.slice(1)]);
  });
});
