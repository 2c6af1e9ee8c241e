import {
  buildReceiptTree,
  computeModelId,
  computeOutputHash,
  computeRequestHash,
  parseAipg,
  type Receipt,
  receiptLeafHash,
  receiptTypedData,
} from '@aipg/core';
import {
  type Address,
  createTestClient,
  type Hex,
  http,
  keccak256,
  recoverTypedDataAddress,
  toHex,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { readContract } from 'viem/actions';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  anvilTestAccounts,
  approveGateway,
  approveToken,
  attest,
  bond,
  ChainError,
  createGridClients,
  type Deployment,
  deployGrid,
  deposit,
  finalizeAudit,
  fixRandomness,
  getAssignedValidators,
  getAudit,
  getBatchAudit,
  getBond,
  getGridParams,
  gridAbi,
  isAudited,
  type StartAnvilReturnType,
  setAuditConfig,
  settleBatch,
  setWorkerAuditRate,
  startAnvil,
} from '../src/index.ts';

// A real anvil, a devnet deployment that audits every receipt, one worker (with an operator key that signs
// its receipts) and three validators: k = 3, so all three are assigned to every audit.
let anvil: StartAnvilReturnType;
let deployment: Deployment;
let grid: Address;

const [deployer, workerOwner, workerOperator, v1, v2, v3, payer, gateway, stranger] = anvilTestAccounts;
const validators = [v1, v2, v3];
const WINDOW = 60;

function clientFor(account: (typeof anvilTestAccounts)[number]) {
  const { walletClient } = createGridClients({
    rpcUrl: anvil.rpcUrl,
    chainId: anvil.chainId,
    account: privateKeyToAccount(account.privateKey),
  });
  return walletClient!;
}

function reader() {
  return createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId }).publicClient;
}

async function mine(blocks: number, seconds = 0) {
  const t = createTestClient({ mode: 'anvil', transport: http(anvil.rpcUrl) });
  if (seconds > 0) await t.increaseTime({ seconds });
  await t.mine({ blocks });
}

async function earningsOf(account: Address) {
  return readContract(reader(), { address: grid, abi: gridAbi, functionName: 'earningsOf', args: [account] });
}

async function protocolFees() {
  return readContract(reader(), { address: grid, abi: gridAbi, functionName: 'protocolFees' });
}

async function validatorPool() {
  return readContract(reader(), { address: grid, abi: gridAbi, functionName: 'validatorPool' });
}

async function stake(role: 'worker' | 'validator', owner: Address) {
  const b = await getBond(reader(), { grid, role, owner });
  return b.amount + b.unbonding;
}

async function rejection(promise: Promise<unknown>): Promise<ChainError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ChainError);
  return error as ChainError;
}

let jobs = 0;

/** Settles `n` receipts signed by the worker's operator key; returns the batch, its receipts and tree. */
async function settleSignedBatch(n: number) {
  const modelId = computeModelId('tiny-llama', keccak256(toHex('weights')));
  const sampling = { maxTokens: 16, temperature: 0, topP: 1, seed: 7, stop: [] };
  const receipts: Receipt[] = Array.from({ length: n }, () => {
    const i = ++jobs;
    return {
      jobId: keccak256(toHex(`audit-job-${i}`)),
      gateway: gateway.address,
      payer: payer.address,
      worker: workerOwner.address,
      modelId,
      requestHash: computeRequestHash([1, 2, 3, i], sampling),
      outputHash: computeOutputHash([4, 5, i], 'stop'),
      inputUnits: 4n,
      outputUnits: 3n,
      fee: parseAipg('1'),
      completedAt: 1_800_000_000n + BigInt(i),
      confidential: false,
    };
  });
  const operator = privateKeyToAccount(workerOperator.privateKey);
  for (const receipt of receipts) {
    const typed = receiptTypedData(receipt, anvil.chainId, grid);
    const signature = await operator.signTypedData(typed);
    expect(await recoverTypedDataAddress({ ...typed, signature })).toBe(workerOperator.address);
  }
  const tree = buildReceiptTree(receipts);
  const total = receipts.reduce((sum, r) => sum + r.fee, 0n);
  const { batchId } = await settleBatch(clientFor(gateway), {
    grid,
    root: tree.root as Hex,
    receiptCount: receipts.length,
    debits: [{ payer: payer.address, amount: total }],
    credits: [{ worker: workerOwner.address, gross: total }],
  });
  return { batchId, receipts, tree };
}

/** Mines past the randomness delay and fixes the batch's randomness (as anyone: the stranger). */
async function fix(batchId: bigint) {
  const early = await rejection(fixRandomness(clientFor(stranger), { grid, batchId }));
  expect(early.errorName).toBe('RandomnessNotReady');
  await mine(deployment.params.audit!.randomnessDelay);
  return fixRandomness(clientFor(stranger), { grid, batchId });
}

beforeAll(async () => {
  anvil = await startAnvil();
  deployment = await deployGrid(
    { walletClient: clientFor(deployer), publicClient: reader() },
    {
      network: 'devnet',
      init: { audit: { auditRateBps: 10_000 } },
      fund: { accounts: anvilTestAccounts.map((a) => a.address), amount: parseAipg('100000') },
    },
  );
  grid = deployment.grid;
  const token = deployment.token;

  const worker = clientFor(workerOwner);
  await approveToken(worker, { token, spender: grid, amount: parseAipg('2000') });
  await bond(worker, { grid, role: 'worker', amount: parseAipg('2000'), operator: workerOperator.address });
  for (const v of validators) {
    const client = clientFor(v);
    await approveToken(client, { token, spender: grid, amount: parseAipg('10000') });
    await bond(client, { grid, role: 'validator', amount: parseAipg('10000') });
  }
  const p = clientFor(payer);
  await approveToken(p, { token, spender: grid, amount: parseAipg('1000') });
  await deposit(p, { grid, amount: parseAipg('1000') });
  await approveGateway(p, { grid, gateway: gateway.address, cap: parseAipg('1000') });
});

afterAll(async () => {
  await anvil?.stop();
});

describe('deployment', () => {
  test('deploys the audit facet with the devnet audit defaults, the init override and a block-hash source', async () => {
    expect(deployment.params.audit).toEqual({
      auditRateBps: 10_000,
      validatorsPerAudit: 3,
      quorum: 2,
      attestWindow: WINDOW,
      randomnessDelay: 2,
      workerSlashAmount: parseAipg('100'),
      falseAttestationSlash: parseAipg('500'),
      finderShareBps: 5_000,
      passReward: parseAipg('0.01'),
    });
    const params = await getGridParams(reader(), { grid });
    expect(params.audit).toEqual(deployment.params.audit);
    expect(params.randomnessSource).toBe(deployment.randomnessSource);
    expect(deployment.facets.AuditFacet).toMatch(/^0x/);
  });

  test("the contract's receipt leaf is core's receiptLeafHash", async () => {
    const { receipts, tree } = await settleSignedBatch(2);
    for (const [i, receipt] of receipts.entries()) {
      const onChain = await readContract(reader(), {
        address: grid,
        abi: gridAbi,
        functionName: 'receiptLeaf',
        args: [receipt],
      });
      expect(onChain).toBe(receiptLeafHash(receipt));
      expect(onChain).toBe(tree.leafHash([...tree.at(i)!]));
    }
  });

  test('refuses a bad audit config before sending anything, and a Base deployment without a VRF source', async () => {
    const quorum = await rejection(
      deployGrid(
        { walletClient: clientFor(deployer), publicClient: reader() },
        { network: 'devnet', init: { audit: { quorum: 4 } } },
      ),
    );
    expect(quorum.shortMessage).toMatch(/audit.quorum must be 1..validatorsPerAudit/);
    const base = await rejection(
      deployGrid(
        { walletClient: clientFor(deployer), publicClient: reader() },
        { network: 'base', token: deployment.token },
      ),
    );
    expect(base.shortMessage).toMatch(/randomnessSource is required on Base/);
  });
});

describe('a FAIL verdict', () => {
  test('every assigned validator attests FAIL: the worker is slashed, the finders paid, the treasury gets the rest', async () => {
    const { batchId, receipts, tree } = await settleSignedBatch(3);
    const receipt = receipts[1]!;
    const leaf = receiptLeafHash(receipt);

    expect(await isAudited(reader(), { grid, batchId, receipt })).toBe(false);
    expect(await getAssignedValidators(reader(), { grid, batchId, leaf })).toEqual([]);
    const fixed = await fix(batchId);
    const batchAudit = await getBatchAudit(reader(), { grid, batchId });
    expect(batchAudit).toMatchObject({ fixed: true, randomness: fixed.randomness, deadline: fixed.deadline });
    expect(batchAudit.deadline - batchAudit.fixedAt).toBe(WINDOW);

    expect(await isAudited(reader(), { grid, batchId, receipt })).toBe(true);
    expect(await isAudited(reader(), { grid, batchId, leaf, worker: workerOwner.address })).toBe(true);
    const assigned = await getAssignedValidators(reader(), { grid, batchId, leaf });
    expect([...assigned].sort()).toEqual(validators.map((v) => v.address).sort());

    const workerBefore = await stake('worker', workerOwner.address);
    const earningsBefore = await Promise.all(validators.map((v) => earningsOf(v.address)));
    const feesBefore = await protocolFees();

    const proof = tree.getProof(1) as Hex[];
    for (const v of validators) {
      const result = await attest(clientFor(v), {
        grid,
        batchId,
        receipt,
        proof,
        vote: 'fail',
        evidenceHash: keccak256(toHex(`report by ${v.address}`)),
      });
      expect(result).toMatchObject({ leaf, validator: v.address });
    }
    const twice = await rejection(attest(clientFor(v1), { grid, batchId, receipt, proof, vote: 'pass' }));
    expect(twice.errorName).toBe('AlreadyAttested');
    const outsider = await rejection(
      attest(clientFor(stranger), { grid, batchId, receipt, proof, vote: 'fail' }),
    );
    expect(outsider.errorName).toBe('NotAssigned');

    const open = await getAudit(reader(), { grid, leaf, validators: [v1.address, stranger.address] });
    expect(open).toMatchObject({
      opened: true,
      batchId,
      worker: workerOwner.address,
      modelId: receipt.modelId,
      failVotes: 3,
      passVotes: 0,
      verdict: 'none',
      votes: { [v1.address]: 'fail', [stranger.address]: 'none' },
    });
    const early = await rejection(finalizeAudit(clientFor(stranger), { grid, leaf }));
    expect(early.errorName).toBe('AttestWindowOpen');

    await mine(1, WINDOW + 1);
    const result = await finalizeAudit(clientFor(stranger), { grid, leaf });
    const slash = parseAipg('100');
    const each = (slash * 5_000n) / 10_000n / 3n;
    expect(result).toMatchObject({ verdict: 'fail', worker: workerOwner.address, slashed: slash });
    expect(result.rewards).toEqual(validators.map((v) => ({ validator: v.address, amount: each })));
    expect(result.falseAttestations).toEqual([]);

    expect(await stake('worker', workerOwner.address)).toBe(workerBefore - slash);
    const earningsAfter = await Promise.all(validators.map((v) => earningsOf(v.address)));
    earningsAfter.forEach((after, i) => {
      expect(after - earningsBefore[i]!).toBe(each);
    });
    expect((await protocolFees()) - feesBefore).toBe(slash - 3n * each);
    expect((await getBond(reader(), { grid, role: 'worker', owner: workerOwner.address })).slashed).toBe(
      slash,
    );
    expect((await getAudit(reader(), { grid, leaf })).verdict).toBe('fail');

    const again = await rejection(finalizeAudit(clientFor(stranger), { grid, leaf }));
    expect(again.errorName).toBe('AlreadyFinalized');
    expect(again.shortMessage).toBe(`AlreadyFinalized(leaf: ${leaf})`);
  });
});

describe('a validator against the majority', () => {
  test('two FAIL votes against one PASS: the PASS voter is slashed for a false attestation', async () => {
    const { batchId, receipts, tree } = await settleSignedBatch(2);
    await fix(batchId);
    const receipt = receipts[0]!;
    const leaf = receiptLeafHash(receipt);
    const proof = tree.getProof(0) as Hex[];
    const stakesBefore = await Promise.all(validators.map((v) => stake('validator', v.address)));
    const poolBefore = await validatorPool();

    await attest(clientFor(v1), { grid, batchId, receipt, proof, vote: 'fail' });
    await attest(clientFor(v2), { grid, batchId, receipt, proof, vote: 'pass' });
    await attest(clientFor(v3), { grid, batchId, receipt, proof, vote: 'fail' });
    await mine(1, WINDOW + 1);
    const result = await finalizeAudit(clientFor(stranger), { grid, leaf });

    const falseSlash = parseAipg('500');
    expect(result.verdict).toBe('fail');
    expect(result.falseAttestations).toEqual([{ validator: v2.address, amount: falseSlash }]);
    expect(result.rewards.map((r) => r.validator)).toEqual([v1.address, v3.address]);
    expect(await stake('validator', v2.address)).toBe(stakesBefore[1]! - falseSlash);
    expect(await stake('validator', v1.address)).toBe(stakesBefore[0]!);
    expect(await stake('validator', v3.address)).toBe(stakesBefore[2]!);
    expect((await validatorPool()) - poolBefore).toBe(falseSlash);
    const bond2 = await getBond(reader(), { grid, role: 'validator', owner: v2.address });
    expect(bond2).toMatchObject({ slashed: falseSlash, active: false });
  });
});

describe('governance', () => {
  test('the owner raises a worker rate and replaces the audit config; nobody else can', async () => {
    const denied = await rejection(
      setWorkerAuditRate(clientFor(stranger), { grid, worker: workerOwner.address, rateBps: 5_000 }),
    );
    expect(denied.errorName).toBe('NotOwner');
    // every FAIL verdict above already raised this worker to 10,000: it can only rise
    const lower = await rejection(
      setWorkerAuditRate(clientFor(deployer), { grid, worker: workerOwner.address, rateBps: 5_000 }),
    );
    expect(lower.errorName).toBe('RateCanOnlyRise');
    await setWorkerAuditRate(clientFor(deployer), { grid, worker: stranger.address, rateBps: 2_500 });

    const config = { ...deployment.params.audit!, auditRateBps: 500, attestWindow: 120 };
    const bad = await rejection(
      setAuditConfig(clientFor(deployer), { grid, config: { ...config, finderShareBps: 10_001 } }),
    );
    expect(bad.errorName).toBe('InvalidAuditConfig');
    expect(bad.args).toEqual({ reason: 'finderShareBps' });
    await setAuditConfig(clientFor(deployer), { grid, config });
    expect((await getGridParams(reader(), { grid })).audit).toEqual(config);
  });
});
