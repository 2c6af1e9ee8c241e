import type { SamplingParams } from '@aipg/core';
import type { LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createDistributionReader, greedyView, type RawDistribution } from '../src/distribution.ts';
import {
  ContextOverflowError,
  createLlamaEngine,
  EngineClosedError,
  type Generation,
  InferenceAbortedError,
  InvalidTokenError,
  type LlamaEngine,
  type PositionScore,
  type ScoreResult,
  type TokenDelta,
} from '../src/index.ts';
import { sharedLlama } from '../src/llama.ts';
import { type Distribution, replayCheck, samplerUniform, sampleToken } from '../src/sampler.ts';
import { greedy, seeded, tinyModel } from './helpers.ts';

let engine: LlamaEngine;
beforeAll(async () => {
  const { path } = await tinyModel();
  engine = await createLlamaEngine({ modelPath: path, threads: 1, contextSize: 512, maxConcurrency: 2 });
});
afterAll(async () => {
  await engine?.close();
});

const chat = (content: string) => engine.chatPromptTokenIds([{ role: 'user', content }]);

async function streamed(promptTokenIds: number[], params: Parameters<LlamaEngine['generate']>[0]['params']) {
  const deltas: TokenDelta[] = [];
  const result = await engine.generate({ promptTokenIds, params, onToken: (d) => deltas.push(d) });
  return { result, deltas };
}

function expectConsistentDeltas(result: Generation, deltas: TokenDelta[]) {
  expect(deltas.map((d) => d.text).join('')).toBe(result.text);
  expect(deltas.flatMap((d) => d.tokenIds)).toEqual(result.outputTokenIds);
}

describe('tokenization', () => {
  test('prompts start with BOS; control tokens are parsed; chat = template + tokenize', () => {
    const ids = chat('hi');
    expect(ids[0]).toBe(engine.bosTokenId);
    expect(ids.filter((t) => t === engine.bosTokenId)).toHaveLength(1);
    expect(ids).toEqual([engine.bosTokenId, ...engine.tokenize('<|user|>hi</s><|assistant|>')]);
    expect(ids).toContain(engine.eosTokenId);
    expect(engine.tokenize('</s>', { special: false })).not.toContain(engine.eosTokenId);
    expect(engine.promptTokenIds('the node')).toEqual([engine.bosTokenId, ...engine.tokenize('the node')]);
    expect(engine.detokenize(engine.tokenize('Grüße, 5 € ok'))).toBe('Grüße, 5 € ok');
    expect(engine.vocabSize).toBe(520);
  });
});

describe('generate', () => {
  test('greedy is deterministic and ends with the end token', async () => {
    const a = await engine.generate({ promptTokenIds: chat('hi'), params: greedy() });
    const b = await engine.generate({ promptTokenIds: chat('hi'), params: greedy() });
    expect(a.outputTokenIds).toEqual(b.outputTokenIds);
    expect(a.text).toBe(b.text);
    expect(a.finishReason).toBe('stop');
    expect(a.outputTokenIds.at(-1)).toBe(engine.eosTokenId);
    expect(a.text).toBe(engine.detokenize(a.outputTokenIds));
    expect(a.text).toMatch(/^[a-z ]+\.$/);
    expect(a.seed).toBeNull();
    expect(a.outputProbabilities).toHaveLength(a.outputTokenIds.length);
    expect(a.ttftMs).toBeGreaterThan(0);
    expect(a.totalMs).toBeGreaterThanOrEqual(a.ttftMs);
  });

  test('seeded sampling: same seed → same tokens, other seeds → other outputs', async () => {
    const prompt = chat('Tell me a story about the sea');
    const a = await engine.generate({ promptTokenIds: prompt, params: seeded(11) });
    const b = await engine.generate({ promptTokenIds: prompt, params: seeded(11) });
    expect(a.outputTokenIds).toEqual(b.outputTokenIds);
    expect(a.seed).toBe(11);
    const others = await Promise.all(
      [12, 13, 14].map((s) => engine.generate({ promptTokenIds: prompt, params: seeded(s) })),
    );
    expect(new Set([a, ...others].map((g) => JSON.stringify(g.outputTokenIds))).size).toBeGreaterThan(2);
  });

  test('unseeded sampling draws a fresh seed and reports it', async () => {
    const params = { ...seeded(0), seed: null };
    const a = await engine.generate({ promptTokenIds: chat('hi'), params });
    expect(Number.isSafeInteger(a.seed)).toBe(true);
    const replay = await engine.generate({ promptTokenIds: chat('hi'), params: { ...params, seed: a.seed } });
    expect(replay.outputTokenIds).toEqual(a.outputTokenIds);
  });

  test('length finish at exactly maxTokens', async () => {
    const { result, deltas } = await streamed(chat('hi'), greedy(3));
    expect(result.finishReason).toBe('length');
    expect(result.outputTokenIds).toHaveLength(3);
    expect(result.outputTokenIds).not.toContain(engine.eosTokenId);
    expectConsistentDeltas(result, deltas);
  });

  test('stop strings: text ends before the stop string, its tokens stay in the output', async () => {
    const full = await engine.generate({ promptTokenIds: chat('hi'), params: greedy() });
    // greedy "a question to this key." — stop at " to"
    const { result, deltas } = await streamed(chat('hi'), greedy(40, [' to']));
    expect(result.finishReason).toBe('stop');
    expect(full.text.startsWith(`${result.text} to`)).toBe(true);
    expect(result.outputTokenIds).toEqual(full.outputTokenIds.slice(0, result.outputTokenIds.length));
    expect(engine.detokenize(result.outputTokenIds).endsWith(' to')).toBe(true);
    expect(result.outputTokenIds.at(-1)).not.toBe(engine.eosTokenId);
    expectConsistentDeltas(result, deltas);
    expect(deltas.map((d) => d.text).join('')).not.toContain(' to');
  });

  test('streaming deltas concatenate exactly, multi-byte characters included', async () => {
    // seed 18 on this prompt samples "5€": the euro sign is three byte tokens
    const { result, deltas } = await streamed(chat('What does it cost?'), {
      ...seeded(18),
      topP: 1,
      maxTokens: 40,
    });
    expect(result.text).toContain('€');
    expectConsistentDeltas(result, deltas);
    expect(deltas.some((d) => d.text.includes('\uFFFD'))).toBe(false);
    const euro = deltas.find((d) => d.text.includes('€'))!;
    expect(euro.tokenIds).toHaveLength(3);
    expect(engine.detokenize(euro.tokenIds)).toBe('€');
  });

  test('rejects a prompt that cannot fit and token ids outside the vocabulary', async () => {
    await expect(engine.generate({ promptTokenIds: chat('hi'), params: greedy(600) })).rejects.toBeInstanceOf(
      ContextOverflowError,
    );
    await expect(engine.generate({ promptTokenIds: [1, 9999], params: greedy() })).rejects.toBeInstanceOf(
      InvalidTokenError,
    );
  });
});

describe('score', () => {
  test('greedy output: rank 0 everywhere, probabilities match generation, replay distance 0', async () => {
    const prompt = chat('What is the grid?');
    const g = await engine.generate({ promptTokenIds: prompt, params: greedy() });
    const s = await engine.score({
      promptTokenIds: prompt,
      outputTokenIds: g.outputTokenIds,
      topK: 3,
      params: greedy(),
    });
    expect(s.positions).toHaveLength(g.outputTokenIds.length);
    s.positions.forEach((p, i) => {
      expect(p.tokenId).toBe(g.outputTokenIds[i]);
      expect(p.rank).toBe(0);
      expect(p.top[0]!.tokenId).toBe(p.tokenId);
      expect(p.top).toHaveLength(3);
      expect(Math.abs(p.probability - g.outputProbabilities[i]!)).toBeLessThan(1e-3);
      expect(p.replay).toEqual({ expectedTokenId: p.tokenId, distance: 0 });
    });
    expect(s.next).toHaveLength(3);
  });

  test('seeded output replays exactly; a tampered token is caught', async () => {
    const prompt = chat('Tell me a story about the sea');
    const params = seeded(5, 30);
    const g = await engine.generate({ promptTokenIds: prompt, params });
    const s = await engine.score({ promptTokenIds: prompt, outputTokenIds: g.outputTokenIds, params });
    for (const p of s.positions) expect(p.replay?.distance).toBe(0);

    const forged = [...g.outputTokenIds];
    forged[1] = engine.tokenize('zebra')[1]!; // a character token the model never emits
    const f = await engine.score({ promptTokenIds: prompt, outputTokenIds: forged, params });
    expect(f.positions[1]!.rank).toBeGreaterThan(100);
    expect(f.positions[1]!.probability).toBeLessThan(1e-4);
    expect(f.positions[1]!.replay!.distance).toBe(1);
  });
});

/**
 * `score` and `generate` read distributions without copying them (distribution.ts). These tests pin
 * their results to a straightforward computation over node-llama-cpp's public API (a Map of the whole
 * vocabulary per position, canonical order by sorting it), on the direct path and on the public-API
 * fallback alike: same numbers, exactly.
 */
describe('score and generate equal a reference computation', () => {
  let model: LlamaModel;
  let context: LlamaContext;
  let seq: LlamaContextSequence;
  let fallback: LlamaEngine;
  beforeAll(async () => {
    const { path } = await tinyModel();
    // The engine's context settings (engine.ts), so the reference evaluates with the same numerics.
    model = await (await sharedLlama(false)).loadModel({ modelPath: path, gpuLayers: 0 });
    context = await model.createContext({
      contextSize: 512,
      sequences: 2,
      threads: 1,
      flashAttention: false,
    });
    seq = context.getSequence();
    fallback = await createLlamaEngine({
      modelPath: path,
      threads: 1,
      contextSize: 512,
      maxConcurrency: 2,
      directDistributions: false,
    });
  });
  afterAll(async () => {
    await fallback?.close();
    await context?.dispose();
    await model?.dispose();
  });

  /** The distributions after each of tokens[from…], as public-API Maps, in one pass. */
  async function referenceMaps(tokens: readonly number[], from: number): Promise<Map<number, number>[]> {
    await seq.clearHistory();
    const items = tokens.map((t, i) =>
      i >= from ? ([t, { generateNext: { probabilities: true } }] as const) : t,
    );
    const results = await seq.controlledEvaluate(items as Parameters<typeof seq.controlledEvaluate>[0]);
    return tokens.slice(from).map((_, k) => results[from + k]!.next.probabilities!);
  }
  const canonical = (m: Map<number, number>) => [...m].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  const asDistribution = (m: Map<number, number>): Distribution => ({
    ids: [...m.keys()],
    probs: [...m.values()],
  });

  async function referenceScore(
    prompt: number[],
    output: number[],
    topK: number,
    params?: Pick<SamplingParams, 'temperature' | 'topP' | 'seed'>,
  ): Promise<ScoreResult> {
    const maps = await referenceMaps([...prompt, ...output], prompt.length - 1);
    const top = (m: Map<number, number>) =>
      canonical(m)
        .slice(0, topK)
        .map(([tokenId, probability]) => ({ tokenId, probability }));
    const positions = output.map((tokenId, i): PositionScore => {
      const m = maps[i]!;
      const position: PositionScore = {
        tokenId,
        probability: m.get(tokenId as Token) ?? 0,
        rank: canonical(m).findIndex(([t]) => t === tokenId),
        top: top(m),
      };
      if (params) {
        const u = params.temperature === 0 ? 0 : samplerUniform(params.seed!, i);
        position.replay = replayCheck(asDistribution(m), params, u, tokenId);
      }
      return position;
    });
    return { positions, next: top(maps[output.length]!) };
  }

  /** The generation loop with the public API and the sampler on the whole distribution. */
  async function referenceGenerate(prompt: number[], params: SamplingParams) {
    const ids: number[] = [];
    const probabilities: number[] = [];
    let input = prompt;
    await seq.clearHistory();
    while (ids.length < params.maxTokens) {
      const items = input.map((t, i) =>
        i === input.length - 1 ? ([t, { generateNext: { probabilities: true } }] as const) : t,
      );
      const results = await seq.controlledEvaluate(items as Parameters<typeof seq.controlledEvaluate>[0]);
      const m = results[input.length - 1]!.next.probabilities!;
      const u = params.temperature === 0 ? 0 : samplerUniform(params.seed!, ids.length);
      const token = sampleToken(asDistribution(m), params, u);
      ids.push(token);
      probabilities.push(m.get(token as Token) ?? 0);
      if (token === engine.eosTokenId) break;
      input = [token];
    }
    return { ids, probabilities };
  }

  test('the reader hands over the public-API distributions, direct or in chunks', async () => {
    const prompt = chat('Tell me a story about the sea');
    const g = await engine.generate({ promptTokenIds: prompt, params: seeded(3, 30) });
    const tokens = [...prompt, ...g.outputTokenIds];
    const from = prompt.length - 1;
    const expected = (await referenceMaps(tokens, from)).map((m) => [...m].flat());
    // vocabSize 1e6: the public-API path evaluates 4 positions at a time
    for (const options of [{ vocabSize: engine.vocabSize }, { vocabSize: 1_000_000, direct: false }]) {
      const reader = createDistributionReader(model, [seq], options);
      expect(reader.direct).toBe(options.direct ?? true);
      const seen: [number, RawDistribution][] = [];
      await seq.clearHistory();
      await reader.read(seq, tokens, from, (i, d) => seen.push([i, d]));
      expect(seen.map(([i]) => i)).toEqual(expected.map((_, k) => from + k));
      expect(seen.map(([, d]) => d)).toEqual(expected);
      expect(seq.contextTokens).toEqual(tokens);
      reader.dispose();
    }
  });

  test('the engine reads distributions directly (node-llama-cpp internals as expected)', () => {
    // If this fails after a node-llama-cpp upgrade, the engine still works through the public API
    // (the tests below pass either way), only slower: see distribution.ts.
    expect(engine.directDistributions).toBe(true);
    expect(fallback.directDistributions).toBe(false);
  });

  test('score: greedy, seeded and forged outputs, top 64 and the next distribution', async () => {
    const cases: [number[], SamplingParams][] = [
      [chat('What is the grid?'), greedy(60)],
      [chat('Tell me a story about the sea'), seeded(5, 60)],
      [chat('Why is the sky blue?'), { ...seeded(9, 60), topP: 1, temperature: 0.7 }],
    ];
    for (const [prompt, params] of cases) {
      const g = await engine.generate({ promptTokenIds: prompt, params });
      const forged = [...g.outputTokenIds];
      forged[1] = engine.tokenize('zebra')[1]!; // far down the distribution
      forged[3] = g.outputTokenIds[4]!;
      for (const output of [g.outputTokenIds, forged]) {
        const expected = await referenceScore(prompt, output, 64, params);
        for (const e of [engine, fallback]) {
          const s = await e.score({ promptTokenIds: prompt, outputTokenIds: output, topK: 64, params });
          expect(s).toEqual(expected);
        }
        // without params: no replay; default topK 5
        const plain = await engine.score({ promptTokenIds: prompt, outputTokenIds: output });
        expect(plain.positions.map((p) => p.replay)).toEqual(output.map(() => undefined));
        expect(plain.positions.map((p) => p.top)).toEqual(expected.positions.map((p) => p.top.slice(0, 5)));
      }
      expect((await referenceScore(prompt, forged, 64, params)).positions[1]!.rank).toBeGreaterThan(100);
    }
  });

  test('score of an empty output: only the next distribution', async () => {
    const prompt = chat('hi');
    const expected = await referenceScore(prompt, [], 10);
    expect(await engine.score({ promptTokenIds: prompt, outputTokenIds: [], topK: 10 })).toEqual(expected);
  });

  test('generate: greedy and seeded picks and probabilities', async () => {
    const cases: [number[], SamplingParams][] = [
      [chat('What is the grid?'), greedy(60)],
      [chat('Tell me a story about the sea'), seeded(5, 60)],
      [chat('What does it cost?'), { ...seeded(18), topP: 1, maxTokens: 40 }],
    ];
    for (const [prompt, params] of cases) {
      const expected = await referenceGenerate(prompt, params);
      for (const e of [engine, fallback]) {
        const g = await e.generate({ promptTokenIds: prompt, params });
        expect(g.outputTokenIds).toEqual(expected.ids);
        expect(g.outputProbabilities).toEqual(expected.probabilities);
      }
    }
  });
});

describe('greedyView', () => {
  const raw = (pairs: [number, number][]): RawDistribution => pairs.flat();
  const full = (d: RawDistribution): Distribution => ({
    ids: d.filter((_, i) => i % 2 === 0),
    probs: d.filter((_, i) => i % 2 === 1),
  });
  const g = { temperature: 0, topP: 1 };

  test('gives the sampler and the greedy replay check the same answers as the whole distribution', () => {
    const dists = [
      raw([
        [7, 0.5],
        [3, 0.3],
        [9, 0.2],
        [1, 0],
      ]),
      // ties at the top, in llama.cpp's (not id) order
      raw([
        [8, 0.4],
        [2, 0.4],
        [5, 0.4],
        [1, 0.1],
        [0, 0.1],
      ]),
      raw([[4, 1]]),
    ];
    for (const d of dists) {
      expect(sampleToken(greedyView(d)!, g, 0)).toBe(sampleToken(full(d), g, 0));
      for (const claimed of [...Array.from(full(d).ids), 99]) {
        const view = greedyView(d, claimed)!;
        expect(view).toBeDefined();
        expect(replayCheck(view, g, 0, claimed)).toEqual(replayCheck(full(d), g, 0, claimed));
      }
    }
  });

  test('declines when the claimed token ties the top outside the leading run (unsorted input)', () => {
    const d = raw([
      [8, 0.4],
      [1, 0.2],
      [2, 0.4],
    ]);
    expect(greedyView(d, 2)).toBeUndefined();
    expect(greedyView(d, 1)).toBeDefined();
  });
});

describe('concurrency and abort', () => {
  test('two concurrent jobs produce what they produce alone', async () => {
    const p1 = chat('Tell me a story about the sea');
    const p2 = chat('Why is the sky blue?');
    const params = seeded(7, 60);
    const a = await engine.generate({ promptTokenIds: p1, params });
    const b = await engine.generate({ promptTokenIds: p2, params });
    const [c, d] = await Promise.all([
      engine.generate({ promptTokenIds: p1, params }),
      engine.generate({ promptTokenIds: p2, params }),
    ]);
    expect(c.outputTokenIds).toEqual(a.outputTokenIds);
    expect(d.outputTokenIds).toEqual(b.outputTokenIds);
    expect(c.outputProbabilities).toEqual(a.outputProbabilities);
  });

  test('a job beyond maxConcurrency waits for a free sequence', async () => {
    const order: string[] = [];
    const job = (name: string) =>
      engine.generate({ promptTokenIds: chat(name), params: greedy(20) }).then((g) => {
        order.push(name);
        return g;
      });
    const results = await Promise.all([job('one'), job('two'), job('three')]);
    expect(results.every((r) => r.outputTokenIds.length > 0)).toBe(true);
    expect(order).toHaveLength(3);
  });

  test('abort mid-generation stops the job and frees its sequence', async () => {
    const controller = new AbortController();
    let tokens = 0;
    const job = engine.generate({
      promptTokenIds: chat('hi'),
      params: { ...seeded(3), maxTokens: 400, stop: ['never-appears'] },
      signal: controller.signal,
      onToken: () => {
        if (++tokens === 2) controller.abort(new Error('client went away'));
      },
    });
    const error = await job.catch((e) => e);
    expect(error).toBeInstanceOf(InferenceAbortedError);
    expect((error as InferenceAbortedError).cause).toEqual(new Error('client went away'));
    // both sequences are usable again
    const [x, y] = await Promise.all([
      engine.generate({ promptTokenIds: chat('a'), params: greedy(5) }),
      engine.generate({ promptTokenIds: chat('b'), params: greedy(5) }),
    ]);
    expect(x.outputTokenIds.length + y.outputTokenIds.length).toBeGreaterThan(0);
  });

  test('a queued job aborted before it starts leaves the queue', async () => {
    const long = { ...seeded(1), maxTokens: 200, stop: ['never-appears'] };
    const busy = [
      engine.generate({ promptTokenIds: chat('x'), params: long }),
      engine.generate({ promptTokenIds: chat('y'), params: long }),
    ];
    const controller = new AbortController();
    const queued = engine.generate({
      promptTokenIds: chat('z'),
      params: greedy(),
      signal: controller.signal,
    });
    controller.abort();
    await expect(queued).rejects.toBeInstanceOf(InferenceAbortedError);
    await Promise.all(busy);
    await expect(
      engine.generate({ promptTokenIds: chat('z'), params: greedy(), signal: AbortSignal.abort() }),
    ).rejects.toBeInstanceOf(InferenceAbortedError);
  });
});

test('close rejects queued and later jobs', async () => {
  const { path } = await tinyModel();
  const e = await createLlamaEngine({ modelPath: path, threads: 1, contextSize: 256, maxConcurrency: 1 });
  const running = e.generate({
    promptTokenIds: e.chatPromptTokenIds([{ role: 'user', content: 'hi' }]),
    params: greedy(5),
  });
  const queued = e.generate({
    promptTokenIds: e.chatPromptTokenIds([{ role: 'user', content: 'hi' }]),
    params: greedy(5),
  });
  const closing = e.close();
  await expect(queued).rejects.toBeInstanceOf(EngineClosedError);
  await running.catch(() => undefined);
  await closing;
  await expect(e.generate({ promptTokenIds: [1], params: greedy() })).rejects.toBeInstanceOf(
    EngineClosedError,
  );
});

test('a missing model file is a ModelFileError', async () => {
  await expect(createLlamaEngine({ modelPath: '/nonexistent/model.gguf', threads: 1 })).rejects.toMatchObject(
    {
      code: 'MODEL_FILE',
    },
  );
});
