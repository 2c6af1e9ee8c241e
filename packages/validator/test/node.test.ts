/**
 * The validator loop end to end against the in-test gateway (REAL tiny engine, signed audit
 * requests) and an in-memory chain with IAudit's semantics: follow batches, fix randomness,
 * judge, attest once (across crashes and restarts), finalize, withdraw; both modes.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { receiptTypedData } from '@aipg/core';
import { createLlamaEngine, type LlamaEngine } from '@aipg/inference';
import { pino } from 'pino';
import type { Address, Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ValidatorError } from '../src/errors.ts';
import { HardReason } from '../src/judge/judge.ts';
import type { ValidatorOptions } from '../src/node/options.ts';
import { startValidator, type Validator } from '../src/node/validator.ts';
import { type AuditGateway, type GatewayJob, startAuditGateway } from './fixtures/audit-gateway.ts';
import { createFakeChain } from './fixtures/fake-chain.ts';
import {
  type AuditCase,
  fabricateRandom,
  GATEWAY,
  greedy,
  MODEL_DIR,
  presetModel,
  prng,
  runJob,
  seeded,
  truncateLength,
  WORKER,
} from './fixtures/jobs.ts';

// anvil's public test keys (never for real funds)
const WORKER_KEY = privateKeyToAccount('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d');
const VALIDATOR_KEY: Hex = '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a';
const VALIDATOR = privateKeyToAccount(VALIDATOR_KEY).address;
const STRANGER = privateKeyToAccount('0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6');
const SCORER: Address = '0x976EA74026E726554dB657fA54763abd0C3a0aa9';
const GRID: Address = '0x5FbDB2315678afecb367f032d93F642f64180aa3';

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
    scorer: { engine: scorer, worker: SCORER },
  });
});
afterEach(async () => {
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
    workers: { [WORKER.toLowerCase()]: WORKER },
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
    replaySeeded: true,
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
  test('fixes randomness, judges, attests once, finalizes and withdraws (re-execute)', async () => {
    const j = await jobs();
    const list = [j.honestGreedy, j.honestSeeded, j.fabricated, j.truncated];
    const batch = gateway.addBatch(1n, await Promise.all(list.map((c) => signed(c))));
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
    await v.poll(); // fixed, listed, judged, attested
    const s = v.status();
    expect(s.batches.listed).toBe(1);
    expect(s.audits.attested).toBe(4);
    expect(s.votes).toEqual({ pass: 2, fail: 2 });
    const attests = chain.calls.filter((c) => c.fn === 'attest');
    expect(attests).toHaveLength(4);
    const byJob = new Map(attests.map((c) => [(c.args[1] as { jobId: Hex }).jobId, c.args[3]]));
    expect(byJob.get(j.honestGreedy.jobId)).toBe('pass');
    expect(byJob.get(j.honestSeeded.jobId)).toBe('pass');
    expect(byJob.get(j.fabricated.jobId)).toBe('fail');
    expect(byJob.get(j.truncated.jobId)).toBe('fail');
    // Every audit request was signed by the validator's operator and accepted.
    const audits = gateway.requests.filter((r) => r.path.startsWith('/v1/audit/'));
    expect(audits.every((r) => r.validator === VALIDATOR && r.status === 200)).toBe(true);

    // The state file records votes, evidence hashes and reasons.
    const file = JSON.parse(await readFile(s.stateFile, 'utf8'));
    const truncatedRecord = Object.values(file.audits).find(
      (a) => (a as { jobId: string }).jobId === j.truncated.jobId,
    ) as {
      reasons: { code: string }[];
      evidenceHash: string;
    };
    expect(truncatedRecord.reasons.map((r) => r.code)).toContain(HardReason.lengthEarly);
    expect(truncatedRecord.evidenceHash).toMatch(/^0x[0-9a-f]{64}$/);

    // Nothing is attested twice.
    await v.poll();
    expect(chain.calls.filter((c) => c.fn === 'attest')).toHaveLength(4);

    // After the window: finalize (verdicts), then withdraw the PASS rewards.
    chain.advance(601n);
    await v.poll();
    expect(chain.calls.filter((c) => c.fn === 'finalize')).toHaveLength(4);
    expect(v.status().audits.finalized).toBe(4);
    expect(chain.calls.filter((c) => c.fn === 'withdrawEarnings')).toHaveLength(1);
    await v.poll();
    expect(v.status().batches.done).toBe(1);
  });

  test('a restart resumes from the state file and never attests twice', async () => {
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
    // The first attestation lands on chain, but the node sees an error (crash / RPC drop).
    chain.crashAfterNextAttest();
    const first = await start(chain);
    await first.poll();
    expect(first.status().audits.sending).toBe(1);
    expect(chain.votes.size).toBe(2);
    await first.stop();
    running.length = 0;

    const again = await start(chain);
    await again.poll();
    expect(again.status().audits.attested).toBe(2);
    // voteOf said the first one landed: exactly one attest per job.
    expect(chain.calls.filter((c) => c.fn === 'attest')).toHaveLength(2);
    expect(again.status().cursor).toBeGreaterThan(0n);
    // Nothing was judged again: the gateway served each job once.
    const jobFetches = gateway.requests.filter((r) =>
      list.some((c) => r.path === `/v1/audit/jobs/${c.jobId}`),
    );
    expect(jobFetches).toHaveLength(2);
  });

  test('skips confidential, unaudited and unassigned receipts; abstains on forged signatures', async () => {
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
    // Only the forged one was ours to audit, and it is not provably the worker's: abstain.
    expect(s.audits).toMatchObject({ abstained: 1, attested: 0, pending: 0 });
    expect(chain.calls.filter((c) => c.fn === 'attest')).toHaveLength(0);
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
    expect(v.status().audits.attested).toBe(1);
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
    expect(v.status().mode).toBe('crosscheck');
    expect(v.status().votes).toEqual({ pass: 1, fail: 1 });
    const scores = gateway.requests.filter((r) => r.path === '/v1/audit/score').slice(before);
    expect(scores).toHaveLength(2);
    expect(scores.every((r) => (r.body as { exclude_worker: string }).exclude_worker === WORKER)).toBe(true);
    const file = JSON.parse(await readFile(v.status().stateFile, 'utf8'));
    expect(Object.values(file.audits).map((a) => (a as { scorer: string }).scorer)).toEqual([SCORER, SCORER]);
    const text = await (await fetch(v.status().metricsUrl!)).text();
    expect(text).toMatch(/aipg_validator_audits_total\{verdict="pass"\} 1/);
    expect(text).toMatch(/aipg_validator_audits_total\{verdict="fail"\} 1/);
    expect(text).toMatch(/aipg_validator_attestations_total\{vote="fail",outcome="sent"\} 1/);
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
