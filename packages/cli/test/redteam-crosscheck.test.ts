import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { anvilTestAccounts, getAudit, getBatchAudit, getBond } from '@aipg/chain';
import { hashScorePositions, type ScoreAttestation, scoreTypedData } from '@aipg/core';
import { createTokenizer } from '@aipg/inference';
import { createAuditClient, inconsistency } from '@aipg/validator';
import {
  type Address,
  concat,
  encodeAbiParameters,
  type Hex,
  hexToBigInt,
  keccak256,
  recoverTypedDataAddress,
  toHex,
} from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVERSARY_FATES } from '../src/devnet/red-team.ts';
import type { DevnetAdversary, StartDevnetReturnType } from '../src/devnet/start-devnet.ts';
import { type ChatResult, type Finalized, redTeam, runJobs, startRedTeamDevnet } from './helpers/red-team.ts';

// The red team's Sybil scorer, on validators that cross-check (no weights: a worker drawn from the
// batch's on-chain randomness re-scores each audited output and signs its scores). A cheater's second
// 1,000-AIPG bond (`sybil-scorer`) serves its own jobs honestly but, drawn to score another worker's
// output, reports every claimed token as improbable. One scorer's word never fails a worker: its FAIL
// must be confirmed by a second, independently drawn scorer (here an honest second worker), so the
// validator abstains and records the disagreement, keeping the lie as signed evidence. The honest worker
// is never failed; a fabricating cheater is still failed and slashed (two scorers agree on it). One
// devnet, one batch; blocks and time are mined with anvil's RPC, never waited for.

/** Commit and reveal windows: long, chain time is moved past them (evm_increaseTime). */
const WINDOW = 3_600;
const HONEST_JOBS = 12;
const SYBIL_JOBS = 3;
const FABRICATED_JOBS = 4;
const TOTAL = HONEST_JOBS + SYBIL_JOBS + FABRICATED_JOBS;
/** Replayable jobs, alternating greedy and seeded (the two exact checks a scorer's lie must beat). */
const params = (i: number) =>
  i % 2 === 0 ? { max_tokens: 24, temperature: 0 } : { max_tokens: 24, temperature: 0.8, seed: 500 + i };
/** The draw's domain tag (packages/validator/src/checkers/draw.ts), recomputed here from its spec. */
const SCORER_DRAW_TAG = keccak256(toHex('aipg.crosscheck.scorer-draw.v1'));

/** An audit as the validator's state file keeps it (packages/validator/src/node/state.ts). */
type ScoreEvidence = {
  worker: Address;
  operator: Address;
  signature: Hex;
  scoreJobId: Hex;
  positionsHash: Hex;
  topK: number;
  drawIndex: number;
  verdict: 'pass' | 'fail' | 'abstain';
  reasons: string[];
  file: string;
};
type AuditRecord = {
  leaf: Hex;
  batchId: string;
  jobId: Hex;
  worker: Address;
  status: string;
  vote?: 'pass' | 'fail';
  reasons?: { code: string }[];
  scorer?: string;
  scorerSeed?: Hex;
  scores?: ScoreEvidence[];
  scorerDisagreement?: boolean;
  abstainReason?: string;
};
/** The whole signed set a validator keeps in `ScoreEvidence.file`. */
type ScoreFile = {
  chainId: number;
  grid: Address;
  leaf: Hex;
  worker: Address;
  operator: Address;
  attestation: ScoreAttestation;
  signature: Hex;
  positions: {
    tokenId: number;
    probability: number;
    rank: number;
    top: { tokenId: number; probability: number }[];
  }[];
  verdict: string;
  reasons: string[];
};

const same = (a: string | undefined, b: string | undefined) =>
  a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase();
/** A validator's draw order key for a bond owner: ascending `keccak256(seed ‖ owner)`. */
const drawKey = (seed: Hex, owner: Address) =>
  hexToBigInt(keccak256(concat([seed, owner.toLowerCase() as Hex])));

let net: StartDevnetReturnType;
let dir: string;
let honest2: Address;
let sybil: DevnetAdversary;
let fabricator: DevnetAdversary;
let rt: ReturnType<typeof redTeam>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-redteam-crosscheck-'));
  net = await startRedTeamDevnet(dir, WINDOW, {
    model: 'small',
    validators: 3,
    validatorMode: 'crosscheck',
  });
  rt = redTeam(net, WINDOW);
  // An honest second scorer, the cheater's Sybil (its second 1,000-AIPG bond) and a fabricator (runs
  // no model, so its backend cannot score: drawn, it is passed over for the next worker of the draw).
  honest2 = (await net.startHonestWorker({ maxConcurrency: 1 })).address;
  sybil = await net.startAdversary('sybil-scorer', { privateKey: generatePrivateKey(), maxConcurrency: 1 });
  fabricator = await net.startAdversary('fabricate', { privateKey: generatePrivateKey(), maxConcurrency: 1 });
}, 240_000);

afterAll(async () => {
  await net?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('red team, cross-check: a Sybil scorer cannot get an honest worker failed', () => {
  const jobs = { honest: [] as ChatResult[], sybil: [] as ChatResult[], fabricated: [] as ChatResult[] };
  const bondsBefore = new Map<Address, bigint>();
  let finalized: Finalized[] = [];
  /** Each validator's audits (its state file), by leaf. */
  let states: Record<string, AuditRecord>[] = [];
  let honest: Address;

  const auditsOf = (worker: Address) =>
    states.map((s) => Object.values(s).filter((a) => same(a.worker, worker)));
  const bondOf = (owner: Address) =>
    getBond(rt.publicClient, { grid: net.contracts.grid, role: 'worker', owner });

  it(`serves ${HONEST_JOBS} honest jobs, ${SYBIL_JOBS} of the Sybil's and ${FABRICATED_JOBS} fabricated ones; 3 cross-checking validators judge, vote and finalize them`, async () => {
    expect(ADVERSARY_FATES['sybil-scorer']).toBe('overruled');
    expect(ADVERSARY_FATES.fabricate).toBe('slashed');
    honest = net.accounts.worker;
    for (const v of net.validatorNodes) expect(v.status().mode).toBe('crosscheck');
    for (const a of [honest, honest2, sybil.address, fabricator.address])
      bondsBefore.set(a, (await bondOf(a)).amount);
    const fromBlock = (await rt.publicClient.getBlockNumber()) + 1n;
    const started = performance.now();
    await Promise.all([
      runJobs(HONEST_JOBS, 2, async (i) => jobs.honest.push(await rt.chat(honest, i, params(i)))),
      runJobs(SYBIL_JOBS, 1, async (i) => jobs.sybil.push(await rt.chat(sybil.address, 100 + i, params(i)))),
      runJobs(FABRICATED_JOBS, 1, async (i) =>
        jobs.fabricated.push(await rt.chat(fabricator.address, 200 + i, params(i))),
      ),
    ]);
    const jobsMs = performance.now() - started;
    // the Sybil served its own jobs honestly; the fabricator lied on every job
    expect(sybil.events.map((e) => e.honest !== null)).toEqual(Array(SYBIL_JOBS).fill(true));
    expect(fabricator.events.map((e) => e.honest)).toEqual(Array(FABRICATED_JOBS).fill(null));

    await rt.settleAndCommit(net.validatorNodes, [TOTAL, TOTAL, TOTAL]);
    const judgedMs = performance.now() - started - jobsMs;
    await rt.closeWindow(net.validatorNodes);
    finalized = await rt.finalizedSince(fromBlock);
    states = await Promise.all(
      net.validatorNodes.map(async (v) => {
        const s = JSON.parse(await readFile(v.status().stateFile, 'utf8')) as {
          audits: Record<string, AuditRecord>;
        };
        return s.audits;
      }),
    );
    // every validator holds all the audits (3 seats, 3 validators), none left undecided
    for (const s of states) {
      expect(Object.keys(s)).toHaveLength(TOTAL);
      for (const a of Object.values(s)) expect(['finalized', 'abstained']).toContain(a.status);
    }
    console.log(
      `cross-check red team: ${TOTAL} audited jobs served in ${(jobsMs / 1000).toFixed(1)} s, judged by 3 cross-checking validators in ${(judgedMs / 1000).toFixed(1)} s, ${finalized.length} finalized after ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }, 600_000);

  it('the honest worker is never failed: no FAIL vote, no FAIL verdict, its bond untouched', async () => {
    const mine = auditsOf(honest);
    for (const audits of mine) {
      expect(audits).toHaveLength(HONEST_JOBS);
      expect(audits.filter((a) => a.vote === 'fail')).toEqual([]);
      // each one voted PASS (finalized) or abstained on a scorer disagreement, nothing else
      for (const a of audits)
        if (a.status === 'abstained') expect(a.scorerDisagreement).toBe(true);
        else expect(a.vote).toBe('pass');
    }
    const verdicts = finalized.filter((f) => same(f.worker, honest));
    expect(verdicts.filter((f) => f.verdict === 2)).toEqual([]);
    for (const f of verdicts) expect(f.slashed).toBe(0n);
    // every job whose audit got a quorum of PASS votes is a PASS verdict
    const passVotes = new Map<string, number>();
    for (const audits of mine)
      for (const a of audits) if (a.vote === 'pass') passVotes.set(a.leaf, (passVotes.get(a.leaf) ?? 0) + 1);
    const quorum = net.auditConfig.quorum;
    const passing = [...passVotes.values()].filter((n) => n >= quorum).length;
    expect(verdicts.filter((f) => f.verdict === 1)).toHaveLength(passing);
    const bond = await bondOf(honest);
    expect(bond.amount).toBe(bondsBefore.get(honest));
    expect(bond.slashed).toBe(0n);
    console.log(
      `honest worker: ${HONEST_JOBS} jobs, ${verdicts.filter((f) => f.verdict === 1).length} PASS, ${verdicts.filter((f) => f.verdict === 3).length} inconclusive, ${HONEST_JOBS - verdicts.length} not finalized (every validator abstained), 0 FAIL; bond untouched`,
    );
  });

  it("the Sybil drawn to score the honest worker's jobs: its FAIL overruled by the second drawn scorer, the validator abstains and records the disagreement", async () => {
    let drawnFirst = 0;
    const perValidator: number[] = [];
    for (const [i, audits] of auditsOf(honest).entries()) {
      const owner = net.validatorNodes[i]!.status().owner;
      let n = 0;
      for (const a of audits) {
        // the draw, recomputed from the chain: the batch's randomness, the leaf, this validator
        const { randomness, fixed } = await getBatchAudit(rt.publicClient, {
          grid: net.contracts.grid,
          batchId: BigInt(a.batchId),
        });
        expect(fixed).toBe(true);
        const seed = keccak256(
          encodeAbiParameters(
            [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'bytes32' }, { type: 'address' }],
            [SCORER_DRAW_TAG, randomness, a.leaf, owner],
          ),
        );
        expect(a.scorerSeed).toBe(seed);
        // of the two workers that can score the honest one's jobs, the draw asks the Sybil first or not
        const sybilFirst = drawKey(seed, sybil.address) < drawKey(seed, honest2);
        const scores = a.scores ?? [];
        if (sybilFirst) {
          n++;
          expect(scores.map((s) => s.worker.toLowerCase())).toEqual([
            sybil.address.toLowerCase(),
            honest2.toLowerCase(),
          ]);
          expect(scores.map((s) => s.verdict)).toEqual(['fail', 'pass']);
          expect(scores[0]!.reasons.length).toBeGreaterThan(0);
          expect(a.status).toBe('abstained');
          expect(a.vote).toBeUndefined();
          expect(a.scorerDisagreement).toBe(true);
          expect(a.abstainReason).toMatch(/scorer disagreement/);
        } else {
          expect(scores.map((s) => s.worker.toLowerCase())).toEqual([honest2.toLowerCase()]);
          expect(scores[0]!.verdict).toBe('pass');
          expect(a.vote).toBe('pass');
          expect(a.scorerDisagreement).toBeUndefined();
        }
      }
      perValidator.push(n);
      drawnFirst += n;
    }
    // 36 independent draws of one in two: the Sybil was drawn first at least once (P(none) = 2^-36)
    expect(drawnFirst).toBeGreaterThanOrEqual(1);
    const disagreements = states
      .flatMap((s) => Object.values(s))
      .filter((a) => a.scorerDisagreement === true);
    expect(disagreements).toHaveLength(drawnFirst);
    for (const a of disagreements) expect(same(a.worker, honest)).toBe(true);
    const abstained = net.validatorNodes.map((v) => v.status().audits.abstained);
    expect(abstained).toEqual(perValidator);
    console.log(
      `sybil scorer: drawn first on ${drawnFirst} of ${3 * HONEST_JOBS} audits of the honest worker (per validator ${perValidator.join(', ')}); each FAIL overruled by the honest second scorer: ${disagreements.length} disagreements recorded, ${abstained.reduce((s, n) => s + n, 0)} abstentions, 0 FAIL votes`,
    );
  });

  it("the Sybil's lies are kept as evidence it signed: improbable scores of the honest tokens, signed by its operator key", async () => {
    const tokenizer = await createTokenizer({ modelPath: net.model.path });
    const vocab = tokenizer.vocabSize;
    await tokenizer.close();
    const honestJobIds = new Set(jobs.honest.map((j) => j.grid.job_id.toLowerCase()));
    let lies = 0;
    for (const audits of auditsOf(honest))
      for (const a of audits) {
        const kept = (a.scores ?? []).filter((s) => same(s.worker, sybil.address));
        for (const s of kept) {
          const file = JSON.parse(await readFile(s.file, 'utf8')) as ScoreFile;
          expect(file.leaf).toBe(a.leaf);
          expect(same(file.worker, sybil.address)).toBe(true);
          expect(same(file.attestation.worker, sybil.address)).toBe(true);
          expect(honestJobIds.has(file.attestation.auditedJobId.toLowerCase())).toBe(true);
          expect(file.attestation.auditedJobId.toLowerCase()).toBe(a.jobId.toLowerCase());
          expect(file.signature).toBe(s.signature);
          expect(file.attestation.positionsHash).toBe(s.positionsHash);
          // the positions are exactly what it signed, and the signature is its operator key's
          expect(hashScorePositions(file.positions)).toBe(file.attestation.positionsHash);
          const signer = await recoverTypedDataAddress({
            ...scoreTypedData(file.attestation, net.chainId, net.contracts.grid),
            signature: file.signature,
          });
          expect(same(signer, sybil.address)).toBe(true);
          expect(same(s.operator, sybil.address)).toBe(true);
          // the lie itself: each honest token reported at 1e-9, last of the vocabulary, yet a consistent distribution
          expect(file.positions.length).toBeGreaterThan(0);
          for (const p of file.positions) {
            expect(p.probability).toBe(1e-9);
            expect(p.rank).toBe(vocab - 1);
            expect(p.top.some((t) => t.tokenId === p.tokenId)).toBe(false);
          }
          expect(inconsistency(file.positions, vocab)).toBeUndefined();
          expect(file.verdict).toBe('fail');
          lies++;
        }
      }
    expect(lies).toBeGreaterThanOrEqual(1);
    // the Sybil's bond: nothing on chain punishes a scorer's lie (the evidence is off chain)
    const bond = await bondOf(sybil.address);
    console.log(
      `sybil scorer: ${lies} signed lying score sets kept (state file + scores dir), each recovering to ${sybil.address}; its bond ${bond.amount === bondsBefore.get(sybil.address) ? 'untouched' : 'changed'}`,
    );
  });

  it("the Sybil's own jobs, served honestly, pass", async () => {
    for (const audits of auditsOf(sybil.address)) {
      expect(audits).toHaveLength(SYBIL_JOBS);
      for (const a of audits) {
        expect(a.vote).toBe('pass');
        // never scored by itself
        for (const s of a.scores ?? []) expect(same(s.worker, sybil.address)).toBe(false);
      }
    }
    const verdicts = finalized.filter((f) => same(f.worker, sybil.address));
    expect(verdicts.map((f) => f.verdict)).toEqual(Array(SYBIL_JOBS).fill(1));
    const bond = await bondOf(sybil.address);
    expect(bond.amount).toBe(bondsBefore.get(sybil.address));
    expect(bond.slashed).toBe(0n);
  });

  it('a drawn worker that cannot score (the fabricator runs no model) gives no scores: the gateway refuses it, the validator passes it over in the draw', async () => {
    // a validator's own request naming the fabricator as the scorer of one of the honest jobs
    const client = createAuditClient({
      url: net.gatewayUrl,
      gateway: net.gateway.gateway,
      account: privateKeyToAccount(anvilTestAccounts[4]!.privateKey as Hex),
    });
    // The node of the same key signed its own requests up to 20 s ahead: a timestamp it used is a
    // replay to the gateway, so a request is sent again with the client's next timestamp.
    const signed = async <T>(call: () => Promise<T>): Promise<T> => {
      for (let i = 0; ; i++) {
        try {
          return await call();
        } catch (e) {
          if (i >= 60 || !/already used \(replay\)/.test((e as { details?: string }).details ?? '')) throw e;
        }
      }
    };
    const job = await signed(() => client.getJob(jobs.honest[0]!.grid.job_id));
    const request = {
      jobId: job.jobId,
      modelId: net.model.modelId,
      promptTokenIds: job.promptTokenIds,
      outputTokenIds: job.outputTokenIds,
      topK: 8,
      excludeWorker: honest,
    };
    const refused = await signed(() => client.score({ ...request, worker: fabricator.address })).then(
      () => undefined,
      (e: { details?: string }) => e.details ?? String(e),
    );
    expect(refused).toMatch(/no_worker_available/);
    // the same request naming the honest second worker is scored, by it
    const scored = await signed(() => client.score({ ...request, worker: honest2 }));
    expect(same(scored.worker, honest2)).toBe(true);
    expect(scored.positions).toHaveLength(job.outputTokenIds.length);
    // and the fabricator is not listed to draw from any more
    const listed = (await signed(() => client.listScorers(net.model.modelId))).map((c) =>
      c.worker.toLowerCase(),
    );
    expect(listed).not.toContain(fabricator.address.toLowerCase());
    for (const w of [honest, honest2, sybil.address]) expect(listed).toContain(w.toLowerCase());
    // in the audits: a first kept score is the first candidate's, or the second one's with the
    // fabricator ahead of it in the recomputed draw (asked, and passed over)
    let passedOver = 0;
    for (const audits of [...auditsOf(honest), ...auditsOf(sybil.address)])
      for (const a of audits) {
        const first = a.scores?.[0];
        expect(first).toBeDefined();
        expect(same(first!.worker, fabricator.address)).toBe(false);
        if (first!.drawIndex === 0) continue;
        expect(first!.drawIndex).toBe(1);
        expect(drawKey(a.scorerSeed!, fabricator.address)).toBeLessThan(
          drawKey(a.scorerSeed!, first!.worker),
        );
        passedOver++;
      }
    console.log(
      `fabricate as a scorer: refused by the gateway when named (${refused}); drawn first and passed over in ${passedOver} audits`,
    );
  });

  it('the fabricator is still caught: two drawn scorers agree, every job FAIL, its bond slashed', async () => {
    let sybilScored = 0;
    for (const audits of auditsOf(fabricator.address)) {
      expect(audits).toHaveLength(FABRICATED_JOBS);
      for (const a of audits) {
        expect(a.vote).toBe('fail');
        expect(a.reasons!.some((r) => ['GREEDY_MISMATCH', 'SEEDED_MISMATCH'].includes(r.code))).toBe(true);
        // confirmed by a second, independent scorer; never by the fabricator, which cannot score
        const scorers = (a.scores ?? []).map((s) => s.worker.toLowerCase());
        expect(scorers).toHaveLength(2);
        expect(new Set(scorers).size).toBe(2);
        expect(scorers).not.toContain(fabricator.address.toLowerCase());
        expect(a.scores!.map((s) => s.verdict)).toEqual(['fail', 'fail']);
        if (scorers.includes(sybil.address.toLowerCase())) sybilScored++;
      }
    }
    const slash = net.auditConfig.workerSlashAmount;
    const mine = finalized.filter((f) => same(f.worker, fabricator.address));
    expect(mine).toHaveLength(FABRICATED_JOBS);
    for (const f of mine) {
      expect(f.verdict).toBe(2);
      expect(f.slashed).toBe(slash);
      const audit = await getAudit(rt.publicClient, {
        grid: net.contracts.grid,
        leaf: f.leaf,
        validators: net.validators,
      });
      expect(audit.verdict).toBe('fail');
      expect(Object.values(audit.votes)).toEqual(['fail', 'fail', 'fail']);
    }
    const bond = await bondOf(fabricator.address);
    expect(bond.amount).toBe(bondsBefore.get(fabricator.address)! - BigInt(FABRICATED_JOBS) * slash);
    console.log(
      `fabricate: ${mine.length} jobs FAIL (3 votes each, each confirmed by two drawn scorers; the Sybil among them in ${sybilScored} of ${3 * FABRICATED_JOBS}), slashed ${FABRICATED_JOBS} × ${slash} wei`,
    );
  });
});
