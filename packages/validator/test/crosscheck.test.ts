/**
 * The cross-check checker against an in-test gateway whose `POST /v1/audit/score` is answered by
 * another worker's REAL engine; compared with re-execution on the same jobs.
 */
import { CANONICAL_SAMPLER, type SamplingParams } from '@aipg/core';
import { createLlamaEngine, type LlamaEngine } from '@aipg/inference';
import type { Address } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createCrosscheckChecker } from '../src/checkers/crosscheck.ts';
import { createModelFiles } from '../src/checkers/models.ts';
import { createReexecuteChecker } from '../src/checkers/reexecute.ts';
import type { Checker } from '../src/checkers/types.ts';
import { ValidatorError } from '../src/errors.ts';
import { auditRequestMessage, createAuditClient } from '../src/gateway/client.ts';
import { HardReason } from '../src/judge/judge.ts';
import { type AuditGateway, type GatewayJob, startAuditGateway } from './fixtures/audit-gateway.ts';
import {
  type AuditCase,
  audit,
  checkRequest,
  fabricateRandom,
  GATEWAY,
  greedy,
  type JobInput,
  MODEL_DIR,
  presetModel,
  prng,
  runJob,
  seeded,
  truncateWithEnd,
  variantModel,
  WORKER,
} from './fixtures/jobs.ts';

// anvil's public test keys (never for real funds)
const VALIDATOR = privateKeyToAccount('0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a');
const STRANGER = privateKeyToAccount('0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6');
const SCORER: Address = '0x976EA74026E726554dB657fA54763abd0C3a0aa9';

let tiny: Awaited<ReturnType<typeof presetModel>>;
let worker: LlamaEngine;
let scorerEngine: LlamaEngine;
let substitute: LlamaEngine;
let gateway: AuditGateway;
let crosscheck: Checker;
let reexecute: Checker;
let vocab: { vocabSize: number; eosTokenId: number; isEndToken(id: number): boolean };

beforeAll(async () => {
  tiny = await presetModel('tiny');
  const other = await variantModel('tiny', { seed: 0xbeef });
  worker = await createLlamaEngine({ modelPath: tiny.path, threads: 1, contextSize: 1024 });
  scorerEngine = await createLlamaEngine({ modelPath: tiny.path, threads: 1, contextSize: 1024 });
  substitute = await createLlamaEngine({ modelPath: other.path, threads: 1, contextSize: 1024 });
  gateway = await startAuditGateway({
    gateway: GATEWAY,
    validators: [VALIDATOR.address],
    scorer: { engine: scorerEngine, worker: SCORER },
  });
  const models = createModelFiles({ dir: MODEL_DIR, files: [tiny.path] });
  crosscheck = createCrosscheckChecker({
    models,
    client: createAuditClient({ url: gateway.url, gateway: GATEWAY, account: VALIDATOR }),
  });
  reexecute = createReexecuteChecker({ models, threads: 1, contextSize: 1024 });
  vocab = { vocabSize: worker.vocabSize, eosTokenId: worker.eosTokenId, isEndToken: worker.isEndToken };
});
afterAll(async () => {
  await crosscheck?.close();
  await reexecute?.close();
  await gateway?.close();
  await worker?.close();
  await scorerEngine?.close();
  await substitute?.close();
});

const chat = (content: string): JobInput => ({ kind: 'chat', messages: [{ role: 'user', content }] });
const unseeded = (maxTokens: number): SamplingParams => ({
  maxTokens,
  temperature: 0.9,
  topP: 0.85,
  seed: null,
  stop: [],
});

describe('cross-check', () => {
  test('honest jobs pass, scored by another worker, through signed requests', async () => {
    for (const params of [greedy(40), seeded(3, 48, 0.8, 0.9), seeded(4, 48, 1.1, 1), unseeded(48)]) {
      const c = await runJob(worker, tiny, chat('Tell me about the river'), params);
      const r = await crosscheck.check(checkRequest(c));
      expect(r.scorer).toBe(SCORER);
      const v = await audit(crosscheck, c);
      expect(v.reasons, JSON.stringify(params)).toEqual([]);
    }
    const scoreRequests = gateway.requests.filter((r) => r.path === '/v1/audit/score');
    expect(scoreRequests.length).toBeGreaterThan(0);
    for (const r of scoreRequests) {
      expect(r.status).toBe(200);
      expect(r.validator).toBe(VALIDATOR.address);
      const body = r.body as { exclude_worker: string; top_k: number; model_id: string };
      expect(body.exclude_worker).toBe(WORKER);
      expect(body.top_k).toBe(520); // the whole tiny vocabulary (< MAX_SCORE_TOP_K): cross-check sees every token
      expect(body.model_id).toBe(tiny.modelId);
    }
  });

  test('the same verdicts as re-execution, honest and dishonest (top-64 vs the full distribution)', async () => {
    const rand = prng(17);
    const cases: AuditCase[] = [];
    for (let i = 0; i < 4; i++) {
      const params = i % 2 ? seeded(i, 40) : greedy(40);
      const honest = await runJob(worker, tiny, chat(`question ${i} about keys`), params);
      cases.push(
        honest,
        fabricateRandom(honest, rand, vocab),
        await runJob(substitute, tiny, chat(`question ${i} about keys`), params),
      );
      if (honest.outputTokenIds.length > 3) cases.push(truncateWithEnd(honest, 2, vocab));
    }
    let fails = 0;
    for (const c of cases) {
      const a = await audit(crosscheck, c);
      const b = await audit(reexecute, c);
      expect(a.verdict, `${c.params.temperature} ${b.reasons.map((r) => r.code)}`).toBe(b.verdict);
      // Greedy and structural evidence does not depend on how many tokens the scorer lists.
      if (c.params.temperature === 0) expect(a.evidenceHash).toBe(b.evidenceHash);
      if (a.verdict === 'fail') fails++;
    }
    expect(fails).toBeGreaterThanOrEqual(8);
  });

  test('substitute, fabricate and truncate fail through the cross-check', async () => {
    const g = await runJob(worker, tiny, chat('Where is the bridge?'), greedy(40));
    const v1 = await audit(crosscheck, truncateWithEnd(g, 2, vocab));
    expect(v1.reasons.map((r) => r.code)).toContain(HardReason.greedyMismatch);
    const v2 = await audit(crosscheck, fabricateRandom(g, prng(2), vocab));
    expect(v2.verdict).toBe('fail');
    const sub = await runJob(substitute, tiny, chat('Where is the bridge?'), seeded(5, 40));
    const honest = await runJob(worker, tiny, chat('Where is the bridge?'), seeded(5, 40));
    expect(sub.outputTokenIds).not.toEqual(honest.outputTokenIds);
    expect((await audit(crosscheck, sub)).reasons.map((r) => r.code)).toContain(HardReason.seededMismatch);
  });

  test('refuses scores from the audited worker itself', async () => {
    const c = await runJob(worker, tiny, chat('hi'), greedy(10));
    gateway.scoreOverride = (b) => ({
      worker: WORKER,
      positions: b.output_token_ids.map((t) => ({
        token_id: t,
        probability: 1,
        rank: 0,
        top: [{ token_id: t, probability: 1 }],
      })),
    });
    try {
      await expect(crosscheck.check(checkRequest(c))).rejects.toMatchObject({
        code: 'VALIDATOR_SCORER_ERROR',
      });
    } finally {
      gateway.scoreOverride = undefined;
    }
  });

  test('refuses inconsistent or misaligned scores (abstains instead of judging garbage)', async () => {
    const c = await runJob(worker, tiny, chat('hi'), greedy(10));
    const bad = [
      // probabilities above 1 in total
      (b: { output_token_ids: number[] }) => ({
        worker: SCORER,
        positions: b.output_token_ids.map((t) => ({
          token_id: t,
          probability: 0.9,
          rank: 0,
          top: [
            { token_id: t, probability: 0.9 },
            { token_id: (t + 1) % 520, probability: 0.8 },
          ],
        })),
      }),
      // a rank that contradicts the list
      (b: { output_token_ids: number[] }) => ({
        worker: SCORER,
        positions: b.output_token_ids.map((t) => ({
          token_id: t,
          probability: 0.1,
          rank: 0,
          top: [
            { token_id: (t + 1) % 520, probability: 0.5 },
            { token_id: t, probability: 0.1 },
          ],
        })),
      }),
      // other tokens than the output
      (b: { output_token_ids: number[] }) => ({
        worker: SCORER,
        positions: b.output_token_ids.map((t) => ({
          token_id: (t + 1) % 520,
          probability: 1,
          rank: 0,
          top: [{ token_id: (t + 1) % 520, probability: 1 }],
        })),
      }),
      // too few positions
      () => ({ worker: SCORER, positions: [] }),
    ];
    for (const override of bad) {
      gateway.scoreOverride = override as never;
      await expect(crosscheck.check(checkRequest(c))).rejects.toMatchObject({
        code: 'VALIDATOR_SCORER_ERROR',
      });
    }
    gateway.scoreOverride = undefined;
  });

  test('gateway errors are typed; 5xx and 429 are retryable', async () => {
    const c = await runJob(worker, tiny, chat('hi'), greedy(10));
    gateway.failWith = 503;
    try {
      const e = await crosscheck.check(checkRequest(c)).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ValidatorError);
      expect(e).toMatchObject({ code: 'VALIDATOR_GATEWAY_ERROR', retryable: true });
    } finally {
      gateway.failWith = undefined;
    }
    const stranger = createAuditClient({ url: gateway.url, gateway: GATEWAY, account: STRANGER });
    const e = await stranger.getJob(c.jobId).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'VALIDATOR_GATEWAY_ERROR', retryable: false });
    expect((e as ValidatorError).details).toMatch(/not_a_validator/);
  });

  test("the job's sampler comes with its evidence; evidence without a valid one is refused", async () => {
    const c = await runJob(worker, tiny, chat('hi'), greedy(10));
    const job = (x: AuditCase, sampler: unknown, id: string) =>
      ({ ...x, jobId: `0x${id.repeat(32)}`, sampler, signature: '0x00', signer: WORKER }) as GatewayJob;
    gateway.addBatch(50n, [
      job(c, 'ollama', 'a1'),
      job(c, 'Ollama Sampler!', 'a2'),
      job(c, undefined, 'a3'),
      job(c, CANONICAL_SAMPLER, 'a4'),
    ]);
    const client = createAuditClient({ url: gateway.url, gateway: GATEWAY, account: VALIDATOR });
    expect((await client.getJob(`0x${'a1'.repeat(32)}`)).sampler).toBe('ollama');
    expect((await client.getJob(`0x${'a4'.repeat(32)}`)).sampler).toBe(CANONICAL_SAMPLER);
    for (const id of ['a2', 'a3']) {
      const e = await client.getJob(`0x${id.repeat(32)}`).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'VALIDATOR_GATEWAY_ERROR', retryable: false });
      expect((e as ValidatorError).details).toMatch(/^sampler:/);
    }
  });

  test('the signed message is the gateway’s: gateway, method, path, timestamp', () => {
    expect(
      auditRequestMessage({
        method: 'post',
        path: '/v1/audit/score',
        timestamp: 1700000000,
        gateway: GATEWAY.toLowerCase() as Address,
      }),
    ).toBe(
      [
        'AIPG audit request',
        `gateway: ${GATEWAY}`,
        'method: POST',
        'path: /v1/audit/score',
        'timestamp: 1700000000',
      ].join('\n'),
    );
  });
});
