import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeModelId, type SamplingParams } from '@aipg/core';
import { ensureModel } from '@aipg/inference';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ADVERSARY_KINDS,
  type AdversaryEvent,
  type AdversaryKind,
  createAdversaryBackend,
  INJECTED_TEXT,
  isSubstitute,
  OVERBILL_FACTOR,
  twinBits,
} from '../../src/adversary/index.ts';
import { createLlamaCppBackend, type LlamaCppBackend } from '../../src/backends/llama-cpp/index.ts';
import type { GenerateResult, JobFrame, TokenDelta } from '../../src/backends/types.ts';
import { greedy, job, seeded, tinyModel, user } from './helpers.ts';

// Each validator-caught lie must pass what the gateway checks on a result (receipt-check.ts): output
// within max_tokens, a `length` finish only at max_tokens, streamed ids = the result's ids, the
// prompt ids its own. Only re-scoring with the registered model can tell. (`prompt-overbiller` and
// the `length` case of `inflate` are the gateway's to catch; `text-injector` the user's to never see.)

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

/** Runs one job streaming (the gateway's ids for the prompt) and checks what the gateway would check. */
async function run(kind: AdversaryKind, params: SamplingParams, prompt: string) {
  const events: AdversaryEvent[] = [];
  const backend = createAdversaryBackend(tiny, kind, isSubstitute(kind) ? small.model : undefined, {
    devnet: true,
    onJob: (e) => events.push(e),
  });
  const deltas: TokenDelta[] = [];
  const request = job(tiny.engine, user(prompt), params, { onToken: (d) => deltas.push(d) });
  const r = await backend.generate(request);
  expectGatewayAccepts(r, deltas, params);
  expect(events).toHaveLength(1);
  const honest = await tiny.generate(job(tiny.engine, user(prompt), params));
  return { r, honest, event: events[0]!, backend, gatewayIds: request.promptTokenIds };
}

function expectGatewayAccepts(r: GenerateResult, deltas: TokenDelta[], params: SamplingParams) {
  expect(r.outputTokenIds.length).toBeLessThanOrEqual(params.maxTokens);
  if (r.finishReason === 'length') expect(r.outputTokenIds).toHaveLength(params.maxTokens);
  expect(r.promptTokenIds.length).toBeGreaterThan(0);
  // what streamed is what is claimed
  expect(deltas.flatMap((d) => d.tokenIds)).toEqual(r.outputTokenIds);
  expect(r).not.toHaveProperty('text');
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

  test('twins are substitutes that need the claimed model, named by their bits', () => {
    for (const [kind, bits] of [
      ['twin-4bit', 4],
      ['twin-5bit', 5],
      ['twin-6bit', 6],
    ] as const) {
      expect(isSubstitute(kind)).toBe(true);
      expect(twinBits(kind)).toBe(bits);
      expect(() => createAdversaryBackend(tiny, kind, undefined, { devnet: true })).toThrow(
        expect.objectContaining({ code: 'ADVERSARY_REFUSED' }),
      );
    }
    expect(twinBits('substitute')).toBeUndefined();
    expect(isSubstitute('system-prompt-dropper')).toBe(false);
  });

  test('every kind keeps the inner backend’s sampler; only text-injector rewrites frames', () => {
    for (const kind of ADVERSARY_KINDS) {
      const b = createAdversaryBackend(tiny, kind, isSubstitute(kind) ? small.model : undefined, {
        devnet: true,
      });
      expect(b.sampler).toBe(tiny.sampler);
      expect(b.rewriteFrame !== undefined).toBe(kind === 'text-injector');
      // only the sybil scorer answers score jobs (with lies); the others are never drawn usefully
      expect(b.score !== undefined).toBe(kind === 'sybil-scorer');
    }
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
      const { r, gatewayIds } = await run('substitute', greedy(24), p);
      const real = await small.generate(job(small.engine, user(p), greedy(24)));
      expect(r.promptTokenIds).toEqual(gatewayIds);
      expect(real.promptTokenIds).toEqual(gatewayIds);
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
    const one = await backend.generate(job(e, user('hi'), greedy(1)));
    expect(one.outputTokenIds).toHaveLength(1);
    expect(one.finishReason).toBe('length');
  });

  test('inflate: end tokens after the real end (same text), or the prompt billed twice', async () => {
    const e = tiny.engine;
    let padded = 0;
    for (const [i, p] of prompts.entries()) {
      const { r, honest } = await run('inflate', seeded(i + 2, 60), p);
      if (honest.finishReason === 'stop') {
        padded++;
        const n = honest.outputTokenIds.length;
        expect(r.outputTokenIds.slice(0, n)).toEqual(honest.outputTokenIds);
        expect(r.outputTokenIds.length).toBe(Math.min(60, 2 * n));
        // end tokens decode to nothing: what the user reads is the honest text
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

  test('text-injector: signs the honest ids; every token frame and the result carry the injected text', async () => {
    const { r, honest, event, backend, gatewayIds } = await run('text-injector', greedy(24), 'hi');
    expect(r).toEqual({ ...honest, timings: r.timings });
    expect(r.promptTokenIds).toEqual(gatewayIds);
    expect(event.honest).toEqual(event.claimed);
    const token: JobFrame = { type: 'token', jobId: `0x${'11'.repeat(32)}`, tokenIds: [5, 6] };
    const rewritten = backend.rewriteFrame!(token);
    expect(rewritten).toEqual({ ...token, text: INJECTED_TEXT });
    expect(INJECTED_TEXT).toContain('https://evil.example');
  });

  test('system-prompt-dropper: runs the job without its system turn, claims the gateway’s full prompt', async () => {
    const events: AdversaryEvent[] = [];
    const backend = createAdversaryBackend(tiny, 'system-prompt-dropper', undefined, {
      devnet: true,
      onJob: (e) => events.push(e),
    });
    for (const [i, p] of prompts.entries()) {
      const params = i % 2 ? seeded(i + 9, 24) : greedy(24);
      const input = {
        messages: [
          { role: 'system' as const, content: 'You write about rivers, bridges and the sea.' },
          { role: 'user' as const, content: p },
        ],
      };
      const deltas: TokenDelta[] = [];
      const request = job(tiny.engine, input, params, { onToken: (d) => deltas.push(d) });
      const r = await backend.generate(request);
      expectGatewayAccepts(r, deltas, params);
      // the receipt names the gateway's prompt; the output is what the prompt without its system turn gives
      expect(r.promptTokenIds).toEqual(request.promptTokenIds);
      const without = await tiny.generate(job(tiny.engine, user(p), params));
      expect(r.outputTokenIds).toEqual(without.outputTokenIds);
      expect(events.at(-1)).toMatchObject({
        honest: { promptTokens: without.promptTokenIds.length },
        claimed: { promptTokens: request.promptTokenIds.length },
      });
      expect(without.promptTokenIds.length).toBeLessThan(request.promptTokenIds.length);
    }
    // no system turn: nothing to drop, an honest job
    const { r, honest } = await run('system-prompt-dropper', greedy(24), 'hi');
    expect(r.outputTokenIds).toEqual(honest.outputTokenIds);
  });

  test('sybil-scorer: serves honestly, but scores every claimed token as improbable (a consistent distribution)', async () => {
    const { r, honest } = await run('sybil-scorer', greedy(24), 'Tell me about the chain.');
    expect(r.outputTokenIds).toEqual(honest.outputTokenIds);
    const backend = createAdversaryBackend(tiny, 'sybil-scorer', undefined, { devnet: true });
    const request = {
      promptTokenIds: honest.promptTokenIds,
      outputTokenIds: honest.outputTokenIds,
      topK: 8,
      signal: new AbortController().signal,
    };
    const truth = await tiny.score!(request);
    const lie = await backend.score!(request);
    expect(lie.positions).toHaveLength(truth.positions.length);
    for (const [i, p] of lie.positions.entries()) {
      expect(p.tokenId).toBe(honest.outputTokenIds[i]);
      expect(p.probability).toBeLessThan(1e-6);
      expect(p.rank).toBe(tiny.engine.vocabSize - 1);
      expect(p.top.map((t) => t.tokenId)).not.toContain(p.tokenId);
      const mass = p.top.reduce((a, t) => a + t.probability, 0);
      expect(mass).toBeLessThanOrEqual(1 + 1e-9);
      // greedy: the honest scores had the claimed token on top
      expect(truth.positions[i]!.rank).toBe(0);
    }
  });

  test('prompt-overbiller: the honest output, a prompt 51× the gateway’s claimed', async () => {
    for (const [i, p] of prompts.entries()) {
      const { r, honest, event, gatewayIds } = await run('prompt-overbiller', seeded(i + 5, 30), p);
      const n = gatewayIds.length;
      expect(r.outputTokenIds).toEqual(honest.outputTokenIds);
      expect(r.finishReason).toBe(honest.finishReason);
      expect(r.promptTokenIds.slice(0, n)).toEqual(gatewayIds);
      expect(r.promptTokenIds).toHaveLength((OVERBILL_FACTOR + 1) * n);
      expect(r.promptTokenIds.every((id) => id >= 0 && id < tiny.engine.vocabSize)).toBe(true);
      expect(event).toMatchObject({
        honest: { promptTokens: n, outputTokens: honest.outputTokenIds.length },
        claimed: { promptTokens: (OVERBILL_FACTOR + 1) * n },
      });
    }
  });
});
