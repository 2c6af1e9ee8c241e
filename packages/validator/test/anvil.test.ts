/**
 * The validator against a REAL anvil with the whole Grid deployed (AuditFacet included): bonds,
 * a model, a settled batch of receipts signed by a worker, the in-test gateway's audit API, and
 * the validator's own viem chain layer: commit, reveal after the commit deadline (after a restart),
 * finalize after the reveal deadline.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  anvilTestAccounts,
  approveToken,
  bond,
  createGridClients,
  deposit,
  facetNames,
  getAudit,
  getBatchAudit,
  getBond,
  getNextReceiptSeq,
  increaseGatewayCap,
  registerModel,
  type StartDevChainReturnType,
  setOperator,
  settleBatch,
  startDevChain,
} from '@aipg/chain';
import {
  confidentialRequestHash,
  parseAipg,
  receiptLeafHash,
  receiptTypedData,
  sealedRequestHash,
  teeEvidenceDigest,
} from '@aipg/core';
import { createLlamaEngine, type LlamaEngine, MODEL_PRESETS } from '@aipg/inference';
import { generateTeeKeyPair, SimulatedTee } from '@aipg/tee';
import { pino } from 'pino';
import { type Hex, keccak256, toBytes } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ValidatorOptions } from '../src/node/options.ts';
import { startValidator } from '../src/node/validator.ts';
import { type AuditGateway, startAuditGateway } from './fixtures/audit-gateway.ts';
import {
  fabricateRandom,
  GATEWAY,
  greedy,
  MODEL_DIR,
  PAYER,
  presetModel,
  prng,
  runJob,
  seeded,
  WORKER,
  withSeq,
} from './fixtures/jobs.ts';

const [ownerKey, workerKey, validatorKey, payerKey, , gatewayKey] = anvilTestAccounts.map(
  (a) => a.privateKey,
);
describe('the validator on anvil with the AuditFacet', () => {
  test('runs against a Grid that has the AuditFacet', () => {
    expect(facetNames).toContain('AuditFacet');
  });

  let dev: StartDevChainReturnType;
  let gateway: AuditGateway;
  let engine: LlamaEngine;
  let dataDir: string;
  const rpc = (method: string, params: unknown[] = []) =>
    fetch(dev.anvil.rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    }).then((r) => r.json());
  const wallet = (key: Hex) =>
    createGridClients({
      rpcUrl: dev.anvil.rpcUrl,
      chainId: dev.anvil.chainId,
      account: privateKeyToAccount(key),
    }).walletClient!;

  beforeAll(async () => {
    expect(anvilTestAccounts[5]!.address).toBe(GATEWAY);
    dev = await startDevChain({
      port: 0,
      init: {
        audit: {
          auditRateBps: 10_000,
          validatorsPerAudit: 1,
          quorum: 1,
          commitWindow: 120,
          revealWindow: 120,
          randomnessDelay: 1,
          workerSlashAmount: parseAipg('100'),
          falseAttestationSlash: parseAipg('50'),
          finderShareBps: 5_000,
          passReward: 1n,
        },
      },
    });
    dataDir = await mkdtemp(join(tmpdir(), 'aipg-validator-anvil-'));
    const grid = dev.deployment.grid;
    const tiny = await presetModel('tiny');
    engine = await createLlamaEngine({ modelPath: tiny.path, threads: 1, contextSize: 1024 });
    const owner = wallet(ownerKey!);
    await registerModel(owner, {
      grid,
      name: tiny.name,
      kind: 'text',
      weightsHash: tiny.weightsHash,
      tokenizerHash: MODEL_PRESETS.tiny.tokenizerHash,
      parameterCount: BigInt(MODEL_PRESETS.tiny.parameterCount),
      minVramMb: 0,
      rates: { inputPerMTokens: parseAipg('0.2'), outputPerMTokens: parseAipg('0.6'), perMegapixelStep: 0n },
    });
    for (const [key, role, amount] of [
      [workerKey!, 'worker', '1000'],
      [validatorKey!, 'validator', '10000'],
    ] as const) {
      const w = wallet(key);
      await approveToken(w, { token: dev.deployment.token, spender: grid, amount: parseAipg(amount) });
      await bond(w, { grid, role, amount: parseAipg(amount) });
    }
    const payer = wallet(payerKey!);
    await approveToken(payer, { token: dev.deployment.token, spender: grid, amount: parseAipg('100') });
    await deposit(payer, { grid, amount: parseAipg('100') });
    await increaseGatewayCap(payer, { grid, gateway: GATEWAY, amount: parseAipg('100') });
    gateway = await startAuditGateway({ gateway: GATEWAY, validators: [anvilTestAccounts[2]!.address] });
  });
  afterAll(async () => {
    await gateway?.close();
    await engine?.close();
    await dev?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  test('commits, reveals PASS and FAIL on chain after a restart, finalizes, the cheat is slashed', async () => {
    const grid = dev.deployment.grid;
    const tiny = await presetModel('tiny');
    const vocab = {
      vocabSize: engine.vocabSize,
      eosTokenId: engine.eosTokenId,
      isEndToken: engine.isEndToken,
    };
    const honest = await runJob(
      engine,
      tiny,
      { kind: 'chat', messages: [{ role: 'user', content: 'hi' }] },
      seeded(1, 30),
    );
    const cheat = fabricateRandom(
      await runJob(engine, tiny, { kind: 'chat', messages: [{ role: 'user', content: 'yo' }] }, greedy(30)),
      prng(4),
      vocab,
    );
    const workerAccount = privateKeyToAccount(workerKey!);
    const { publicClient } = createGridClients({ rpcUrl: dev.anvil.rpcUrl, chainId: dev.anvil.chainId });
    const firstSeq = await getNextReceiptSeq(publicClient, { grid, gateway: GATEWAY });
    const numbered = withSeq([honest, cheat], firstSeq);
    const jobs = await Promise.all(
      numbered.map(async (c) => ({
        ...c,
        signature: await workerAccount.signTypedData(receiptTypedData(c.receipt, dev.anvil.chainId, grid)),
        signer: workerAccount.address,
      })),
    );
    const total = jobs.reduce((a, j) => a + j.receipt.fee, 0n);
    expect(jobs.every((j) => j.receipt.payer === PAYER && j.receipt.worker === WORKER)).toBe(true);
    const { root } = gateway.addBatch(1n, jobs);
    const settled = await settleBatch(wallet(gatewayKey!), {
      grid,
      root,
      firstSeq,
      receiptCount: jobs.length,
      debits: [{ payer: PAYER, amount: total }],
      credits: [{ worker: WORKER, gross: total }],
    });
    expect(settled.batchId).toBe(1n);

    // The cheat names a new operator key right after settlement (a later second: the chain keys operator
    // history by timestamp): its receipts still count, as signed by its key at settlement.
    await rpc('evm_increaseTime', [1]);
    await setOperator(wallet(workerKey!), { grid, role: 'worker', operator: anvilTestAccounts[7]!.address });
    const options = {
      network: 'devnet',
      chainId: dev.anvil.chainId,
      rpcUrl: dev.anvil.rpcUrl,
      grid,
      startBlock: BigInt(dev.deployment.deployBlock),
      operatorKey: validatorKey!,
      gateways: [{ url: gateway.url, address: GATEWAY }],
      mode: 'reexecute',
      gguf: [tiny.path],
      modelDir: MODEL_DIR,
      presets: true,
      threads: 1,
      gpuLayers: 0,
      contextSize: 1024,
      dataDir,
      pollIntervalMs: 3_600_000,
      logRange: 1000,
      confirmations: 0,
      finalize: 'mine',
      withdrawMin: 1n,
      metrics: null,
      logLevel: 'silent',
    } satisfies ValidatorOptions;
    const validator = anvilTestAccounts[2]!.address;
    const [honestLeaf, cheatLeaf] = numbered.map((c) => receiptLeafHash(c.receipt)) as [Hex, Hex];
    const votesOf = async () => {
      const a = await Promise.all(
        [honestLeaf, cheatLeaf].map((leaf) =>
          getAudit(publicClient, { grid, leaf, validators: [validator] }),
        ),
      );
      return a.map((x) => x.votes[validator]);
    };

    const first = await startValidator(options, { logger: pino({ level: 'silent' }) });
    try {
      await rpc('anvil_mine', ['0x3']);
      await first.poll();
      expect(first.status()).toMatchObject({ audits: { committed: 2 }, lastError: null });
      expect(await votesOf()).toEqual(['committed', 'committed']);
      const audit = await getAudit(publicClient, { grid, leaf: cheatLeaf });
      expect(audit).toMatchObject({ opened: true, seats: 1, commits: 1, passVotes: 0, failVotes: 0 });
      // Still inside the commit window: nothing is revealed.
      await first.poll();
      expect(await votesOf()).toEqual(['committed', 'committed']);
    } finally {
      await first.stop();
    }

    // A new process after the commit deadline reveals from the state file.
    const { deadline, revealDeadline } = await getBatchAudit(publicClient, { grid, batchId: 1n });
    expect(revealDeadline - deadline).toBe(120);
    await rpc('evm_increaseTime', [121]);
    await rpc('anvil_mine', ['0x1']);
    const v = await startValidator(options, { logger: pino({ level: 'silent' }) });
    try {
      await v.poll();
      expect(v.status()).toMatchObject({ audits: { revealed: 2 }, lastError: null });
      expect(await votesOf()).toEqual(['pass', 'fail']);

      await rpc('evm_increaseTime', [121]);
      await rpc('anvil_mine', ['0x1']);
      await v.poll();
      expect(v.status().audits.finalized).toBe(2);
      expect((await getAudit(publicClient, { grid, leaf: honestLeaf })).verdict).toBe('pass');
      expect((await getAudit(publicClient, { grid, leaf: cheatLeaf })).verdict).toBe('fail');
      const workerBond = await getBond(publicClient, { grid, role: 'worker', owner: WORKER });
      expect(workerBond.slashed).toBe(parseAipg('100'));
      // The PASS reward and the finder's share of the slash were credited, then withdrawn.
      const state = JSON.parse(await readFile(v.status().stateFile, 'utf8')) as { withdrawn: string };
      expect(BigInt(state.withdrawn)).toBe(parseAipg('50') + 1n);
    } finally {
      await v.stop();
    }
  });

  test('confidential receipts are audited by their evidence: the attested one passes, one claiming a TEE it does not have is failed and slashed', async () => {
    const grid = dev.deployment.grid;
    const tiny = await presetModel('tiny');
    const { publicClient } = createGridClients({ rpcUrl: dev.anvil.rpcUrl, chainId: dev.anvil.chainId });
    // The first test moved the worker's operator to account 7: that key signs from now on.
    const operator = privateKeyToAccount(anvilTestAccounts[7]!.privateKey);
    const now = Number((await publicClient.getBlock()).timestamp);
    const trusted = await SimulatedTee.create({ now });
    const foreign = await SimulatedTee.create({ now }); // a root the validator does not trust: no real TEE
    const keys = await generateTeeKeyPair();
    const sealed = sealedRequestHash(new Uint8Array(32).fill(7), new Uint8Array(80).fill(9));
    const base = await runJob(
      engine,
      tiny,
      { kind: 'chat', messages: [{ role: 'user', content: 'hi' }] },
      greedy(8),
    );
    const cases = await Promise.all(
      [trusted, foreign].map(async (root, i) => {
        const evidence = await root.attest({
          hpkePublicKey: keys.publicKey,
          signer: operator.address,
          nonce: keccak256(toBytes(`challenge ${i}`)),
          now,
        });
        const attestation = teeEvidenceDigest(evidence);
        return {
          ...base,
          jobId: keccak256(toBytes(`confidential job ${i}`)),
          receipt: {
            ...base.receipt,
            jobId: keccak256(toBytes(`confidential job ${i}`)),
            confidential: true,
            requestHash: confidentialRequestHash(attestation, sealed),
            outputHash: keccak256(toBytes(`sealed chunks ${i}`)),
            completedAt: BigInt(now + 5),
          },
          confidential: { attestation, sealed_request_hash: sealed, evidence },
        };
      }),
    );
    const firstSeq = await getNextReceiptSeq(publicClient, { grid, gateway: GATEWAY });
    const numbered = withSeq(cases, firstSeq);
    const jobs = await Promise.all(
      numbered.map(async (c) => ({
        ...c,
        signature: await operator.signTypedData(receiptTypedData(c.receipt, dev.anvil.chainId, grid)),
        signer: operator.address,
      })),
    );
    const total = jobs.reduce((a, j) => a + j.receipt.fee, 0n);
    const startBlock = await publicClient.getBlockNumber();
    const { root } = gateway.addBatch(2n, jobs);
    const settled = await settleBatch(wallet(gatewayKey!), {
      grid,
      root,
      firstSeq,
      receiptCount: jobs.length,
      debits: [{ payer: PAYER, amount: total }],
      credits: [{ worker: WORKER, gross: total }],
    });
    expect(settled.batchId).toBe(2n);
    const before = (await getBond(publicClient, { grid, role: 'worker', owner: WORKER })).slashed;
    const dir = await mkdtemp(join(tmpdir(), 'aipg-validator-confidential-'));
    const options = {
      network: 'devnet',
      chainId: dev.anvil.chainId,
      rpcUrl: dev.anvil.rpcUrl,
      grid,
      startBlock,
      operatorKey: validatorKey!,
      gateways: [{ url: gateway.url, address: GATEWAY }],
      mode: 'reexecute',
      gguf: [tiny.path],
      modelDir: MODEL_DIR,
      presets: true,
      threads: 1,
      gpuLayers: 0,
      contextSize: 1024,
      dataDir: dir,
      pollIntervalMs: 3_600_000,
      logRange: 1000,
      confirmations: 0,
      finalize: 'mine',
      withdrawMin: null,
      metrics: null,
      logLevel: 'silent',
      tee: { anchors: trusted.anchors, anchorsSource: 'test' },
    } satisfies ValidatorOptions;
    const [attestedLeaf, claimedLeaf] = numbered.map((c) => receiptLeafHash(c.receipt)) as [Hex, Hex];
    const v = await startValidator(options, { logger: pino({ level: 'silent' }) });
    try {
      await rpc('anvil_mine', ['0x3']);
      await v.poll();
      expect(v.status()).toMatchObject({ audits: { committed: 2 }, lastError: null });
      const { deadline } = await getBatchAudit(publicClient, { grid, batchId: 2n });
      const head = Number((await publicClient.getBlock()).timestamp);
      await rpc('evm_increaseTime', [deadline - head + 1]);
      await rpc('anvil_mine', ['0x1']);
      await v.poll();
      expect(v.status()).toMatchObject({ audits: { revealed: 2 }, lastError: null });
      await rpc('evm_increaseTime', [121]);
      await rpc('anvil_mine', ['0x1']);
      await v.poll();
      expect((await getAudit(publicClient, { grid, leaf: attestedLeaf })).verdict).toBe('pass');
      expect((await getAudit(publicClient, { grid, leaf: claimedLeaf })).verdict).toBe('fail');
      const after = (await getBond(publicClient, { grid, role: 'worker', owner: WORKER })).slashed;
      expect(after - before).toBe(parseAipg('100'));
    } finally {
      await v.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
