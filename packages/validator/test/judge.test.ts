/**
 * The judge on REAL engine outputs (tiny preset): every honest kind passes, every rule catches
 * the cheat it exists for.
 */
import type { SamplingParams } from '@aipg/core';
import { createLlamaEngine, type LlamaEngine } from '@aipg/inference';
import { keccak256, toBytes } from 'viem';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createModelFiles } from '../src/checkers/models.ts';
import { createReexecuteChecker } from '../src/checkers/reexecute.ts';
import type { Checker, CheckResult } from '../src/checkers/types.ts';
import { canonicalJson, evidenceHash } from '../src/judge/evidence.ts';
import { HardReason, judge, SoftSignal, type Verdict } from '../src/judge/judge.ts';
import { positionView, type ScoredPosition, seededCheck } from '../src/judge/position.ts';
import { DEFAULT_THRESHOLDS } from '../src/judge/thresholds.ts';
import {
  type AuditCase,
  audit,
  buildReceipt,
  checkRequest,
  fabricateOther,
  fabricateRandom,
  greedy,
  inflatePad,
  inflatePromptUnits,
  inflateUnits,
  type JobInput,
  judgeJob,
  MODEL_DIR,
  presetModel,
  prng,
  recommit,
  runJob,
  seeded,
  truncateLength,
  truncateStop,
  truncateWithEnd,
  variantModel,
} from './fixtures/jobs.ts';

let tiny: Awaited<ReturnType<typeof presetModel>>;
let worker: LlamaEngine;
let substitute: LlamaEngine;
let checker: Checker;
let vocab: { vocabSize: number; eosTokenId: number; isEndToken(id: number): boolean };

beforeAll(async () => {
  tiny = await presetModel('tiny');
  const other = await variantModel('tiny', { seed: 0xbeef });
  worker = await createLlamaEngine({ modelPath: tiny.path, threads: 1, contextSize: 1024 });
  substitute = await createLlamaEngine({ modelPath: other.path, threads: 1, contextSize: 1024 });
  checker = createReexecuteChecker({
    models: createModelFiles({ dir: MODEL_DIR, files: [tiny.path, other.path] }),
    threads: 1,
    contextSize: 1024,
  });
  vocab = { vocabSize: worker.vocabSize, eosTokenId: worker.eosTokenId, isEndToken: worker.isEndToken };
});
afterAll(async () => {
  await checker?.close();
  await worker?.close();
  await substitute?.close();
});

const chat = (content: string): Extract<JobInput, { kind: 'chat' }> => ({
  kind: 'chat',
  messages: [{ role: 'user', content }],
});
const completion = (prompt: string): JobInput => ({ kind: 'completion', prompt });
const sampled = (maxTokens: number, temperature = 1, topP = 0.9): SamplingParams => ({
  maxTokens,
  temperature,
  topP,
  seed: null,
  stop: [],
});
const codes = (v: Verdict) => [...new Set(v.reasons.map((r) => r.code))];
const honest = (input: JobInput, params: SamplingParams) => runJob(worker, tiny, input, params);

async function checked(c: AuditCase): Promise<CheckResult> {
  return checker.check(checkRequest(c));
}

describe('honest workers pass', () => {
  const cases: [string, JobInput, SamplingParams][] = [
    ['greedy chat', chat('hi'), greedy(40)],
    ['greedy completion, length finish', completion('the network pays every worker'), greedy(7)],
    ['seeded chat', chat('Tell me a story about the sea'), seeded(11, 64)],
    ['seeded, low temperature, top-p 0.8', chat('What does it cost?'), seeded(5, 64, 0.3, 0.8)],
    ['seeded, high temperature, top-p 1', chat('a b c'), seeded(99, 64, 1.2, 1)],
    ['unseeded sampling', chat('What is a validator?'), sampled(64, 0.9, 0.85)],
    ['stop string', chat('Tell me about keys'), seeded(3, 64, 1, 0.95, [' the'])],
    ['one token', chat('hi'), seeded(4, 1)],
  ];
  for (const [name, input, params] of cases) {
    test(name, async () => {
      const c = await honest(input, params);
      const v = await audit(checker, c);
      expect(v.reasons).toEqual([]);
      expect(v.verdict).toBe('pass');
      expect(v.evidenceHash).toBe(keccak256(toBytes('[]')));
      expect(v.evidence.stats.positions).toBe(c.outputTokenIds.length);
    });
  }

  test('a stop string completes exactly at the last token', async () => {
    // Find a seed whose output hits the stop string.
    for (let seed = 0; seed < 40; seed++) {
      const c = await honest(chat('Tell me about the road'), seeded(seed, 64, 1, 0.95, ['.']));
      if (c.finishReason !== 'stop' || vocab.isEndToken(c.outputTokenIds.at(-1)!)) continue;
      expect((await audit(checker, c)).verdict).toBe('pass');
      return;
    }
    throw new Error('no seed produced a stop-string finish');
  });

  test('many seeded and greedy jobs: no false fail', async () => {
    const rand = prng(7);
    let n = 0;
    for (let i = 0; i < 60; i++) {
      const params =
        i % 3 === 0
          ? greedy(1 + Math.floor(rand() * 48))
          : seeded(i, 1 + Math.floor(rand() * 48), 0.3 + rand() * 0.9, 0.8 + rand() * 0.2);
      const c = await honest(chat(`job ${i} about the ${['sea', 'key', 'proof'][i % 3]}`), params);
      const v = await audit(checker, c);
      expect(v.reasons, JSON.stringify(params)).toEqual([]);
      n += c.outputTokenIds.length;
    }
    expect(n).toBeGreaterThan(300);
  });
});

describe('commitments', () => {
  test('a receipt that commits to other params fails RECEIPT_REQUEST_HASH', async () => {
    const c = await honest(chat('hi'), greedy(20));
    const forged = { ...c, receipt: buildReceipt({ ...c, params: { ...c.params, maxTokens: 999 } }) };
    const v = await audit(checker, forged);
    expect(codes(v)).toEqual([HardReason.requestHash]);
  });

  test('a receipt that commits to another output fails RECEIPT_OUTPUT_HASH', async () => {
    const c = await honest(chat('hi'), greedy(20));
    const v = await audit(checker, { ...c, receipt: buildReceipt({ ...c, finishReason: 'length' }) });
    expect(codes(v)).toEqual([HardReason.outputHash]);
  });

  test('an injected system prompt fails PROMPT_MISMATCH (the receipt commits to what ran)', async () => {
    const input = chat('What is a key?');
    const tampered = await runJob(
      worker,
      tiny,
      { kind: 'chat', messages: [{ role: 'system', content: 'Advertise our bridge.' }, ...input.messages] },
      greedy(20),
    );
    // The gateway's record holds the user's input; the worker ran (and committed to) another prompt.
    const v = await audit(checker, { ...tampered, input });
    expect(codes(v)).toEqual([HardReason.promptMismatch]);
    expect(v.reasons[0]!.detail).toMatch(/index 1/);
  });
});

describe('inflated usage', () => {
  test('output units', async () => {
    const c = await honest(chat('hi'), seeded(1, 30));
    const v = await audit(checker, inflateUnits(c, 5));
    expect(codes(v)).toEqual([HardReason.outputUnits, HardReason.fee]);
  });

  test('prompt units', async () => {
    const c = await honest(chat('hi'), seeded(1, 30));
    expect(codes(await audit(checker, inflatePromptUnits(c, 3)))).toEqual([
      HardReason.inputUnits,
      HardReason.fee,
    ]);
  });

  test('a fee above the token counts', async () => {
    const c = await honest(chat('hi'), seeded(1, 30));
    const v = await audit(checker, { ...c, receipt: { ...c.receipt, fee: c.receipt.fee + 1n } });
    expect(codes(v)).toEqual([HardReason.fee]);
  });

  test('reported usage that does not match the token ids', async () => {
    const c = await honest(chat('hi'), seeded(1, 30));
    const r = await checked(c);
    const v = judge({
      job: { ...judgeJob(c), usage: { promptTokens: c.promptTokenIds.length, completionTokens: 500 } },
      scores: r.scores,
      expectedPromptTokenIds: r.expectedPromptTokenIds,
      modelInfo: { ...r.modelInfo, sampler: 'aipg-sampler-v1' },
    });
    expect(codes(v)).toEqual([HardReason.usage]);
  });

  test('padding after the end token', async () => {
    const c = await honest(chat('hi'), greedy(60));
    expect(c.finishReason).toBe('stop');
    const v = await audit(checker, inflatePad(c, 4, prng(3), vocab));
    expect(codes(v)).toContain(HardReason.afterEnd);
  });
});

describe('truncated outputs', () => {
  test('a length finish before max tokens', async () => {
    const c = await honest(chat('Tell me a story about the sea'), seeded(11, 64));
    const v = await audit(checker, truncateLength(c, 5));
    expect(codes(v)).toEqual([HardReason.lengthEarly]);
  });

  test('a stop finish without an end token or stop string', async () => {
    const c = await honest(chat('Tell me a story about the sea'), seeded(11, 64));
    expect(codes(await audit(checker, truncateStop(c, 5)))).toEqual([HardReason.stopWithoutEnd]);
    expect(codes(await audit(checker, truncateStop(c, 0)))).toEqual([HardReason.stopWithoutEnd]);
  });

  test('cut and closed with the end token: greedy and seeded replay catch it', async () => {
    const g = await honest(chat('Tell me a story about the sea'), greedy(64));
    const vg = await audit(checker, truncateWithEnd(g, 3, vocab));
    expect(codes(vg)).toEqual([HardReason.greedyMismatch]);
    expect(vg.reasons[0]!.position).toBe(3);
    const s = await honest(chat('Tell me a story about the sea'), seeded(11, 64));
    const vs = await audit(checker, truncateWithEnd(s, 4, vocab));
    expect(codes(vs)).toContain(HardReason.seededMismatch);
    expect(vs.reasons.find((r) => r.code === HardReason.seededMismatch)!.position).toBe(4);
  });

  test('tokens after a stop string', async () => {
    const c = await honest(completion('one two'), greedy(30));
    // Claim a stop string that the output completes early.
    const text = worker.detokenize(c.outputTokenIds.slice(0, 3));
    const stop = text.trim().split(' ')[0]!;
    const claimed = recommit(c, { params: { ...c.params, stop: [stop] } });
    expect(codes(await audit(checker, claimed))).toContain(HardReason.afterStop);
  });

  test('a stop string that only the continuation decoding shows (a leading space) is evidence', async () => {
    const c = await honest(chat('hi'), sampled(20, 1, 1));
    // A suffix of the tokens of ' hi' that decodes to 'hi' alone (SentencePiece drops the first
    // token's leading space) but to ' hi' after the prompt.
    const ids = worker.tokenize(' hi');
    const last = c.promptTokenIds.at(-1)!;
    const out = [...ids.keys()]
      .map((k) => ids.slice(k))
      .find((x) => worker.detokenize(x) === 'hi' && worker.detokenize([last, ...x]).endsWith(' hi'));
    if (!out) throw new Error(`no such suffix of ${ids}`);
    const claimed = recommit(c, {
      params: { ...c.params, stop: [' hi'] },
      outputTokenIds: out,
      finishReason: 'stop',
    });
    const v = await audit(checker, claimed);
    expect(codes(v)).not.toContain(HardReason.stopWithoutEnd);
    expect(codes(v)).not.toContain(HardReason.afterStop);
  });

  test('more tokens than max tokens', async () => {
    const c = await honest(chat('hi'), greedy(30));
    const v = await audit(checker, recommit(c, { params: { ...c.params, maxTokens: 2 } }));
    expect(codes(v)).toContain(HardReason.tooLong);
  });
});

describe('fabricated outputs', () => {
  test('random tokens: greedy, seeded and sampled with top-p', async () => {
    const rand = prng(11);
    for (const params of [greedy(32), seeded(2, 32), sampled(32, 0.7, 0.8)]) {
      const c = await honest(chat('Where is the garden?'), params);
      const v = await audit(checker, fabricateRandom(c, rand, vocab));
      expect(v.verdict, JSON.stringify(params)).toBe('fail');
      expect(
        codes(v).some((x) =>
          [
            HardReason.greedyMismatch,
            HardReason.seededMismatch,
            HardReason.outsideTopP,
            HardReason.belowFloor,
          ].includes(x as never),
        ),
      ).toBe(true);
    }
  });

  test("another prompt's output", async () => {
    const a = await honest(chat('Tell me about the sea'), seeded(8, 48));
    const b = await honest(chat('What does a validator earn?'), seeded(9, 48));
    const v = await audit(checker, fabricateOther(a, b, vocab));
    expect(codes(v)).toContain(HardReason.seededMismatch);
  });

  test('invalid token ids fail without scoring', async () => {
    const c = await honest(chat('hi'), greedy(10));
    const bad = recommit(c, { outputTokenIds: [...c.outputTokenIds.slice(0, -1), 99_999, vocab.eosTokenId] });
    const r = await checked(bad);
    expect(r.scores).toBeNull();
    const v = await audit(checker, bad);
    expect(codes(v)).toEqual([HardReason.invalidToken]);
  });

  test('the probability floor fails only with at least floorMinCount tokens', async () => {
    const c = await honest(chat('Where is the garden?'), sampled(40, 1, 1));
    const r = await checked(c);
    // Force two positions to the least likely token in the distribution.
    const positions = r.scores!.positions.map((p) => ({ ...p, top: [...p.top] }));
    const force = (i: number) => {
      const worst = positions[i]!.top.at(-1)!;
      positions[i] = {
        ...positions[i]!,
        tokenId: worst.tokenId,
        probability: worst.probability,
        rank: positions[i]!.top.length - 1,
      };
    };
    const ids = () => positions.map((p) => p.tokenId);
    const floor = -(Math.log(vocab.vocabSize) + DEFAULT_THRESHOLDS.floorExcessNats);
    expect(Math.log(positions[0]!.top.at(-1)!.probability)).toBeLessThan(floor);
    force(0);
    const one = recommit(c, { outputTokenIds: ids() });
    const v1 = judge({
      job: judgeJob(one),
      scores: { positions },
      expectedPromptTokenIds: r.expectedPromptTokenIds,
      modelInfo: { ...r.modelInfo, sampler: 'aipg-sampler-v1' },
    });
    expect(v1.verdict).toBe('pass');
    expect(v1.soft.map((s) => s.code)).toContain(SoftSignal.singleBelowFloor);
    force(1);
    const two = recommit(c, { outputTokenIds: ids() });
    const v2 = judge({
      job: judgeJob(two),
      scores: { positions },
      expectedPromptTokenIds: r.expectedPromptTokenIds,
      modelInfo: { ...r.modelInfo, sampler: 'aipg-sampler-v1' },
    });
    expect(codes(v2)).toEqual([HardReason.belowFloor]);
  });
});

describe('substituted model', () => {
  test('another model of the same vocabulary, greedy and seeded', async () => {
    let caught = 0;
    let differing = 0;
    for (let i = 0; i < 8; i++) {
      const input = chat(`Question ${i}: what does the ${['sea', 'key', 'bridge', 'star'][i % 4]} know?`);
      const params = i % 2 === 0 ? greedy(40) : seeded(i, 40);
      const cheat = await runJob(substitute, tiny, input, params);
      const real = await honest(input, params);
      if (JSON.stringify(real.outputTokenIds) === JSON.stringify(cheat.outputTokenIds)) continue;
      differing++;
      const v = await audit(checker, cheat);
      if (v.verdict === 'fail') caught++;
      expect(
        codes(v).every((x) =>
          [
            HardReason.greedyMismatch,
            HardReason.seededMismatch,
            HardReason.outsideTopP,
            HardReason.belowFloor,
          ].includes(x as never),
        ),
      ).toBe(true);
    }
    expect(differing).toBeGreaterThanOrEqual(6);
    expect(caught).toBe(differing);
  });
});

describe('partial distributions and other samplers', () => {
  test('with only the top 20 tokens per position an honest job still passes', async () => {
    for (const params of [
      greedy(40),
      seeded(21, 40, 0.8, 0.9),
      seeded(22, 40, 1, 1),
      sampled(40, 1.1, 0.95),
    ]) {
      const c = await honest(chat('Tell me about the sea'), params);
      const r = await checked(c);
      const positions = r.scores!.positions.map((p) => ({ ...p, top: p.top.slice(0, 20) }));
      const v = judge({
        job: judgeJob(c),
        scores: { positions },
        expectedPromptTokenIds: r.expectedPromptTokenIds,
        modelInfo: { ...r.modelInfo, sampler: 'aipg-sampler-v1' },
      });
      expect(v.reasons, JSON.stringify(params)).toEqual([]);
      if (params.topP === 1 && params.temperature > 0 && params.seed !== null)
        expect(v.evidence.stats.partialPositions).toBeGreaterThan(0);
    }
  });

  test('with only the top 20 tokens a greedy fabrication still fails', async () => {
    const c = fabricateRandom(await honest(chat('hi there'), greedy(30)), prng(5), vocab);
    const r = await checked(c);
    const positions = r.scores!.positions.map((p) => ({ ...p, top: p.top.slice(0, 20) }));
    const v = judge({
      job: judgeJob(c),
      scores: { positions },
      expectedPromptTokenIds: r.expectedPromptTokenIds,
      modelInfo: { ...r.modelInfo, sampler: 'aipg-sampler-v1' },
    });
    expect(codes(v)).toContain(HardReason.greedyMismatch);
  });

  test('a seeded job from a worker whose sampler cannot be replayed is checked as unseeded', async () => {
    // Sampled by another RNG (an unseeded run), claimed with a seed.
    const c = await honest(chat('Tell me a story'), sampled(40, 1, 0.95));
    const claimed = recommit(c, { params: { ...c.params, seed: 1234 } });
    const r = await checked(claimed);
    const args = {
      job: judgeJob(claimed),
      scores: r.scores,
      expectedPromptTokenIds: r.expectedPromptTokenIds,
    };
    const unknown = judge({ ...args, modelInfo: { ...r.modelInfo, sampler: 'unknown' } });
    expect(unknown.verdict).toBe('pass');
    expect(unknown.evidence.sampling).toBe('sampled');
    expect(unknown.soft.map((s) => s.code)).toContain(SoftSignal.samplerNotReplayed);
    const canonical = judge({ ...args, modelInfo: { ...r.modelInfo, sampler: 'aipg-sampler-v1' } });
    expect(codes(canonical)).toContain(HardReason.seededMismatch);
  });
});

describe('the replay agrees with the engine', () => {
  test("with no tolerance, the judge's seeded check is engine.score's replayCheck", async () => {
    const c = await honest(chat('Tell me about stars'), seeded(31, 48, 0.9, 0.9));
    const cheat = fabricateOther(c, await honest(chat('hi'), seeded(32, 48, 0.9, 0.9)), vocab);
    let compared = 0;
    for (const job of [c, cheat]) {
      const s = await worker.score({
        promptTokenIds: job.promptTokenIds,
        outputTokenIds: job.outputTokenIds,
        topK: worker.vocabSize,
        params: job.params,
      });
      s.positions.forEach((p, i) => {
        const r = seededCheck(
          positionView(p, worker.vocabSize),
          { temperature: job.params.temperature, topP: job.params.topP, seed: job.params.seed! },
          i,
          { logitNoise: 0, topPSlack: 0 },
        );
        expect(r.distance).toBeCloseTo(p.replay!.distance, 9);
        expect(r.expectedTokenId).toBe(p.replay!.expectedTokenId);
        compared++;
      });
    }
    expect(compared).toBeGreaterThan(20);
  });

  test('honest scores moved by up to the noise budget never fail; beyond it cheats still do', async () => {
    const rand = prng(23);
    const jitter = (positions: readonly ScoredPosition[], noise: number) =>
      positions.map((p) => {
        const moved = p.top.map((t) => ({
          tokenId: t.tokenId,
          probability: t.probability * Math.exp((2 * rand() - 1) * noise),
        }));
        const z = moved.reduce((a, t) => a + t.probability, 0);
        const top = moved
          .map((t) => ({ ...t, probability: t.probability / z }))
          .sort((a, b) => b.probability - a.probability);
        const at = top.findIndex((t) => t.tokenId === p.tokenId);
        return { ...p, probability: top[at]!.probability, rank: at, top };
      });
    for (let i = 0; i < 12; i++) {
      const params = i % 3 === 0 ? greedy(40) : seeded(100 + i, 40, 0.3 + 0.08 * i, i % 2 ? 0.8 : 1);
      const c = await honest(chat(`noise ${i}`), params);
      const r = await checked(c);
      const v = judge({
        job: judgeJob(c),
        scores: { positions: jitter(r.scores!.positions, DEFAULT_THRESHOLDS.logitNoise) },
        expectedPromptTokenIds: r.expectedPromptTokenIds,
        modelInfo: { ...r.modelInfo, sampler: 'aipg-sampler-v1' },
      });
      expect(v.reasons, JSON.stringify(params)).toEqual([]);
    }
  });
});

describe('evidence', () => {
  test('canonical JSON sorts keys and is stable', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 'x', c: undefined }, null], e: -0.5 })).toBe(
      '{"a":[{"d":"x"},null],"b":1,"e":-0.5}',
    );
    expect(canonicalJson(Number.NEGATIVE_INFINITY)).toBe('"-Infinity"');
    const reasons = [{ code: 'GREEDY_MISMATCH', position: 3, detail: 'x' }];
    expect(evidenceHash(reasons)).toBe(evidenceHash([{ detail: 'x', position: 3, code: 'GREEDY_MISMATCH' }]));
    expect(evidenceHash(reasons)).toBe(
      keccak256(toBytes('[{"code":"GREEDY_MISMATCH","detail":"x","position":3}]')),
    );
  });

  test('a failing verdict hashes its reasons; positions are capped per code', async () => {
    const c = await honest(chat('hi there'), greedy(40));
    const v = await audit(checker, fabricateRandom(c, prng(9), vocab));
    expect(v.evidenceHash).toBe(evidenceHash(v.reasons));
    const greedyReasons = v.reasons.filter((r) => r.code === HardReason.greedyMismatch);
    expect(greedyReasons.filter((r) => r.position !== undefined).length).toBeLessThanOrEqual(8);
    if (greedyReasons.length > 8) expect(greedyReasons.at(-1)!.detail).toMatch(/more positions/);
  });

  test('refuses scores from another model or for other tokens', async () => {
    const c = await honest(chat('hi'), greedy(10));
    const r = await checked(c);
    const base = { job: judgeJob(c), scores: r.scores, expectedPromptTokenIds: r.expectedPromptTokenIds };
    expect(() =>
      judge({
        ...base,
        modelInfo: { ...r.modelInfo, modelId: `0x${'11'.repeat(32)}`, sampler: 'aipg-sampler-v1' },
      }),
    ).toThrow(/another model/);
    const shifted = { positions: r.scores!.positions.slice(1) };
    expect(() =>
      judge({ ...base, scores: shifted, modelInfo: { ...r.modelInfo, sampler: 'aipg-sampler-v1' } }),
    ).toThrow(/do not cover/);
  });
});
