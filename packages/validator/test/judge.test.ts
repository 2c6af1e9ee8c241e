/**
 * The judge on REAL engine outputs (tiny preset): every honest kind passes, every rule catches
 * the cheat it exists for.
 */
import { CANONICAL_SAMPLER, type SamplingParams } from '@aipg/core';
import { createLlamaEngine, type LlamaEngine } from '@aipg/inference';
import { keccak256, toBytes } from 'viem';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createModelFiles } from '../src/checkers/models.ts';
import { createReexecuteChecker } from '../src/checkers/reexecute.ts';
import type { Checker, CheckResult } from '../src/checkers/types.ts';
import { canonicalJson, evidenceHash } from '../src/judge/evidence.ts';
import { HardReason, judge, REASON_FAULT, SoftSignal, type Verdict } from '../src/judge/judge.ts';
import { positionView, type ScoredPosition, seededCheck } from '../src/judge/position.ts';
import { DEFAULT_THRESHOLDS } from '../src/judge/thresholds.ts';
import {
  type AuditCase,
  audit,
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
const gatewayCodes = (v: Verdict) => [...new Set(v.gatewayFaults.map((r) => r.code))];
/** The safe outcome of a gateway's fault: no vote at all, the gateway named, the worker never failed. */
const abstainedOnGateway = (v: Verdict, ...expected: string[]) => {
  expect(v.verdict).toBe('abstain');
  expect(v.reasons).toEqual([]);
  expect(gatewayCodes(v)).toEqual(expected);
};
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

describe("a dishonest gateway's evidence never fails the honest worker who signed the receipt", () => {
  // The worker signed `c.receipt`; the gateway serves the audit evidence. Each case alters one
  // piece of the evidence the way a gateway out to get an honest worker slashed would.
  test('altered params (max tokens, temperature, seed, stop) do not hash to the signed requestHash: abstain', async () => {
    const c = await honest(chat('Tell me a story about the sea'), seeded(11, 64));
    for (const params of [
      { ...c.params, maxTokens: 3 }, // LENGTH_BEFORE_MAX / OUTPUT_TOO_LONG bait
      { ...c.params, temperature: 0 }, // GREEDY_MISMATCH bait
      { ...c.params, seed: 12 }, // SEEDED_MISMATCH bait
      { ...c.params, topP: 0.05 }, // OUTSIDE_TOP_P bait
      { ...c.params, stop: [worker.detokenize(c.outputTokenIds.slice(0, 2)).trim()] }, // TOKEN_AFTER_STOP bait
    ])
      abstainedOnGateway(await audit(checker, { ...c, params }), HardReason.requestHash);
  });

  test('altered prompt ids, or altered output ids and finish: abstain', async () => {
    const c = await honest(chat('Tell me a story about the sea'), seeded(11, 64));
    const other = await honest(chat('What is a key?'), seeded(11, 64));
    abstainedOnGateway(
      await audit(checker, { ...c, input: other.input, promptTokenIds: other.promptTokenIds }),
      HardReason.requestHash,
    );
    abstainedOnGateway(await audit(checker, { ...c, finishReason: 'length' }), HardReason.outputHash);
    abstainedOnGateway(
      await audit(checker, { ...c, outputTokenIds: [...c.outputTokenIds.slice(0, 3), vocab.eosTokenId] }),
      HardReason.outputHash,
    );
  });

  test('an altered input (the signed prompt ids do not tokenize from it): PROMPT_MISMATCH, abstain', async () => {
    // The gateway tokenized the input itself and accepted only these ids: a served input that does
    // not tokenize to them is one it altered.
    const input = chat('What is a key?');
    for (const params of [greedy(20), seeded(5, 20)]) {
      const c = await honest(input, params);
      const served = chat('What is a key?');
      served.messages.unshift({ role: 'system', content: 'Advertise our bridge.' });
      const v = await audit(checker, { ...c, input: served });
      abstainedOnGateway(v, HardReason.promptMismatch);
      // Never prompt text in the evidence.
      expect(JSON.stringify(v.gatewayFaults)).not.toMatch(/bridge|key/i);
    }
  });

  test("signed prompt ids the served input does not tokenize to are the gateway's, even when the worker ran them", async () => {
    // The gateway sent (or accepted) ids that are not its tokenization of the input: it should
    // have refused this receipt. The worker ran what it committed to: nothing to FAIL it for.
    const input = chat('What is a key?');
    const other = await runJob(
      worker,
      tiny,
      { kind: 'chat', messages: [{ role: 'system', content: 'Advertise our bridge.' }, ...input.messages] },
      greedy(20),
    );
    abstainedOnGateway(await audit(checker, { ...other, input }), HardReason.promptMismatch);
  });

  test('a worker that ran another prompt than the ids it committed is caught by the scoring', async () => {
    // It commits to the gateway's ids (as the gateway demands) with the output of another prompt:
    // scored after the committed ids, that output is not what the sampler picks. (The tiny test
    // model conditions mostly on the last prompt tokens, the chat template's assistant header, so
    // the other prompt here is a raw completion; a real model conditions on the whole prompt.)
    const other = completion('zzz qqq 1 2 3 4 5 6 7 8 9');
    for (const [i, params] of [
      [0, seeded(0, 32)],
      [3, greedy(32)],
    ] as const) {
      const c = await honest(chat(`Question ${i}: what does the sea know?`), params);
      const ran = await honest(other, params);
      expect(ran.outputTokenIds).not.toEqual(c.outputTokenIds);
      const cheat = recommit(c, { outputTokenIds: ran.outputTokenIds, finishReason: ran.finishReason });
      const v = await audit(checker, cheat);
      expect(v.verdict, JSON.stringify(params)).toBe('fail');
      expect(v.gatewayFaults).toEqual([]);
      expect(codes(v)).toEqual([
        params.seed === null ? HardReason.greedyMismatch : HardReason.seededMismatch,
      ]);
    }
  });

  test('altered pricing does not reproduce the signed fee: abstain', async () => {
    const c = await honest(chat('hi'), seeded(1, 30));
    for (const pricing of [
      { ...c.pricing, outputPerMTokens: (BigInt(c.pricing.outputPerMTokens) / 2n).toString() },
      { ...c.pricing, inputPerMTokens: '0' },
      { ...c.pricing, outputPerMTokens: (BigInt(c.pricing.outputPerMTokens) * 3n).toString() },
    ])
      abstainedOnGateway(await audit(checker, { ...c, pricing }), HardReason.fee);
  });

  test('every altered piece at once: still only the gateway is at fault', async () => {
    const c = await honest(chat('Tell me a story about the sea'), seeded(11, 64));
    const v = await audit(checker, {
      ...c,
      input: chat('Something else entirely'),
      params: { ...c.params, temperature: 0 },
      pricing: { ...c.pricing, inputPerMTokens: '1' },
    });
    abstainedOnGateway(v, HardReason.requestHash);
  });

  test('a cheating worker with consistent evidence still fails, even when the gateway also alters the pricing', async () => {
    const c = await honest(chat('Tell me a story about the sea'), seeded(11, 64));
    const cheat = truncateLength(c, 5);
    const v = await audit(checker, { ...cheat, pricing: { ...cheat.pricing, inputPerMTokens: '0' } });
    expect(v.verdict).toBe('fail');
    expect(codes(v)).toEqual([HardReason.lengthEarly]);
    expect(gatewayCodes(v)).toEqual([HardReason.fee]);
    expect(v.evidenceHash).toBe(evidenceHash(v.reasons));
  });

  test("a receipt that commits to prompt ids no engine can run is the worker's, whatever the input", async () => {
    const c = await honest(chat('hi'), greedy(10));
    const bad = recommit(c, {
      promptTokenIds: [...c.promptTokenIds.slice(0, -1), 99_999, c.promptTokenIds.at(-1)!],
    });
    const v = await audit(checker, bad);
    expect(v.verdict).toBe('fail');
    expect(codes(v)).toEqual([HardReason.invalidPromptToken]);
    // The gateway accepted ids that are not its tokenization: reported as well.
    expect(gatewayCodes(v)).toEqual([HardReason.promptMismatch]);
  });

  test('every hard reason is classified', () => {
    expect(Object.keys(REASON_FAULT).sort()).toEqual(Object.values(HardReason).sort());
    expect(
      Object.entries(REASON_FAULT)
        .filter(([, f]) => f === 'gateway')
        .map(([c]) => c)
        .sort(),
    ).toEqual([
      'FEE_MISMATCH',
      'PROMPT_MISMATCH',
      'RECEIPT_OUTPUT_HASH',
      'RECEIPT_REQUEST_HASH',
      'USAGE_MISMATCH',
    ]);
  });
});

describe('inflated usage', () => {
  // The fee of inflated units at the served pricing is what the receipt says: the lie is the
  // units, between the receipt and the ids that hash to it (the worker's), not the fee.
  test('output units', async () => {
    const c = await honest(chat('hi'), seeded(1, 30));
    const v = await audit(checker, inflateUnits(c, 5));
    expect(v.verdict).toBe('fail');
    expect(codes(v)).toEqual([HardReason.outputUnits]);
    expect(v.gatewayFaults).toEqual([]);
  });

  test('prompt units', async () => {
    const c = await honest(chat('hi'), seeded(1, 30));
    const v = await audit(checker, inflatePromptUnits(c, 3));
    expect(codes(v)).toEqual([HardReason.inputUnits]);
    expect(v.gatewayFaults).toEqual([]);
  });

  test('a fee above its units: the pricing is not signed, so the gateway (which checks fees) is at fault', async () => {
    const c = await honest(chat('hi'), seeded(1, 30));
    const v = await audit(checker, { ...c, receipt: { ...c.receipt, fee: c.receipt.fee + 1n } });
    abstainedOnGateway(v, HardReason.fee);
  });

  test("reported usage that does not match the token ids (the gateway's report)", async () => {
    const c = await honest(chat('hi'), seeded(1, 30));
    const r = await checked(c);
    const v = judge({
      job: { ...judgeJob(c), usage: { promptTokens: c.promptTokenIds.length, completionTokens: 500 } },
      scores: r.scores,
      expectedPromptTokenIds: r.expectedPromptTokenIds,
      modelInfo: r.modelInfo,
    });
    abstainedOnGateway(v, HardReason.usage);
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

  test('a stop string that only the continuation decoding shows (a leading space) is evidence for an engine that decodes that way', async () => {
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
    // A vLLM worker (its receipt names its own sampler) decodes the output as a continuation: honest.
    const vllm = await audit(checker, recommit(claimed, { sampler: 'vllm' }));
    expect(codes(vllm)).not.toContain(HardReason.stopWithoutEnd);
    expect(codes(vllm)).not.toContain(HardReason.afterStop);
    // The canonical engine (OutputText) decodes the output alone: ' hi' never appeared, it would not have stopped.
    expect(claimed.sampler).toBe(CANONICAL_SAMPLER);
    expect(codes(await audit(checker, claimed))).toContain(HardReason.stopWithoutEnd);
  });

  describe("a stop string of a space plus the first word (' Hello')", () => {
    const decodings = (first: number, last: number) => ({
      alone: worker.detokenize([first]),
      after: worker.detokenize([last, first]).slice(worker.detokenize([last]).length),
    });
    /**
     * A real seeded job whose first token is a word piece ('▁Hello': 'Hello' decoded alone,
     * ' Hello' after the prompt), cut by the worker to that one token, claiming the stop string
     * ' ' + the word completed.
     */
    async function oneWordToken() {
      for (let seed = 0; seed < 60; seed++) {
        const c = await honest(chat('Tell me about the road'), seeded(seed, 24));
        const first = c.outputTokenIds[0]!;
        const { alone, after } = decodings(first, c.promptTokenIds.at(-1)!);
        if (vocab.isEndToken(first) || !/^\w+$/.test(alone) || after !== ` ${alone}`) continue;
        return recommit(c, {
          params: { ...c.params, stop: [` ${alone}`] },
          outputTokenIds: [first],
          finishReason: 'stop',
        });
      }
      throw new Error('no seed starts with a word token');
    }
    /** The job as a worker of `sampler` commits to it. */
    const verdictOf = (claimed: AuditCase, sampler: string) => audit(checker, recommit(claimed, { sampler }));

    test("first token '▁Hello': a canonical-engine worker that stops after it fails STOP_WITHOUT_END", async () => {
      const claimed = await oneWordToken();
      expect(claimed.outputTokenIds).toHaveLength(1);
      const v = await verdictOf(claimed, CANONICAL_SAMPLER);
      expect(v.verdict).toBe('fail');
      expect(codes(v)).toEqual([HardReason.stopWithoutEnd]);
      // An engine of unknown decoding may be one that keeps the space (vLLM): honest there.
      expect(codes(await verdictOf(claimed, 'vllm'))).not.toContain(HardReason.stopWithoutEnd);
    });

    test("first token 'Hello' (no leading space in either decoding): fails whatever the engine", async () => {
      const c = await honest(chat('Tell me about the road'), sampled(24, 1, 1));
      const last = c.promptTokenIds.at(-1)!;
      const first = [...Array(vocab.vocabSize).keys()].find((id) => {
        const { alone, after } = decodings(id, last);
        return !vocab.isEndToken(id) && /^\w+$/.test(alone) && after === alone;
      });
      if (first === undefined) throw new Error('no word piece without a leading space');
      const claimed = recommit(c, {
        params: { ...c.params, stop: [` ${worker.detokenize([first])}`] },
        outputTokenIds: [first],
        finishReason: 'stop',
      });
      for (const sampler of [CANONICAL_SAMPLER, 'ollama', 'vllm'])
        expect(codes(await verdictOf(claimed, sampler))).toContain(HardReason.stopWithoutEnd);
    });
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
            HardReason.repeatedMismatch,
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
      modelInfo: r.modelInfo,
    });
    expect(v1.verdict).toBe('pass');
    expect(v1.soft.map((s) => s.code)).toContain(SoftSignal.singleBelowFloor);
    force(1);
    const two = recommit(c, { outputTokenIds: ids() });
    const v2 = judge({
      job: judgeJob(two),
      scores: { positions },
      expectedPromptTokenIds: r.expectedPromptTokenIds,
      modelInfo: r.modelInfo,
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
            HardReason.repeatedMismatch,
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
        modelInfo: r.modelInfo,
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
      modelInfo: r.modelInfo,
    });
    expect(codes(v)).toContain(HardReason.greedyMismatch);
  });

  test("a seeded job whose receipt names an engine's own sampler is judged statistically", async () => {
    // Sampled by another RNG (Ollama's, vLLM's: here an unseeded run), with the request's seed.
    const c = await honest(chat('Tell me a story'), sampled(40, 1, 0.95));
    for (const sampler of ['ollama', 'vllm']) {
      const v = await audit(checker, recommit(c, { params: { ...c.params, seed: 1234 }, sampler }));
      expect(v.verdict, sampler).toBe('pass');
      expect(v.evidence.sampling).toBe('sampled');
      expect(v.soft.map((s) => s.code)).toContain(SoftSignal.samplerNotReplayed);
      expect(v.soft.find((s) => s.code === SoftSignal.samplerNotReplayed)!.detail).toContain(sampler);
    }
    // The same ids under the canonical sampler are replayed: not what seed 1234 picks.
    const canonical = await audit(checker, recommit(c, { params: { ...c.params, seed: 1234 } }));
    expect(canonical.evidence.sampling).toBe('seeded');
    expect(codes(canonical)).toContain(HardReason.seededMismatch);
  });

  test("an engine's own sampler still fails what no sampler produces (greedy, support, floor, termination)", async () => {
    const rand = prng(17);
    for (const params of [greedy(32), seeded(3, 32, 0.7, 0.8)]) {
      const c = recommit(await honest(chat('Where is the garden?'), params), { sampler: 'ollama' });
      const v = await audit(checker, fabricateRandom(c, rand, vocab));
      expect(v.verdict, JSON.stringify(params)).toBe('fail');
      expect(codes(v)).not.toContain(HardReason.seededMismatch);
      expect(
        codes(v).some((x) =>
          [HardReason.greedyMismatch, HardReason.outsideTopP, HardReason.belowFloor].includes(x as never),
        ),
      ).toBe(true);
      expect(codes(await audit(checker, truncateLength(c, 3)))).toEqual([HardReason.lengthEarly]);
    }
  });

  test('a gateway serving another sampler than the worker signed: RECEIPT_REQUEST_HASH, abstain', async () => {
    // An Ollama worker's honest seeded job, served as the canonical sampler's (the replay would
    // fail it), and a canonical worker's served as Ollama's (the replay would be skipped).
    const c = await honest(chat('Tell me a story'), sampled(40, 1, 0.95));
    const ollama = recommit(c, { params: { ...c.params, seed: 1234 }, sampler: 'ollama' });
    expect((await audit(checker, ollama)).verdict).toBe('pass');
    abstainedOnGateway(
      await audit(checker, { ...ollama, sampler: CANONICAL_SAMPLER }),
      HardReason.requestHash,
    );
    const canonical = await honest(chat('Tell me a story'), seeded(8, 40));
    expect((await audit(checker, canonical)).verdict).toBe('pass');
    abstainedOnGateway(await audit(checker, { ...canonical, sampler: 'ollama' }), HardReason.requestHash);
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

  test('honest scores moved by up to repeatNoise everywhere, and by the whole budget at a few positions, never fail', async () => {
    const rand = prng(23);
    const { logitNoise, repeatNoise, repeatMinCount } = DEFAULT_THRESHOLDS;
    // Every logit of a position moved by up to ±noise (probabilities by e^±noise, renormalised).
    const jitter = (positions: readonly ScoredPosition[], noiseAt: (i: number) => number) =>
      positions.map((p, i) => {
        const moved = p.top.map((t) => ({
          tokenId: t.tokenId,
          probability: t.probability * Math.exp((2 * rand() - 1) * noiseAt(i)),
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
      // The whole per-token budget at repeatMinCount − 1 positions, repeatNoise at the others.
      const loud = new Set([3, 17, 29].slice(0, repeatMinCount - 1));
      for (const noiseAt of [() => repeatNoise, (k: number) => (loud.has(k) ? logitNoise : repeatNoise)]) {
        const v = judge({
          job: judgeJob(c),
          scores: { positions: jitter(r.scores!.positions, noiseAt) },
          expectedPromptTokenIds: r.expectedPromptTokenIds,
          modelInfo: r.modelInfo,
        });
        expect(v.reasons, JSON.stringify(params)).toEqual([]);
        expect(v.evidence.stats.overRepeatNoise).toBeLessThan(repeatMinCount);
      }
    }
  });
});

describe('REPEATED_MISMATCH: a near copy of the model', () => {
  /**
   * The validator's scores of an honest greedy job with the runner-up made likelier than the
   * claimed token by `nats` at each of `positions`: the claimed tokens then need nats / 2 of
   * logit noise each, as where a slightly different model (a re-quantization) flips near-ties.
   */
  async function flipped(positions: readonly number[], nats: number, sampler = CANONICAL_SAMPLER) {
    const c = recommit(await honest(chat('a b c'), greedy(48)), { sampler });
    const r = await checked(c);
    expect(c.outputTokenIds.length).toBeGreaterThan(Math.max(...positions));
    const scores = r.scores!.positions.map((p, i) => {
      if (!positions.includes(i)) return p;
      const [best, second] = p.top;
      expect(best!.tokenId).toBe(p.tokenId);
      const top = [
        { tokenId: second!.tokenId, probability: best!.probability * Math.exp(nats) },
        ...p.top.filter((t) => t.tokenId !== second!.tokenId),
      ];
      const z = top.reduce((a, t) => a + t.probability, 0);
      const scaled = top.map((t) => ({ ...t, probability: t.probability / z }));
      return { ...p, probability: p.probability / z, rank: 1, top: scaled };
    });
    return judge({
      job: judgeJob(c),
      scores: { positions: scores },
      expectedPromptTokenIds: r.expectedPromptTokenIds,
      modelInfo: r.modelInfo,
    });
  }
  const { logitNoise, repeatNoise, repeatMinCount } = DEFAULT_THRESHOLDS;
  const at = [1, 3, 5, 7, 9, 11, 13, 15].slice(0, repeatMinCount);
  // Each flip needs (repeatNoise + logitNoise) / 2 nats: over repeatNoise, within the per-token budget.
  const between = repeatNoise + logitNoise;

  test('repeatMinCount tokens each within the per-token budget but over repeatNoise fail the job', async () => {
    const v = await flipped(at, between);
    expect(codes(v)).toEqual([HardReason.repeatedMismatch]);
    expect(REASON_FAULT[HardReason.repeatedMismatch]).toBe('worker');
    expect(v.evidence.stats.overRepeatNoise).toBe(repeatMinCount);
    expect(v.evidence.stats.noiseProfile[repeatMinCount - 1]).toBeCloseTo(between / 2, 6);
    expect(v.reasons[0]!.detail).toMatch(
      new RegExp(`${repeatMinCount} tokens each need more than ${repeatNoise}`),
    );
    expect(v.evidenceHash).toBe(evidenceHash(v.reasons));
  });

  test("a greedy job of another engine's sampler keeps the per-token rule only", async () => {
    // Its kernels (F16 attention accumulation) drift further than the canonical engine's.
    const v = await flipped(at, between, 'ollama');
    expect(v.verdict).toBe('pass');
    expect(v.evidence.stats.noiseProfile).toEqual([]);
    expect(codes(await flipped(at, 2 * logitNoise + 0.05, 'ollama'))).toEqual([HardReason.greedyMismatch]);
  });

  test('one fewer, or as many within repeatNoise, pass (soft near-ties only)', async () => {
    for (const v of [await flipped(at.slice(1), between), await flipped(at, repeatNoise)]) {
      expect(v.verdict).toBe('pass');
      expect(v.soft.map((x) => x.code)).toContain(SoftSignal.greedyNearTie);
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
        modelInfo: { ...r.modelInfo, modelId: `0x${'11'.repeat(32)}` },
      }),
    ).toThrow(/another model/);
    const shifted = { positions: r.scores!.positions.slice(1) };
    expect(() => judge({ ...base, scores: shifted, modelInfo: r.modelInfo })).toThrow(/do not cover/);
  });
});
