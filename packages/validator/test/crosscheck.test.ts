/**
 * The cross-check checker against an in-test gateway whose `POST /v1/audit/score` is answered by
 * other workers' REAL engines, each signing its scores with its operator key; compared with
 * re-execution on the same jobs. And what a dishonest gateway or scorer would try: answers not signed
 * by the drawn worker's operator, for other ids, from another worker, a Sybil lying — each asserting
 * the safe outcome.
 */
import { CANONICAL_SAMPLER, type SamplingParams } from '@aipg/core';
import { createLlamaEngine, type LlamaEngine } from '@aipg/inference';
import { type Address, type Hex, keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { checkAndJudge, confirmFail } from '../src/checkers/confirm.ts';
import { createCrosscheckChecker, type ScoreRejection } from '../src/checkers/crosscheck.ts';
import { drawScorers, scorerDrawSeed } from '../src/checkers/draw.ts';
import { createModelFiles } from '../src/checkers/models.ts';
import { createReexecuteChecker } from '../src/checkers/reexecute.ts';
import type { Checker } from '../src/checkers/types.ts';
import { ValidatorError } from '../src/errors.ts';
import { auditRequestMessage, createAuditClient } from '../src/gateway/client.ts';
import { HardReason, judge } from '../src/judge/judge.ts';
import {
  type AuditGateway,
  type FixtureScorer,
  type GatewayJob,
  startAuditGateway,
} from './fixtures/audit-gateway.ts';
import {
  type AuditCase,
  audit,
  checkRequest,
  fabricateRandom,
  GATEWAY,
  greedy,
  type JobInput,
  judgeJob,
  MODEL_DIR,
  presetModel,
  prng,
  runJob,
  seeded,
  truncateWithEnd,
  variantModel,
  WORKER,
} from './fixtures/jobs.ts';
import { improbable, probable, seedFor } from './fixtures/liars.ts';

// anvil's public test keys (never for real funds)
const VALIDATOR = privateKeyToAccount('0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a');
const STRANGER = privateKeyToAccount('0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6');
const GRID: Address = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
/** Scoring workers: bond owner and operator key (different accounts, as on a real rig). */
const HONEST = {
  worker: '0x976EA74026E726554dB657fA54763abd0C3a0aa9' as Address,
  account: privateKeyToAccount('0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356'),
};
const HONEST2 = {
  worker: privateKeyToAccount(keccak256(toHex('second honest owner'))).address,
  account: privateKeyToAccount('0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97'),
};
/** The cheater's second bond (another owner, another key: nothing on chain ties it to the cheater). */
const SYBIL = {
  worker: privateKeyToAccount(keccak256(toHex('sybil owner'))).address,
  account: privateKeyToAccount('0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6'),
};
/** The audited worker's own rig, online as a scorer too (WORKER's operator key is WORKER). */
const AUDITED_KEY = privateKeyToAccount('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d');

let tiny: Awaited<ReturnType<typeof presetModel>>;
let worker: LlamaEngine;
let scorerEngine: LlamaEngine;
let substitute: LlamaEngine;
let gateway: AuditGateway;
let crosscheck: Checker;
let reexecute: Checker;
let vocab: { vocabSize: number; eosTokenId: number; isEndToken(id: number): boolean };
/** Worker bonds on "chain": owner → operator, active. */
const bonds = new Map<string, { operator: Address; active: boolean }>();
const rejected: { worker: Address; reason: ScoreRejection }[] = [];

const scorer = (who: typeof HONEST, extra: Partial<FixtureScorer> = {}): FixtureScorer => ({
  worker: who.worker,
  account: who.account,
  engine: scorerEngine,
  ...extra,
});

beforeAll(async () => {
  tiny = await presetModel('tiny');
  const other = await variantModel('tiny', { seed: 0xbeef });
  worker = await createLlamaEngine({ modelPath: tiny.path, threads: 1, contextSize: 1024 });
  scorerEngine = await createLlamaEngine({ modelPath: tiny.path, threads: 1, contextSize: 1024 });
  substitute = await createLlamaEngine({ modelPath: other.path, threads: 1, contextSize: 1024 });
  gateway = await startAuditGateway({
    gateway: GATEWAY,
    validators: [VALIDATOR.address],
    chainId: 31337,
    grid: GRID,
  });
  const models = createModelFiles({ dir: MODEL_DIR, files: [tiny.path] });
  crosscheck = createCrosscheckChecker({
    models,
    client: createAuditClient({ url: gateway.url, gateway: GATEWAY, account: VALIDATOR }),
    bonds: {
      workerBond: async (owner) =>
        bonds.get(owner.toLowerCase()) ?? {
          operator: '0x0000000000000000000000000000000000000000',
          active: false,
        },
    },
    chainId: 31337,
    grid: GRID,
    onRejected: (e) => rejected.push({ worker: e.worker, reason: e.reason }),
  });
  reexecute = createReexecuteChecker({ models, threads: 1, contextSize: 1024 });
  vocab = { vocabSize: worker.vocabSize, eosTokenId: worker.eosTokenId, isEndToken: worker.isEndToken };
});
const resetNetwork = () => {
  bonds.clear();
  for (const w of [HONEST, HONEST2, SYBIL])
    bonds.set(w.worker.toLowerCase(), { operator: w.account.address, active: true });
  bonds.set(WORKER.toLowerCase(), { operator: AUDITED_KEY.address, active: true });
  gateway.scorers = [scorer(HONEST)];
  gateway.extraListed = [];
  gateway.scoreOverride = undefined;
  gateway.tamper = undefined;
  gateway.substitute = undefined;
  gateway.rewriteJobId = undefined;
  rejected.length = 0;
};
beforeAll(() => resetNetwork());
afterEach(() => resetNetwork());
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
      expect(r.scorer).toBe(HONEST.worker);
      // The signed set, as the node keeps it: by the drawn bond's operator key, over this job.
      expect(r.score).toMatchObject({
        worker: HONEST.worker,
        operator: HONEST.account.address,
        drawIndex: 0,
      });
      expect(r.score?.attestation.auditedJobId).toBe(c.jobId);
      expect(r.score?.positions).toEqual(r.scores?.positions);
      const v = await audit(crosscheck, c);
      expect(v.reasons, JSON.stringify(params)).toEqual([]);
    }
    const scoreRequests = gateway.requests.filter((r) => r.path === '/v1/audit/score');
    expect(scoreRequests.length).toBeGreaterThan(0);
    expect(gateway.requests.some((r) => r.path === '/v1/audit/scorers' && r.status === 200)).toBe(true);
    for (const r of scoreRequests) {
      expect(r.status).toBe(200);
      expect(r.validator).toBe(VALIDATOR.address);
      const body = r.body as { exclude_worker: string; top_k: number; model_id: string; worker: string };
      expect(body.exclude_worker).toBe(WORKER);
      // The validator names the scorer it drew: the gateway does not choose.
      expect(body.worker).toBe(HONEST.worker);
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

  test('never draws the audited worker, nor a worker listed with one of its operator keys', async () => {
    const c = await runJob(worker, tiny, chat('hi'), greedy(10));
    // Only the audited worker online (under its owner, and its key under another owner): nobody to draw.
    gateway.scorers = [
      { worker: WORKER, account: AUDITED_KEY, engine: scorerEngine },
      { worker: SYBIL.worker, account: AUDITED_KEY, engine: scorerEngine },
    ];
    const e = await crosscheck.check(checkRequest(c)).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'VALIDATOR_SCORER_ERROR', retryable: false });
    expect(
      gateway.requests.filter(
        (r) => r.path === '/v1/audit/score' && (r.body as { job_id: Hex }).job_id === c.jobId,
      ),
    ).toEqual([]);
    // With an honest worker online too: always the honest one.
    gateway.scorers.push(scorer(HONEST));
    expect((await crosscheck.check(checkRequest(c))).scorer).toBe(HONEST.worker);
  });

  test('answers not signed by the drawn worker’s operator, for other ids or from another worker: rejected, never used', async () => {
    const c = await runJob(worker, tiny, chat('Where is the bridge?'), greedy(12));
    const attempts: [string, () => void, ScoreRejection][] = [
      // Signed by a key that is not the operator of the drawn bond (the answer names the right operator).
      ['another key', () => (gateway.scorers = [scorer(HONEST, { signWith: STRANGER })]), 'SCORE_SIGNATURE'],
      // Signed by its key, but that key is not the bond's operator on chain (the gateway names it as operator).
      [
        'not the bond operator',
        () => {
          gateway.scorers = [{ worker: HONEST.worker, account: STRANGER, engine: scorerEngine }];
        },
        'SCORE_NOT_BOND_OPERATOR',
      ],
      // A bond gone inactive.
      [
        'inactive bond',
        () => bonds.set(HONEST.worker.toLowerCase(), { operator: HONEST.account.address, active: false }),
        'SCORE_NOT_BOND_OPERATOR',
      ],
      // Scores the scorer signed for another audited job (a gateway replaying an answer).
      ['another job', () => (gateway.rewriteJobId = keccak256(toHex('another job'))), 'SCORE_SIGNATURE'],
      // The gateway alters signed scores on the way.
      [
        'altered scores',
        () =>
          (gateway.tamper = (a) => ({
            ...a,
            positions: a.positions.map((p) => ({ ...p, probability: p.probability * 0.5 })),
          })),
        'SCORE_SIGNATURE',
      ],
      // …or the signature.
      [
        'garbage signature',
        () => (gateway.tamper = (a) => ({ ...a, signature: '0x1234' })),
        'SCORE_SIGNATURE',
      ],
      // The gateway serves another worker's scores than the one drawn and named.
      [
        'substituted worker',
        () => {
          gateway.scorers = [scorer(HONEST), scorer(SYBIL)];
          gateway.substitute = (named) =>
            named.toLowerCase() === HONEST.worker.toLowerCase() ? SYBIL.worker : HONEST.worker;
        },
        'SCORE_WRONG_WORKER',
      ],
      // The audited worker's own key, signing as another bond's scorer.
      [
        'the audited key',
        () => {
          gateway.scorers = [
            { worker: HONEST.worker, account: STRANGER, engine: scorerEngine, signWith: AUDITED_KEY },
          ];
          gateway.tamper = (a) => ({ ...a, operator: AUDITED_KEY.address });
        },
        'SCORE_AUDITED_KEY',
      ],
    ];
    for (const [what, setup, reason] of attempts) {
      resetNetwork();
      setup();
      const e = await crosscheck.check(checkRequest(c)).catch((x: unknown) => x);
      expect(e, what).toBeInstanceOf(ValidatorError);
      expect(e, what).toMatchObject({ code: 'VALIDATOR_SCORER_ERROR' });
      expect(
        rejected.map((r) => r.reason),
        what,
      ).toContain(reason);
    }

    // A rejected answer is never used: the next drawn worker's signed scores are.
    resetNetwork();
    gateway.scorers = [scorer(HONEST, { signWith: STRANGER }), scorer(HONEST2)];
    const { seed } = seedFor(
      [HONEST.worker, HONEST2.worker],
      gateway.scorers.map((x) => ({ worker: x.worker, operator: x.account.address })),
      { workers: [WORKER], operators: [WORKER] },
      (i) => keccak256(toHex(`order ${i}`)),
    );
    const r = await crosscheck.check({ ...checkRequest(c), scorerSeed: seed });
    expect(r.scorer).toBe(HONEST2.worker);
    expect(r.score?.operator).toBe(HONEST2.account.address);
    expect(rejected).toEqual([{ worker: HONEST.worker, reason: 'SCORE_SIGNATURE' }]);
    expect(r.tried).toEqual([HONEST.worker, HONEST2.worker]);
  });

  test('an offline or failing drawn worker: the next one in the draw, at most three', async () => {
    const c = await runJob(worker, tiny, chat('hi'), greedy(10));
    gateway.scorers = [scorer(HONEST, { failing: true }), scorer(HONEST2)];
    expect((await crosscheck.check(checkRequest(c))).scorer).toBe(HONEST2.worker);
    // Listed but gone by the time it is asked: 503 for it, the next answers.
    gateway.scorers = [scorer(HONEST), scorer(HONEST2)];
    gateway.extraListed = [{ worker: STRANGER.address, operator: STRANGER.address }];
    const { seed } = seedFor(
      [STRANGER.address],
      [
        ...gateway.scorers.map((x) => ({ worker: x.worker, operator: x.account.address })),
        ...gateway.extraListed,
      ],
      { workers: [WORKER], operators: [WORKER] },
      (i) => keccak256(toHex(`gone ${i}`)),
    );
    const r = await crosscheck.check({ ...checkRequest(c), scorerSeed: seed });
    expect([HONEST.worker, HONEST2.worker]).toContain(r.scorer);
    expect(r.tried?.[0]).toBe(STRANGER.address);
    expect(r.score?.drawIndex).toBe(1);
    // Every drawn worker failing: a retryable error, no scores, and at most three asked (a gateway that
    // fails the honest ones on purpose cannot walk the draw down to its own scorers).
    gateway.scorers = [HONEST, HONEST2, SYBIL, { worker: STRANGER.address, account: STRANGER }].map((w) =>
      scorer(w, { failing: true }),
    );
    const before = gateway.requests.length;
    const e = await crosscheck.check(checkRequest(c)).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'VALIDATOR_SCORER_ERROR', retryable: true });
    expect(gateway.requests.slice(before).filter((r) => r.path === '/v1/audit/score')).toHaveLength(3);
  });

  test('refuses inconsistent or misaligned scores, even signed (abstains instead of judging garbage)', async () => {
    const c = await runJob(worker, tiny, chat('hi'), greedy(10));
    const bad: ((
      positions: {
        tokenId: number;
        probability: number;
        rank: number;
        top: { tokenId: number; probability: number }[];
      }[],
    ) => typeof positions)[] = [
      // probabilities above 1 in total
      (ps) =>
        ps.map((p) => ({
          tokenId: p.tokenId,
          probability: 0.9,
          rank: 0,
          top: [
            { tokenId: p.tokenId, probability: 0.9 },
            { tokenId: (p.tokenId + 1) % 520, probability: 0.8 },
          ],
        })),
      // a rank that contradicts the list
      (ps) =>
        ps.map((p) => ({
          tokenId: p.tokenId,
          probability: 0.1,
          rank: 0,
          top: [
            { tokenId: (p.tokenId + 1) % 520, probability: 0.5 },
            { tokenId: p.tokenId, probability: 0.1 },
          ],
        })),
      // other tokens than the output
      (ps) => ps.map((p) => ({ ...p, tokenId: (p.tokenId + 1) % 520 })),
      // too few positions
      () => [],
    ];
    for (const lie of bad) {
      rejected.length = 0;
      gateway.scorers = [scorer(HONEST, { lie })];
      await expect(crosscheck.check(checkRequest(c))).rejects.toMatchObject({
        code: 'VALIDATOR_SCORER_ERROR',
      });
      expect(rejected.map((r) => r.reason)[0]).toMatch(/^SCORE_(INCONSISTENT|POSITIONS)$/);
    }
  });

  test('the draw: deterministic from the on-chain seed, per validator, never the audited owner or its keys', () => {
    const listed = [
      { worker: HONEST.worker, operator: HONEST.account.address },
      { worker: HONEST2.worker, operator: HONEST2.account.address },
      { worker: SYBIL.worker, operator: SYBIL.account.address },
      { worker: WORKER, operator: AUDITED_KEY.address },
      // The audited worker's key listed under another owner: that owner is out too.
      { worker: STRANGER.address, operator: AUDITED_KEY.address },
      // Listed twice: one entry.
      { worker: HONEST.worker, operator: HONEST.account.address },
    ];
    const exclude = { workers: [WORKER], operators: [AUDITED_KEY.address] };
    const R = keccak256(toHex('batch randomness'));
    const leaf = keccak256(toHex('leaf'));
    const seed = scorerDrawSeed({ randomness: R, leaf, validator: VALIDATOR.address });
    const order = drawScorers(seed, listed, exclude).map((c) => c.worker);
    expect(order.sort()).toEqual([HONEST.worker, HONEST2.worker, SYBIL.worker].sort());
    const again = drawScorers(seed, [...listed].reverse(), exclude).map((c) => c.worker);
    expect(again).toEqual(drawScorers(seed, listed, exclude).map((c) => c.worker));
    // Each of randomness, leaf and validator changes the seed; over many seeds every scorer comes first.
    expect(scorerDrawSeed({ randomness: keccak256(R), leaf, validator: VALIDATOR.address })).not.toBe(seed);
    expect(scorerDrawSeed({ randomness: R, leaf: keccak256(leaf), validator: VALIDATOR.address })).not.toBe(
      seed,
    );
    expect(scorerDrawSeed({ randomness: R, leaf, validator: STRANGER.address })).not.toBe(seed);
    const first = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const w = drawScorers(keccak256(toHex(`seed ${i}`)), listed, exclude)[0]!.worker;
      first.set(w, (first.get(w) ?? 0) + 1);
    }
    expect([...first.keys()].sort()).toEqual([HONEST.worker, HONEST2.worker, SYBIL.worker].sort());
    for (const n of first.values()) expect(n).toBeGreaterThan(60); // ~100 each: uniform
  });
});

describe('one scorer’s word never fails a worker', () => {
  /** What the node does with one job: check, judge, a second drawn scorer on a scored FAIL. */
  const crosscheckVerdict = (c: AuditCase, seed: Hex) =>
    checkAndJudge(crosscheck, { ...checkRequest(c), scorerSeed: seed }, (r) =>
      judge({
        job: judgeJob(c),
        scores: r.scores,
        expectedPromptTokenIds: r.expectedPromptTokenIds,
        modelInfo: r.modelInfo,
      }),
    );
  const listedNow = () => gateway.scorers.map((x) => ({ worker: x.worker, operator: x.account.address }));
  const exclude = { workers: [WORKER], operators: [WORKER] };

  test('a Sybil scorer lying that an honest output is improbable: never a FAIL, whichever is drawn first', async () => {
    gateway.scorers = [scorer(HONEST), scorer(SYBIL, { lie: improbable })];
    const seeds = {
      sybilFirst: seedFor([SYBIL.worker, HONEST.worker], listedNow(), exclude, (i) =>
        keccak256(toHex(`s${i}`)),
      ).seed,
      honestFirst: seedFor([HONEST.worker, SYBIL.worker], listedNow(), exclude, (i) =>
        keccak256(toHex(`h${i}`)),
      ).seed,
    };
    for (const params of [greedy(24), seeded(7, 24), unseeded(24)]) {
      const c = await runJob(worker, tiny, chat('Tell me about the grid'), params, 99);
      // The lie alone would FAIL the honest worker: that is what the Sybil is for.
      const alone = await crosscheckVerdict(c, seeds.sybilFirst);
      expect(alone.checks[0]!.result.scorer).toBe(SYBIL.worker);
      expect(alone.checks[0]!.verdict.verdict, JSON.stringify(params)).toBe('fail');
      // …but the second drawn scorer disagrees: abstain, both signed sets kept.
      expect(alone.verdict).toBeNull();
      expect(alone.disagreement).toBe(true);
      expect(alone.reason).toMatch(/scorer disagreement/);
      expect(alone.checks.map((x) => x.result.scorer)).toEqual([SYBIL.worker, HONEST.worker]);
      expect(alone.checks.map((x) => x.result.score?.operator)).toEqual([
        SYBIL.account.address,
        HONEST.account.address,
      ]);
      // The honest scorer drawn first: PASS, no second scorer needed.
      const honestFirst = await crosscheckVerdict(c, seeds.honestFirst);
      expect(honestFirst.verdict?.verdict).toBe('pass');
      expect(honestFirst.checks).toHaveLength(1);
    }
    // Over many seeds (the draws validators get): never a FAIL.
    const c = await runJob(worker, tiny, chat('Tell me about the bridge'), greedy(16));
    for (let i = 0; i < 4; i++) {
      const out = await crosscheckVerdict(c, keccak256(toHex(`draw ${i}`)));
      expect(out.verdict?.verdict ?? 'abstain').not.toBe('fail');
    }
  });

  test('no second independent scorer: abstain, never a FAIL on one scorer’s word', async () => {
    gateway.scorers = [scorer(SYBIL, { lie: improbable })];
    const c = await runJob(worker, tiny, chat('Tell me about the grid'), greedy(20));
    const out = await crosscheckVerdict(c, keccak256(toHex('only one')));
    expect(out.checks).toHaveLength(1);
    expect(out.checks[0]!.verdict.verdict).toBe('fail');
    expect(out.verdict).toBeNull();
    expect(out.reason).toMatch(/no independent second scorer/);
  });

  test('a fabricating worker: FAIL when two drawn scorers find it; a colluding scorer drawn in the first two spares it (the residual risk)', async () => {
    const honest = await runJob(worker, tiny, chat('question about keys'), greedy(30));
    const fabricated = fabricateRandom(honest, prng(5), vocab);
    gateway.scorers = [scorer(HONEST), scorer(HONEST2), scorer(SYBIL, { lie: probable })];
    const listed = listedNow();
    const at = (order: Address[], tag: string) =>
      seedFor(order, listed, exclude, (i) => keccak256(toHex(`${tag}${i}`))).seed;
    const confirmed = await crosscheckVerdict(fabricated, at([HONEST.worker, HONEST2.worker], 'a'));
    expect(confirmed.verdict?.verdict).toBe('fail');
    expect(confirmed.verdict?.reasons.map((r) => r.code)).toContain(HardReason.greedyMismatch);
    expect(confirmed.checks.map((x) => x.result.scorer)).toEqual([HONEST.worker, HONEST2.worker]);
    // The evidence hash covers the reasons both scorers found.
    expect(confirmed.verdict?.reasons.length).toBeGreaterThan(0);
    // The colluder drawn second: the honest FAIL is not confirmed, abstain (no PASS either).
    const second = await crosscheckVerdict(fabricated, at([HONEST.worker, SYBIL.worker], 'b'));
    expect(second.verdict).toBeNull();
    expect(second.disagreement).toBe(true);
    // The colluder drawn first: PASS (README "Residual risk": probability ≈ its share of the scorers).
    const first = await crosscheckVerdict(fabricated, at([SYBIL.worker], 'c'));
    expect(first.verdict?.verdict).toBe('pass');
  });

  test('reasons the validator checks itself need no second scorer; a FAIL stands only on reasons both scorers hold', () => {
    const v = (verdict: 'pass' | 'fail', codes: string[]) =>
      ({
        verdict,
        reasons: codes.map((code, i) => ({ code, position: i, detail: code })),
        gatewayFaults: [],
        soft: [],
        evidenceHash: '0x',
        evidence: {},
      }) as unknown as Parameters<typeof confirmFail>[0];
    const both = confirmFail(
      v('fail', ['GREEDY_MISMATCH', 'LENGTH_BEFORE_MAX']),
      v('fail', ['GREEDY_MISMATCH']),
    );
    expect(both.outcome).toBe('fail');
    if (both.outcome === 'fail')
      expect(both.verdict.reasons.map((r) => r.code)).toEqual(['GREEDY_MISMATCH', 'LENGTH_BEFORE_MAX']);
    const own = confirmFail(v('fail', ['GREEDY_MISMATCH', 'LENGTH_BEFORE_MAX']), v('pass', []));
    expect(own).toMatchObject({ outcome: 'fail', disagreement: true });
    if (own.outcome === 'fail') expect(own.verdict.reasons.map((r) => r.code)).toEqual(['LENGTH_BEFORE_MAX']);
    expect(confirmFail(v('fail', ['GREEDY_MISMATCH']), v('fail', ['BELOW_FLOOR']))).toMatchObject({
      outcome: 'abstain',
      disagreement: true,
    });
    expect(confirmFail(v('fail', ['SEEDED_MISMATCH']), null)).toMatchObject({
      outcome: 'abstain',
      disagreement: false,
    });
  });
});

describe('cross-check plumbing', () => {
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
