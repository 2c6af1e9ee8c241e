/**
 * The validator against a REAL anvil with the whole Grid deployed (AuditFacet included): bonds,
 * a model, a settled batch of receipts signed by a worker, the in-test gateway's audit API, and
 * the validator's own viem chain layer. Skipped until the generated ABIs carry the AuditFacet
 * (`npm run build`).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  anvilTestAccounts,
  approveGateway,
  approveToken,
  bond,
  createGridClients,
  deposit,
  facetNames,
  getAudit,
  getBond,
  registerModel,
  type StartDevChainReturnType,
  setOperator,
  settleBatch,
  startDevChain,
} from '@aipg/chain';
import { parseAipg, receiptLeafHash, receiptTypedData } from '@aipg/core';
import { createLlamaEngine, type LlamaEngine, MODEL_PRESETS } from '@aipg/inference';
import { pino } from 'pino';
import type { Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
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
          attestWindow: 120,
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
    await approveGateway(payer, { grid, gateway: GATEWAY, cap: parseAipg('100') });
    gateway = await startAuditGateway({ gateway: GATEWAY, validators: [anvilTestAccounts[2]!.address] });
  });
  afterAll(async () => {
    await gateway?.close();
    await engine?.close();
    await dev?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  test('attests PASS and FAIL on chain, finalizes, the cheat is slashed', async () => {
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
    const jobs = await Promise.all(
      [honest, cheat].map(async (c) => ({
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
      receiptCount: jobs.length,
      debits: [{ payer: PAYER, amount: total }],
      credits: [{ worker: WORKER, gross: total }],
    });
    expect(settled.batchId).toBe(1n);

    // The cheat names a new operator key right after settlement: its receipts still count.
    await setOperator(wallet(workerKey!), { grid, role: 'worker', operator: anvilTestAccounts[7]!.address });
    const v = await startValidator(
      {
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
        replaySeeded: true,
        dataDir,
        pollIntervalMs: 3_600_000,
        logRange: 1000,
        confirmations: 0,
        finalize: 'mine',
        withdrawMin: 1n,
        metrics: null,
        logLevel: 'silent',
      },
      { logger: pino({ level: 'silent' }) },
    );
    try {
      await rpc('anvil_mine', ['0x3']);
      await v.poll();
      expect(v.status().audits.attested).toBe(2);
      const { publicClient } = createGridClients({ rpcUrl: dev.anvil.rpcUrl, chainId: dev.anvil.chainId });
      const validator = anvilTestAccounts[2]!.address;
      const voteOf = async (leaf: Hex) =>
        (await getAudit(publicClient, { grid, leaf, validators: [validator] })).votes[validator];
      expect(await voteOf(receiptLeafHash(honest.receipt))).toBe('pass');
      expect(await voteOf(receiptLeafHash(cheat.receipt))).toBe('fail');

      await rpc('evm_increaseTime', [200]);
      await rpc('anvil_mine', ['0x1']);
      await v.poll();
      expect(v.status().audits.finalized).toBe(2);
      expect((await getAudit(publicClient, { grid, leaf: receiptLeafHash(honest.receipt) })).verdict).toBe(
        'pass',
      );
      expect((await getAudit(publicClient, { grid, leaf: receiptLeafHash(cheat.receipt) })).verdict).toBe(
        'fail',
      );
      const workerBond = await getBond(publicClient, { grid, role: 'worker', owner: WORKER });
      expect(workerBond.slashed).toBe(parseAipg('100'));
      // The PASS reward and the finder's share of the slash were credited, then withdrawn.
      const state = JSON.parse(await readFile(v.status().stateFile, 'utf8')) as { withdrawn: string };
      expect(BigInt(state.withdrawn)).toBe(parseAipg('50') + 1n);
    } finally {
      await v.stop();
    }
  });
});
