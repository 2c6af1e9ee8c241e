/**
 * The validator loop end to end against the in-test gateway (REAL tiny engine, signed audit
 * requests) and an in-memory chain with IAudit's semantics: follow batches, fix randomness,
 * judge, commit once (across crashes and restarts), reveal after the commit deadline and never
 * before (also after a restart, from the state file), finalize, withdraw; both modes.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { voteCommitment } from '@aipg/chain';
import {
  CANONICAL_SAMPLER,
  hashScorePositions,
  receiptLeafHash,
  receiptTypedData,
  scoreTypedData,
} from '@aipg/core';
import { createLlamaEngine, type LlamaEngine } from '@aipg/inference';
import { pino } from 'pino';
import { type Address, type Hex, keccak256, recoverTypedDataAddress, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { drawScorers, scorerDrawSeed } from '../src/checkers/draw.ts';
import { ValidatorError } from '../src/errors.ts';
import { HardReason, SoftSignal } from '../src/judge/judge.ts';
import type { ValidatorOptions } from '../src/node/options.ts';
import { startValidator, type Validator } from '../src/node/validator.ts';
import {
  type AuditGateway,
  type FixtureScorer,
  type GatewayJob,
  startAuditGateway,
} from './fixtures/audit-gateway.ts';
import { createFakeChain } from './fixtures/fake-chain.ts';
import {
  type AuditCase,
  fabricateRandom,
  GATEWAY,
  greedy,
  MODEL_DIR,
  presetModel,
  prng,
  recommit,
  runJob,
  seeded,
  truncateLength,
  WORKER,
} from './fixtures/jobs.ts';
import { improbable } from './fixtures/liars.ts';

// anvil's public test keys (never for real funds)
const WORKER_KEY = privateKeyToAccount('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d');
const VALIDATOR_KEY: Hex = '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a';
const VALIDATOR = privateKeyToAccount(VALIDATOR_KEY).address;
const STRANGER = privateKeyToAccount('0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6');
const GRID: Address = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
/** Cross-check workers: bond owner and operator key. */
const SCORER: Address = '0x976EA74026E726554dB657fA54763abd0C3a0aa9';
const SCORER_KEY = privateKeyToAccount('0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356');
const SCORER2_KEY = privateKeyToAccount('0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97');
const SCORER2: Address = privateKeyToAccount(keccak256(toHex('second scorer owner'))).address;
/** The cheater's Sybil bond: another owner and key, nothing on chain ties it to the audited worker. */
const SYBIL_KEY = privateKeyToAccount('0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6');
const SYBIL: Address = privateKeyToAccount(keccak256(toHex('sybil owner'))).address;

let tiny: Awaited<ReturnType<typeof presetModel>>;
let worker: LlamaEngine;
let scorer: LlamaEngine;
let gateway: AuditGateway;
let dataDir: string;
const running: Validator[] = [];
const silent = pino({ level: 'silent' });

beforeAll(async () => {
  expect(WORKER_KEY.address).toBe(WORKER);
  tiny = await presetModel('tiny');
  worker = await createLlamaEngine({ modelPath: tiny.path, threads: 1, contextSize: 1024 });
  scorer = await createLlamaEngine({ modelPath: tiny.path, threads: 1, contextSize: 1024 });
  gateway = await startAuditGateway({
    gateway: GATEWAY,
    validators: [VALIDATOR],
    chainId: 31337,
    grid: GRID,
    scorers: honestScorers(),
  });
});
const honestScorers = (): FixtureScorer[] => [
  { worker: SCORER, account: SCORER_KEY, engine: scorer },
  { worker: SCORER2, account: SCORER2_KEY, engine: scorer },
];
afterEach(async () => {
  gateway.scorers = honestScorers();
  gateway.forgetSignatures();
  for (const v of running.splice(0)) await v.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});
afterAll(async () => {
  await gateway?.close();
  await worker?.close();
  await scorer?.close();
});

async function signed(c: AuditCase, by = WORKER_KEY): Promise<GatewayJob> {
  const signature = await by.signTypedData(receiptTypedData(c.receipt, 31337, GRID));
  return { ...c, signature, signer: by.address };
}

function fakeChain(extra: Partial<Parameters<typeof createFakeChain>[0]> = {}) {
  return createFakeChain({
    grid: GRID,
    operator: VALIDATOR,
    owner: VALIDATOR,
    workers: {
      [WORKER.toLowerCase()]: WORKER,
      [SCORER_KEY.address.toLowerCase()]: SCORER,
      [SCORER2_KEY.address.toLowerCase()]: SCORER2,
      [SYBIL_KEY.address.toLowerCase()]: SYBIL,
    },
    models: { [tiny.modelId.toLowerCase()]: { name: tiny.name, weightsHash: tiny.weightsHash } },
    ...extra,
  });
}

async function options(extra: Partial<ValidatorOptions> = {}): Promise<ValidatorOptions> {
  dataDir ||= await mkdtemp(join(tmpdir(), 'aipg-validator-'));
  return {
    network: 'devnet',
    chainId: 31337,
    rpcUrl: 'http://127.0.0.1:1',
    grid: GRID,
    startBlock: 0n,
    operatorKey: VALIDATOR_KEY,
    gateways: [{ url: gateway.url, address: GATEWAY }],
    mode: 'reexecute',
    gguf: [tiny.path],
    modelDir: MODEL_DIR,
    presets: true,
    threads: 1,
    gpuLayers: 0,
    contextSize: 1024,
    dataDir,
    pollIntervalMs: 3_600_000, // passes are driven by poll()
    logRange: 50,
    confirmations: 0,
    finalize: 'mine',
    withdrawMin: 10n ** 18n,
    metrics: null,
    logLevel: 'silent',
    ...extra,
  };
}

async function start(chain: ReturnType<typeof createFakeChain>, extra: Partial<ValidatorOptions> = {}) {
  const v = await startValidator(await options(extra), { chain: chain.chain, logger: silent });
  running.push(v);
  return v;
}

const chat = (content: string) => ({ kind: 'chat' as const, messages: [{ role: 'user' as const, content }] });

async function jobs() {
  const vocab = { vocabSize: worker.vocabSize, eosTokenId: worker.eosTokenId, isEndToken: worker.isEndToken };
  const honestGreedy = await runJob(worker, tiny, chat('Tell me about the bridge'), greedy(30));
  const honestSeeded = await runJob(worker, tiny, chat('What does the sea know?'), seeded(7, 40));
  const fabricated = fabricateRandom(await runJob(worker, tiny, chat('hi'), greedy(30)), prng(1), vocab);
  const truncated = truncateLength(await runJob(worker, tiny, chat('Tell me a story'), seeded(9, 60)), 3);
  return { honestGreedy, honestSeeded, fabricated, truncated };
}

/**
 * Settles `served` (evidence as the test gateway serves it) as batch `batchId` on a fake chain, runs a
 * validator over it once, and returns what it did: its status, state file audits by job, and log lines.
 */
async function judgeServed(batchId: bigint, served: Parameters<AuditGateway['addBatch']>[1]) {
  const batch = gateway.addBatch(batchId, served);
  const chain = fakeChain();
  chain.settle(
    batchId,
    batch.root,
    GATEWAY,
    served.map((c) => c.receipt),
  );
  chain.mine(3n);
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  const v = await startValidator(await options({ metrics: { port: 0, host: '127.0.0.1' } }), {
    chain: chain.chain,
    logger,
  });
  running.push(v);
  await v.poll();
  const s = v.status();
  const file = JSON.parse(await readFile(s.stateFile, 'utf8'));
  const byJob = new Map(
    (Object.values(file.audits) as { jobId: Hex; vote?: string; gatewayFaults?: string[] }[]).map((a) => [
      a.jobId,
      a,
    ]),
  );
  return { chain, lines, v, s, file, byJob };
}

describe('start-up', () => {
  test('refuses without a validator bond, naming the command', async () => {
    const chain = fakeChain({ owner: null });
    const e = await startValidator(await options(), { chain: chain.chain, logger: silent }).catch(
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(ValidatorError);
    expect(e).toMatchObject({ code: 'VALIDATOR_BOND_MISSING' });
    expect((e as ValidatorError).shortMessage).toMatch(/aipg stake validator 10000/);
  });

  test('refuses a bond below the minimum', async () => {
    const chain = fakeChain({ bondActive: false });
    const e = await startValidator(await options(), { chain: chain.chain, logger: silent }).catch(
      (x: unknown) => x,
    );
    expect(e).toMatchObject({ code: 'VALIDATOR_BOND_INACTIVE' });
    expect((e as ValidatorError).shortMessage).toMatch(/aipg stake validator 5000/);
  });
});

describe('the audit loop', () => {
  test('fixes randomness, judges, commits once, reveals after the commit deadline, finalizes and withdraws (re-execute)', async () => {
    const j = await jobs();
    const list = [j.honestGreedy, j.honestSeeded, j.fabricated, j.truncated];
    const signedJobs = await Promise.all(list.map((c) => signed(c)));
    const batch = gateway.addBatch(1n, signedJobs);
    const chain = fakeChain();
    chain.settle(
      1n,
      batch.root,
      GATEWAY,
      list.map((c) => c.receipt),
    );
    const v = await start(chain);
    await v.poll(); // randomness not ready yet (delay 2 blocks)
    expect(chain.calls.filter((c) => c.fn === 'fixRandomness').length).toBeGreaterThan(0);
    expect(v.status().batches.waiting).toBe(1);
    chain.mine(3n);
    await v.poll(); // fixed, listed, judged, committed
    const s = v.status();
    expect(s.batches.listed).toBe(1);
    expect(s.audits.committed).toBe(4);
    expect(chain.calls.filter((c) => c.fn === 'revealVote')).toHaveLength(0);
    const commits = chain.calls.filter((c) => c.fn === 'commitVote');
    expect(commits).toHaveLength(4);
    // Every commitment sends the worker's signature the gateway served (what the contract checks).
    for (const c of commits)
      expect(c.args[2]).toBe(
        signedJobs.find((x) => x.jobId === (c.args[1] as { jobId: Hex }).jobId)!.signature,
      );
    // Every audit request was signed by the validator's operator and accepted.
    const audits = gateway.requests.filter((r) => r.path.startsWith('/v1/audit/'));
    expect(audits.every((r) => r.validator === VALIDATOR && r.status === 200)).toBe(true);

    // The state file records votes, evidence hashes, salts and reasons; each commitment hides exactly that.
    type Saved = {
      jobId: Hex;
      leaf: Hex;
      vote: 'pass' | 'fail';
      evidenceHash: Hex;
      salt: Hex;
      commitment: Hex;
    };
    const file = JSON.parse(await readFile(s.stateFile, 'utf8'));
    const saved = Object.values(file.audits) as (Saved & { reasons: { code: string }[] })[];
    const truncatedRecord = saved.find((a) => a.jobId === j.truncated.jobId)!;
    expect(truncatedRecord.reasons.map((r) => r.code)).toContain(HardReason.lengthEarly);
    expect(truncatedRecord.evidenceHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(new Set(saved.map((a) => a.salt)).size).toBe(4);
    for (const a of saved) {
      expect(a.salt).toMatch(/^0x[0-9a-f]{64}$/);
      const sent = commits.find((c) => (c.args[1] as { jobId: Hex }).jobId === a.jobId)!;
      expect(sent.args[4]).toBe(voteCommitment({ ...a, validator: VALIDATOR }));
    }
    const byJob = new Map(saved.map((a) => [a.jobId, a.vote]));
    expect(byJob.get(j.honestGreedy.jobId)).toBe('pass');
    expect(byJob.get(j.honestSeeded.jobId)).toBe('pass');
    expect(byJob.get(j.fabricated.jobId)).toBe('fail');
    expect(byJob.get(j.truncated.jobId)).toBe('fail');

    // Up to the commit deadline itself: nothing is committed twice, nothing revealed.
    const { deadline, revealDeadline } = chain.deadlines(1n);
    await v.poll();
    chain.advance(deadline - chain.now());
    expect(chain.now()).toBe(deadline);
    await v.poll();
    expect(chain.calls.filter((c) => c.fn === 'commitVote')).toHaveLength(4);
    expect(chain.calls.filter((c) => c.fn === 'revealVote')).toHaveLength(0);

    // The first block after it: every vote is revealed, once.
    chain.advance(1n);
    await v.poll();
    expect(v.status().audits.revealed).toBe(4);
    expect(v.status().votes).toEqual({ pass: 2, fail: 2 });
    const reveals = chain.calls.filter((c) => c.fn === 'revealVote');
    expect(reveals).toHaveLength(4);
    expect(reveals.every((c) => c.timestamp > deadline)).toBe(true);
    expect([...chain.audits.values()].map((a) => a.passVotes + a.failVotes)).toEqual([1, 1, 1, 1]);

    // Finalizing waits for the reveal deadline, then applies the verdicts; then withdraw the PASS rewards.
    await v.poll();
    expect(chain.calls.filter((c) => c.fn === 'finalize').every((c) => c.timestamp > revealDeadline)).toBe(
      true,
    );
    chain.advance(revealDeadline - chain.now() + 1n);
    await v.poll();
    expect(chain.calls.filter((c) => c.fn === 'finalize' && c.timestamp > revealDeadline)).toHaveLength(4);
    expect(v.status().audits.finalized).toBe(4);
    expect(chain.calls.filter((c) => c.fn === 'withdrawEarnings')).toHaveLength(1);
    await v.poll();
    expect(v.status().batches.done).toBe(1);
    expect(chain.calls.filter((c) => c.fn === 'commitVote')).toHaveLength(4);
    expect(chain.calls.filter((c) => c.fn === 'revealVote')).toHaveLength(4);
  });

  test('the vote and its salt are saved before the commitment is sent', async () => {
    const j = await jobs();
    const list = [j.fabricated];
    const batch = gateway.addBatch(6n, await Promise.all(list.map((c) => signed(c))));
    const chain = fakeChain();
    chain.settle(
      6n,
      batch.root,
      GATEWAY,
      list.map((c) => c.receipt),
    );
    chain.mine(3n);
    const seen: unknown[] = [];
    const commitVote = chain.chain.commitVote;
    const v = await start({
      ...chain,
      chain: {
        ...chain.chain,
        async commitVote(p) {
          // What a crash right now would leave behind.
          seen.push(Object.values(JSON.parse(await readFile(v.status().stateFile, 'utf8')).audits));
          return commitVote(p);
        },
      },
    });
    await v.poll();
    expect(seen).toHaveLength(1);
    const [saved] = seen[0] as { status: string; vote: 'fail'; evidenceHash: Hex; salt: Hex; leaf: Hex }[];
    expect(saved).toMatchObject({ status: 'committing', vote: 'fail', leaf: batch.leaves[0] });
    const sent = chain.calls.find((c) => c.fn === 'commitVote')!;
    expect(sent.args[4]).toBe(voteCommitment({ ...saved!, validator: VALIDATOR }));
  });

  test('a restart resumes from the state file: never commits twice, still reveals', async () => {
    const j = await jobs();
    const list = [j.honestGreedy, j.fabricated];
    const batch = gateway.addBatch(2n, await Promise.all(list.map((c) => signed(c))));
    const chain = fakeChain();
    chain.settle(
      2n,
      batch.root,
      GATEWAY,
      list.map((c) => c.receipt),
    );
    chain.mine(3n);
    // The first commitment lands on chain, but the node sees an error (crash / RPC drop).
    chain.crashAfterNext('commitVote');
    const first = await start(chain);
    await first.poll();
    expect(first.status().audits).toMatchObject({ committing: 1, committed: 1 });
    expect([...chain.votes.values()].every((v) => v.size === 1)).toBe(true);
    await first.stop();
    running.length = 0;

    // A new process (its own salts would differ): the commitments are revealed from the state file.
    const again = await start(chain);
    await again.poll();
    expect(again.status().audits.committed).toBe(2);
    // voteOf said the first one landed: exactly one commitment per job.
    expect(chain.calls.filter((c) => c.fn === 'commitVote')).toHaveLength(2);
    expect(again.status().cursor).toBeGreaterThan(0n);
    await again.stop();
    running.length = 0;

    chain.advance(chain.deadlines(2n).deadline - chain.now() + 1n);
    // The first reveal lands, but the node sees an error; a restart finds it revealed.
    chain.crashAfterNext('revealVote');
    const third = await start(chain);
    await third.poll();
    expect(third.status().audits).toMatchObject({ revealing: 1, revealed: 1 });
    await third.stop();
    running.length = 0;
    const fourth = await start(chain);
    await fourth.poll();
    expect(fourth.status().audits.revealed).toBe(2);
    expect(chain.calls.filter((c) => c.fn === 'revealVote')).toHaveLength(2);
    expect(chain.calls.filter((c) => c.fn === 'revealVote').map((c) => c.args[1])).toEqual(
      expect.arrayContaining(['pass', 'fail']),
    );
    // Nothing was judged again: the gateway served each job once.
    const jobFetches = gateway.requests.filter((r) =>
      list.some((c) => r.path === `/v1/audit/jobs/${c.jobId}`),
    );
    expect(jobFetches).toHaveLength(2);
  });

  test('a commitment whose reveal window closed while the node was down is reported unrevealed', async () => {
    const j = await jobs();
    const list = [j.honestSeeded];
    const batch = gateway.addBatch(7n, await Promise.all(list.map((c) => signed(c))));
    const chain = fakeChain();
    chain.settle(
      7n,
      batch.root,
      GATEWAY,
      list.map((c) => c.receipt),
    );
    chain.mine(3n);
    const first = await start(chain);
    await first.poll();
    expect(first.status().audits.committed).toBe(1);
    await first.stop();
    running.length = 0;
    chain.advance(chain.deadlines(7n).revealDeadline - chain.now() + 1n);
    const again = await start(chain);
    await again.poll();
    expect(again.status().audits.unrevealed).toBe(1);
    expect(chain.calls.filter((c) => c.fn === 'revealVote')).toHaveLength(0);
  });

  test('skips unaudited and unassigned receipts; abstains on forged signatures and on a confidential receipt served without its evidence', async () => {
    const j = await jobs();
    const confidential = { ...j.honestGreedy, jobId: `0x${'c1'.repeat(32)}` as Hex };
    confidential.receipt = { ...confidential.receipt, jobId: confidential.jobId, confidential: true };
    const forged = { ...j.honestSeeded, jobId: `0x${'f0'.repeat(32)}` as Hex };
    forged.receipt = { ...forged.receipt, jobId: forged.jobId };
    const list = [
      await signed(confidential),
      await signed(j.fabricated),
      await signed(j.truncated),
      await signed(forged, STRANGER),
    ];
    const batch = gateway.addBatch(3n, list);
    const [, fabricatedLeaf, truncatedLeaf] = batch.leaves;
    const chain = fakeChain({
      notAudited: new Set([fabricatedLeaf!.toLowerCase()]),
      notAssigned: new Set([truncatedLeaf!.toLowerCase()]),
    });
    chain.settle(
      3n,
      batch.root,
      GATEWAY,
      list.map((c) => c.receipt),
    );
    chain.mine(3n);
    const v = await start(chain);
    await v.poll();
    const s = v.status();
    // The forged one is not provably the worker's; the confidential one is audited like any other, and
    // the gateway serves no evidence for it: abstain on both, never a vote against the worker.
    expect(s.audits).toMatchObject({ abstained: 2, committed: 0, pending: 0 });
    expect(chain.calls.filter((c) => c.fn === 'commitVote')).toHaveLength(0);
    // The gateway settled a receipt it holds no worker signature for, and one it holds no evidence for.
    expect(s.gatewayFaults.byGateway).toEqual({
      [GATEWAY.toLowerCase()]: { RECEIPT_SIGNATURE: 1, ATTESTATION_MISSING: 1 },
    });
  });

  test('an image job is not judged as a text one; without a copy of its model: abstain before reading its evidence, no fault blamed', async () => {
    const j = await jobs();
    const image = { ...j.honestGreedy, jobId: `0x${'1a'.repeat(32)}` as Hex };
    image.receipt = { ...image.receipt, jobId: image.jobId };
    const list = [await signed(image)];
    const batch = gateway.addBatch(3n, list);
    // A receipt whose model is an image model on chain, of weights this validator has no copy of.
    const chain = fakeChain({
      models: {
        [tiny.modelId.toLowerCase()]: { name: tiny.name, weightsHash: tiny.weightsHash, kind: 'image' },
      },
    });
    chain.settle(
      3n,
      batch.root,
      GATEWAY,
      list.map((c) => c.receipt),
    );
    chain.mine(3n);
    const v = await start(chain);
    await v.poll();
    const s = v.status();
    expect(s.audits).toMatchObject({ abstained: 1, committed: 0, pending: 0 });
    expect(chain.calls.filter((c) => c.fn === 'commitVote')).toHaveLength(0);
    expect(s.gatewayFaults.byGateway).toEqual({});
    // Its evidence (text-shaped here; an image job's is not) was never asked for, let alone judged.
    expect(gateway.requests.filter((r) => r.path.toLowerCase().includes(image.jobId))).toEqual([]);
    const file = JSON.parse(await readFile(v.status().stateFile, 'utf8')) as {
      audits: Record<string, { abstainReason?: string }>;
    };
    expect(Object.values(file.audits)[0]?.abstainReason).toMatch(/no copy of image model/);
  });

  test('a worker that names a new operator key after settlement is still audited', async () => {
    const j = await jobs();
    const list = [j.fabricated];
    const batch = gateway.addBatch(5n, await Promise.all(list.map((c) => signed(c))));
    // Now: WORKER_KEY is nobody's operator; at the settlement block it was WORKER's.
    const chain = fakeChain({ workers: {}, formerOperators: { [WORKER.toLowerCase()]: WORKER } });
    chain.settle(
      5n,
      batch.root,
      GATEWAY,
      list.map((c) => c.receipt),
    );
    chain.mine(3n);
    const v = await start(chain);
    await v.poll();
    expect(v.status().audits.committed).toBe(1);
    chain.advance(chain.deadlines(5n).deadline - chain.now() + 1n);
    await v.poll();
    expect(v.status().audits.revealed).toBe(1);
    expect(v.status().votes.fail).toBe(1);
  });

  test('cross-check mode: scores come from another worker through the gateway', async () => {
    const j = await jobs();
    const list = [j.honestSeeded, j.fabricated];
    const batch = gateway.addBatch(4n, await Promise.all(list.map((c) => signed(c))));
    const chain = fakeChain();
    chain.settle(
      4n,
      batch.root,
      GATEWAY,
      list.map((c) => c.receipt),
    );
    chain.mine(3n);
    const before = gateway.requests.filter((r) => r.path === '/v1/audit/score').length;
    const v = await start(chain, { mode: 'crosscheck', metrics: { port: 0, host: '127.0.0.1' } });
    await v.poll();
    chain.advance(chain.deadlines(4n).deadline - chain.now() + 1n);
    await v.poll();
    expect(v.status().mode).toBe('crosscheck');
    expect(v.status().votes).toEqual({ pass: 1, fail: 1 });
    const scores = gateway.requests.filter((r) => r.path === '/v1/audit/score').slice(before);
    // One for the PASS; two for the FAIL (one scorer's word never fails a worker).
    expect(scores).toHaveLength(3);
    expect(scores.every((r) => (r.body as { exclude_worker: string }).exclude_worker === WORKER)).toBe(true);
    const file = JSON.parse(await readFile(v.status().stateFile, 'utf8'));
    type Kept = {
      worker: Address;
      operator: Address;
      signature: Hex;
      positionsHash: Hex;
      file: string;
      verdict: string;
    };
    const audits = Object.values(file.audits) as {
      jobId: Hex;
      leaf: Hex;
      vote: string;
      scorer: string;
      scorerSeed: Hex;
      scores: Kept[];
    }[];
    for (const a of audits) {
      // Each scorer the one the on-chain draw names, in draw order.
      const randomness = keccak256(toHex('r4'));
      expect(a.scorerSeed).toBe(scorerDrawSeed({ randomness, leaf: a.leaf, validator: VALIDATOR }));
      const order = drawScorers(
        a.scorerSeed,
        [
          { worker: SCORER, operator: SCORER_KEY.address },
          { worker: SCORER2, operator: SCORER2_KEY.address },
        ],
        { workers: [WORKER], operators: [WORKER] },
      ).map((c) => c.worker);
      expect(a.scores.map((k) => k.worker)).toEqual(order.slice(0, a.vote === 'fail' ? 2 : 1));
      expect(a.scorer).toBe(order[0]);
      // Kept as evidence: the signed set, checkable by anyone.
      for (const k of a.scores) {
        const kept = JSON.parse(await readFile(k.file, 'utf8'));
        expect(kept.attestation.auditedJobId).toBe(a.jobId);
        expect(hashScorePositions(kept.positions)).toBe(k.positionsHash);
        expect(
          await recoverTypedDataAddress({
            ...scoreTypedData(kept.attestation, 31337, GRID),
            signature: k.signature,
          }),
        ).toBe(k.operator);
        expect(k.verdict).toBe(a.vote);
      }
    }
    const text = await (await fetch(v.status().metricsUrl!)).text();
    expect(text).toMatch(/aipg_validator_audits_total\{verdict="pass"\} 1/);
    expect(text).toMatch(/aipg_validator_audits_total\{verdict="fail"\} 1/);
    expect(text).toMatch(/aipg_validator_attestations_total\{vote="fail",outcome="committed"\} 1/);
    expect(text).toMatch(/aipg_validator_attestations_total\{vote="fail",outcome="revealed"\} 1/);
  });

  test('cross-check against a Sybil scorer: the honest worker is never FAILed (abstain at worst), both signed sets kept', async () => {
    const j = await jobs();
    const list = [j.honestGreedy, j.honestSeeded];
    const served = await Promise.all(list.map((c) => signed(c)));
    const batch = gateway.addBatch(12n, served);
    gateway.scorers = [
      { worker: SCORER, account: SCORER_KEY, engine: scorer },
      { worker: SYBIL, account: SYBIL_KEY, engine: scorer, lie: improbable },
    ];
    // The batch's randomness that draws the Sybil first for the first job and the honest one first
    // for the second (any randomness gives one of these per job; this one gives both cases).
    const listed = gateway.scorers.map((x) => ({ worker: x.worker, operator: x.account.address }));
    const first = (r: Hex, leaf: Hex) =>
      drawScorers(scorerDrawSeed({ randomness: r, leaf, validator: VALIDATOR }), listed, {
        workers: [WORKER],
        operators: [WORKER],
      })[0]!.worker;
    let randomness: Hex | undefined;
    for (let i = 0; !randomness; i++) {
      const r = keccak256(toHex(`sybil batch ${i}`));
      if (first(r, batch.leaves[0]!) === SYBIL && first(r, batch.leaves[1]!) === SCORER) randomness = r;
    }
    const chain = fakeChain({ randomness: () => randomness! });
    chain.settle(
      12n,
      batch.root,
      GATEWAY,
      list.map((c) => c.receipt),
    );
    chain.mine(3n);
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const v = await startValidator(
      await options({ mode: 'crosscheck', metrics: { port: 0, host: '127.0.0.1' } }),
      { chain: chain.chain, logger },
    );
    running.push(v);
    await v.poll();
    chain.advance(chain.deadlines(12n).deadline - chain.now() + 1n);
    await v.poll();
    expect(v.status().votes).toEqual({ pass: 1, fail: 0 });
    expect(v.status().audits.abstained).toBe(1);
    expect(chain.calls.filter((c) => c.fn === 'commitVote')).toHaveLength(1);
    const file = JSON.parse(await readFile(v.status().stateFile, 'utf8'));
    const framed = file.audits[batch.leaves[0]!.toLowerCase()] ?? file.audits[batch.leaves[0]!];
    expect(framed.status).toBe('abstained');
    expect(framed.scorerDisagreement).toBe(true);
    expect(framed.abstainReason).toMatch(/scorer disagreement/);
    expect(framed.scores.map((k: { worker: Address; verdict: string }) => [k.worker, k.verdict])).toEqual([
      [SYBIL, 'fail'],
      [SCORER, 'pass'],
    ]);
    // The Sybil's lie is kept, signed by its key: evidence against its bond.
    const lie = JSON.parse(await readFile(framed.scores[0].file, 'utf8'));
    expect(
      await recoverTypedDataAddress({
        ...scoreTypedData(lie.attestation, 31337, GRID),
        signature: lie.signature,
      }),
    ).toBe(SYBIL_KEY.address);
    expect(receiptLeafHash(list[0]!.receipt)).toBe(batch.leaves[0]);
    const passed = file.audits[batch.leaves[1]!.toLowerCase()] ?? file.audits[batch.leaves[1]!];
    expect(passed.vote).toBe('pass');
    expect(passed.scores.map((k: { worker: Address }) => k.worker)).toEqual([SCORER]);
    const text = await (await fetch(v.status().metricsUrl!)).text();
    expect(text).toMatch(/aipg_validator_scorer_disagreements_total 1/);
    const warned = lines.map((l) => JSON.parse(l)).filter((l) => /scorer disagreement/.test(l.msg));
    expect(warned.length).toBeGreaterThan(0);
  });

  test("a dishonest gateway's evidence for an honest worker: abstain, no vote, the gateway counted and logged", async () => {
    const j = await jobs();
    const honestThird = await runJob(worker, tiny, chat('Where does the road go?'), greedy(20));
    // The worker signed each receipt; the gateway serves altered params, output or pricing with it.
    const served = [
      { ...(await signed(j.honestSeeded)), params: { ...j.honestSeeded.params, seed: 8 } },
      {
        ...(await signed(j.honestGreedy)),
        finishReason: j.honestGreedy.finishReason === 'stop' ? ('length' as const) : ('stop' as const),
      },
      {
        ...(await signed(honestThird)),
        pricing: { ...honestThird.pricing, outputPerMTokens: '1' },
      },
      await signed(j.fabricated), // a genuine cheat, consistent evidence: still FAILed
    ];
    const { chain, lines, v, s, file, byJob } = await judgeServed(8n, served);
    expect(s.audits).toMatchObject({ abstained: 3, committed: 1 });
    // Only the cheat's vote was committed, and it is a FAIL; no honest worker is voted on at all.
    const commits = chain.calls.filter((c) => c.fn === 'commitVote');
    expect(commits.map((c) => (c.args[1] as { jobId: Hex }).jobId)).toEqual([j.fabricated.jobId]);
    expect(byJob.get(j.fabricated.jobId)!.vote).toBe('fail');
    expect(byJob.get(j.honestSeeded.jobId)).toMatchObject({ gatewayFaults: [HardReason.requestHash] });
    expect(byJob.get(j.honestSeeded.jobId)!.vote).toBeUndefined();
    expect(byJob.get(j.honestGreedy.jobId)).toMatchObject({ gatewayFaults: [HardReason.outputHash] });
    expect(byJob.get(honestThird.jobId)).toMatchObject({ gatewayFaults: [HardReason.fee] });
    const gw = GATEWAY.toLowerCase();
    const expected = { [HardReason.requestHash]: 1, [HardReason.outputHash]: 1, [HardReason.fee]: 1 };
    expect(s.gatewayFaults).toEqual({ total: 3, byGateway: { [gw]: expected } });
    expect(file.gatewayFaults).toEqual({ [gw]: expected });
    const text = await (await fetch(s.metricsUrl!)).text();
    for (const code of Object.keys(expected))
      expect(text).toContain(`aipg_validator_gateway_faults_total{gateway="${gw}",reason="${code}"} 1`);
    const health = await (await fetch(s.metricsUrl!.replace('/metrics', '/healthz'))).json();
    expect(health).toMatchObject({ gatewayFaults: 3 });
    // Each is put on chain once (the dashboard shows GatewayFaultReported), with the leaf's proof;
    // a later poll reports nothing twice.
    const reports = chain.calls.filter((c) => c.fn === 'reportGatewayFault');
    expect(reports.map((c) => c.args[3]).sort()).toEqual(Object.keys(expected).sort());
    for (const r of reports) {
      expect((r.args[2] as Hex[]).length).toBeGreaterThan(0);
      expect(r.args[4]).toMatch(/^0x[0-9a-f]{64}$/);
    }
    await v.poll();
    expect(chain.calls.filter((c) => c.fn === 'reportGatewayFault')).toHaveLength(3);
    // A warning per job names the gateway, the job and the codes; never the prompt text.
    const warnings = lines
      .map((l) => JSON.parse(l))
      .filter((l) => /gateway fault: its audit evidence/.test(l.msg));
    expect(warnings).toHaveLength(3);
    for (const w of warnings) {
      expect(w).toMatchObject({ level: 40, gateway: GATEWAY });
      expect(w.jobId).toMatch(/^0x[0-9a-f]{64}$/);
      expect(w.reasons).toHaveLength(1);
    }
    expect(lines.join('\n')).not.toMatch(/secret system text|Tell me about the bridge/);
    // Past the commit deadline: the cheat is revealed FAIL; nothing else ever is.
    chain.advance(chain.deadlines(8n).deadline - chain.now() + 1n);
    await v.poll();
    expect(v.status().votes).toEqual({ pass: 0, fail: 1 });
  });

  test('each job is judged by the sampler its receipt names: no node-wide switch', async () => {
    // Two workers' seeded jobs in one batch, both sampled by an RNG that is not the job's seed
    // (an unseeded run, claimed with the request's seed 1234). One receipt names Ollama's sampler:
    // honest, judged statistically. The other names the canonical sampler (a seed cheat): replayed
    // and FAILed, although the same node just judged an Ollama job.
    const ran = await runJob(
      worker,
      tiny,
      chat('Tell me a story'),
      { maxTokens: 40, temperature: 1, topP: 0.95, seed: null, stop: [] },
      77,
    );
    const ollama = recommit(ran, { params: { ...ran.params, seed: 1234 }, sampler: 'ollama' });
    const cheat = recommit(ran, { jobId: `0x${'5e'.repeat(32)}`, params: { ...ran.params, seed: 1234 } });
    expect(cheat.sampler).toBe(CANONICAL_SAMPLER);
    const list = [ollama, cheat];
    const batch = gateway.addBatch(9n, await Promise.all(list.map((c) => signed(c))));
    const chain = fakeChain();
    chain.settle(
      9n,
      batch.root,
      GATEWAY,
      list.map((c) => c.receipt),
    );
    chain.mine(3n);
    const v = await start(chain);
    await v.poll();
    expect(v.status().audits.committed).toBe(2);
    const file = JSON.parse(await readFile(v.status().stateFile, 'utf8'));
    type Saved = { jobId: Hex; vote: string; reasons: { code: string }[]; soft: string[] };
    const byJob = new Map((Object.values(file.audits) as Saved[]).map((a) => [a.jobId, a]));
    expect(byJob.get(ollama.jobId)).toMatchObject({ vote: 'pass', reasons: [] });
    expect(byJob.get(ollama.jobId)!.soft).toContain(SoftSignal.samplerNotReplayed);
    expect(byJob.get(cheat.jobId)!.vote).toBe('fail');
    expect(byJob.get(cheat.jobId)!.reasons.map((r) => r.code)).toContain(HardReason.seededMismatch);
    expect(v.status().gatewayFaults.total).toBe(0);
    chain.advance(chain.deadlines(9n).deadline - chain.now() + 1n);
    await v.poll();
    expect(v.status().votes).toEqual({ pass: 1, fail: 1 });
  });

  test('a gateway serving another sampler than signed, or an altered input: abstain, report the gateway, never FAIL', async () => {
    const ran = await runJob(
      worker,
      tiny,
      chat('What does the sea know?'),
      { maxTokens: 40, temperature: 1, topP: 0.95, seed: null, stop: [] },
      78,
    );
    // An Ollama worker's honest seeded job, served as the canonical sampler's: the replay would FAIL it.
    const ollama = recommit(ran, { params: { ...ran.params, seed: 1234 }, sampler: 'ollama' });
    // An honest job whose input the gateway altered after tokenizing (and accepting) the original.
    const honest = await runJob(worker, tiny, chat('Where does the road go?'), greedy(20));
    const altered = {
      kind: 'chat' as const,
      messages: [
        { role: 'system' as const, content: 'secret system text' },
        { role: 'user' as const, content: 'Where does the road go?' },
      ],
    };
    const served = [
      { ...(await signed(ollama)), sampler: CANONICAL_SAMPLER },
      { ...(await signed(honest)), input: altered },
    ];
    const { chain, lines, v, s, byJob } = await judgeServed(10n, served);
    expect(s.audits).toMatchObject({ abstained: 2, committed: 0 });
    expect(chain.calls.filter((c) => c.fn === 'commitVote')).toHaveLength(0);
    expect(byJob.get(ollama.jobId)).toMatchObject({ gatewayFaults: [HardReason.requestHash] });
    expect(byJob.get(honest.jobId)).toMatchObject({ gatewayFaults: [HardReason.promptMismatch] });
    expect([...byJob.values()].every((a) => a.vote === undefined)).toBe(true);
    const gw = GATEWAY.toLowerCase();
    const expected = { [HardReason.requestHash]: 1, [HardReason.promptMismatch]: 1 };
    expect(s.gatewayFaults).toEqual({ total: 2, byGateway: { [gw]: expected } });
    const text = await (await fetch(s.metricsUrl!)).text();
    for (const code of Object.keys(expected))
      expect(text).toContain(`aipg_validator_gateway_faults_total{gateway="${gw}",reason="${code}"} 1`);
    expect(text).not.toMatch(/aipg_validator_audits_total\{verdict="fail"\}/);
    expect(
      lines.map((l) => JSON.parse(l)).filter((l) => /gateway fault: its audit evidence/.test(l.msg)),
    ).toHaveLength(2);
    expect(lines.join('\n')).not.toMatch(/secret system text|road/);
    chain.advance(chain.deadlines(10n).deadline - chain.now() + 1n);
    await v.poll();
    expect(v.status().votes).toEqual({ pass: 0, fail: 0 });
  });

  test('a state file of another validator is refused', async () => {
    const chain = fakeChain();
    const v = await start(chain);
    await v.stop();
    running.length = 0;
    const other = fakeChain({ owner: STRANGER.address });
    const e = await startValidator(await options(), { chain: other.chain, logger: silent }).catch(
      (x: unknown) => x,
    );
    expect(e).toMatchObject({ code: 'VALIDATOR_STATE_FILE' });
  });
});
