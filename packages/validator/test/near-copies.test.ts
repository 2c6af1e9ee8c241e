/**
 * Cheats that stay close to the registered model, on the model the thresholds are calibrated for
 * (`small`) and on the context-sensitive preset: re-quantized twins run under the registered
 * weights hash, and a worker that drops the system message. The honest worker on the same jobs
 * never fails.
 */
import type { SamplingParams } from '@aipg/core';
import { createLlamaEngine, type LlamaEngine } from '@aipg/inference';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createModelFiles } from '../src/checkers/models.ts';
import { createReexecuteChecker } from '../src/checkers/reexecute.ts';
import type { Checker } from '../src/checkers/types.ts';
import { HardReason, judge, type Verdict } from '../src/judge/judge.ts';
import {
  type AuditCase,
  audit,
  checkRequest,
  greedy,
  type JobInput,
  judgeJob,
  MODEL_DIR,
  presetModel,
  recommit,
  runJob,
  seeded,
} from './fixtures/jobs.ts';
import { twinModel } from './fixtures/twins.ts';

let small: Awaited<ReturnType<typeof presetModel>>;
let context: Awaited<ReturnType<typeof presetModel>>;
let worker: LlamaEngine;
let contextWorker: LlamaEngine;
let checker: Checker;

beforeAll(async () => {
  small = await presetModel('small');
  context = await presetModel('context');
  worker = await createLlamaEngine({ modelPath: small.path, threads: 1, contextSize: 1024 });
  contextWorker = await createLlamaEngine({ modelPath: context.path, threads: 1, contextSize: 1024 });
  checker = createReexecuteChecker({
    models: createModelFiles({ dir: MODEL_DIR, files: [small.path, context.path] }),
    threads: 1,
    contextSize: 1024,
  });
});
afterAll(async () => {
  await checker?.close();
  await worker?.close();
  await contextWorker?.close();
});

const chat = (content: string, system?: string): Extract<JobInput, { kind: 'chat' }> => ({
  kind: 'chat',
  messages: [...(system ? [{ role: 'system' as const, content: system }] : []), { role: 'user', content }],
});
const codes = (v: Verdict) => [...new Set(v.reasons.map((r) => r.code))];
const same = (a: AuditCase, b: AuditCase) =>
  JSON.stringify(a.outputTokenIds) === JSON.stringify(b.outputTokenIds);

describe('re-quantized twins of small, claimed as small', () => {
  const jobs: [JobInput, SamplingParams][] = Array.from({ length: 12 }, (_, i) => [
    chat(`Question ${i}: where does the ${['road', 'river', 'light', 'key'][i % 4]} go?`),
    i % 3 === 0 ? greedy(128) : seeded(40 + i, 128, [0.5, 0.8, 1][i % 3]!, 1),
  ]);

  test('the honest worker passes every job', async () => {
    for (const [input, params] of jobs) {
      const v = await audit(checker, await runJob(worker, small, input, params));
      expect(v.reasons, JSON.stringify(params)).toEqual([]);
      expect(v.evidence.stats.overRepeatNoise).toBe(0);
    }
  });

  for (const bits of [4, 5, 6]) {
    // 4 and 5 bits fail at any length; 6 bits needs tokens (the detection curve in the README).
    const minTokens = bits === 6 ? 64 : 1;
    test(`${bits}-bit: every cheat of ${minTokens}+ tokens fails`, async () => {
      const twin = await twinModel('small', { kind: 'requant', bits });
      const engine = await createLlamaEngine({ modelPath: twin.path, threads: 1, contextSize: 1024 });
      try {
        let counted = 0;
        let perTokenOnly = 0;
        for (const [input, params] of jobs) {
          const cheat = await runJob(engine, small, input, params);
          const honest = await runJob(worker, small, input, params);
          if (same(cheat, honest) || cheat.outputTokenIds.length < minTokens) continue;
          counted++;
          const r = await checker.check(checkRequest(cheat));
          const base = {
            job: judgeJob(cheat),
            scores: r.scores,
            expectedPromptTokenIds: r.expectedPromptTokenIds,
            modelInfo: r.modelInfo,
          };
          const v = judge(base);
          expect(v.verdict, `${bits}-bit ${JSON.stringify(params)}`).toBe('fail');
          expect(
            codes(v).every((c) =>
              (
                [
                  HardReason.greedyMismatch,
                  HardReason.seededMismatch,
                  HardReason.outsideTopP,
                  HardReason.repeatedMismatch,
                ] as string[]
              ).includes(c),
            ),
          ).toBe(true);
          // Without the sequence rule (the per-token budget alone).
          if (judge({ ...base, thresholds: { repeatMinCount: Number.POSITIVE_INFINITY } }).verdict === 'fail')
            perTokenOnly++;
        }
        expect(counted).toBeGreaterThanOrEqual(4);
        // 6 bits is below the per-token budget: only the count of tokens over repeatNoise sees it.
        if (bits === 6) expect(perTokenOnly).toBeLessThan(counted);
      } finally {
        await engine.close();
      }
    });
  }
});

describe('a worker that drops the system message (runs the job without it, commits the full prompt)', () => {
  const systems = [
    'You write about rivers, bridges and the sea.',
    'Be precise.',
    'Speak of stake, proof and every validator of the chain.',
    'Talk about music and stars.',
  ];
  const jobs = systems.flatMap((system, i): [Extract<JobInput, { kind: 'chat' }>, SamplingParams][] => [
    [chat(`Tell me ${i} things about the world`, system), greedy(32)],
    [chat(`What does the ${['key', 'road', 'sea', 'star'][i]} need?`, system), seeded(60 + i, 32, 0.9, 1)],
  ]);
  const dropped = (input: Extract<JobInput, { kind: 'chat' }>): JobInput => ({
    kind: 'chat',
    messages: input.messages.filter((m) => m.role !== 'system'),
  });
  async function dropper(
    engine: LlamaEngine,
    model: typeof small,
    input: Extract<JobInput, { kind: 'chat' }>,
    params: SamplingParams,
  ) {
    const honest = await runJob(engine, model, input, params);
    const ran = await runJob(engine, model, dropped(input), params);
    return {
      honest,
      cheat: recommit(honest, { outputTokenIds: ran.outputTokenIds, finishReason: ran.finishReason }),
    };
  }

  test('on the context preset: every one fails, the honest worker passes', async () => {
    for (const [input, params] of jobs) {
      const { honest, cheat } = await dropper(contextWorker, context, input, params);
      expect(same(honest, cheat)).toBe(false);
      expect((await audit(checker, honest)).reasons).toEqual([]);
      const v = await audit(checker, cheat);
      expect(v.verdict, JSON.stringify(params)).toBe('fail');
      // The prompt ids are the gateway's and they are right: the output is what betrays the cheat.
      expect(codes(v)).not.toContain(HardReason.promptMismatch);
    }
  });

  test('on small the system message hardly matters: most such cheats are not even visible', async () => {
    let visible = 0;
    for (const [input, params] of jobs) {
      const { honest, cheat } = await dropper(worker, small, input, params);
      if (!same(honest, cheat)) visible++;
    }
    expect(visible).toBeLessThan(jobs.length);
  });
});
