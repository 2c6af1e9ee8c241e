import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ContextOverflowError,
  createLlamaEngine,
  EngineClosedError,
  type Generation,
  InferenceAbortedError,
  InvalidTokenError,
  type LlamaEngine,
  type TokenDelta,
} from '../src/index.ts';
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
