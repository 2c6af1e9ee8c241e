import {
  buildReceiptTree,
  CANONICAL_SAMPLER,
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
  type AuditVote,
  announceAuditConfig,
  anvilTestAccounts,
  approveToken,
  bond,
  ChainError,
  commitVote,
  createGridClients,
  type Deployment,
  deployGrid,
  deposit,
  encodeGatewayFaultReason,
  finalizeAudit,
  fixRandomness,
  gatewayFaultReason,
  getAssignedValidators,
  getAudit,
  getBatchAudit,
  getBond,
  getGovernance,
  getGridParams,
  getNextReceiptSeq,
  getPendingChanges,
  gridAbi,
  increaseGatewayCap,
  isAudited,
  reportGatewayFault,
  revealVote,
  type StartAnvilReturnType,
  setAuditConfig,
  setOperator,
  settleBatch,
  setWorkerAuditRate,
  startAnvil,
  voteCommitment,
} from '../src/index.ts';

// A real anvil, a devnet deployment that audits every receipt, one worker (with an operator key that signs
// its receipts) and three validators: k = 3, so all three are assigned to every audit.
let anvil: StartAnvilReturnType;
let deployment: Deployment;
let grid: Address;

const [deployer, workerOwner, workerOperator, v1, v2, v3, payer, gateway, stranger] = anvilTestAccounts;
const validators = [v1, v2, v3];
const COMMIT_WINDOW = 30;
const REVEAL_WINDOW = 30;

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

/** Settles `n` receipts signed by the worker's operator key; returns the batch, its receipts, signatures and tree. */
async function settleSignedBatch(n: number) {
  const modelId = computeModelId('tiny-llama', keccak256(toHex('weights')));
  const sampling = { maxTokens: 16, temperature: 0, topP: 1, seed: 7, stop: [] };
  const receipts: Receipt[] = Array.from({ length: n }, () => {
    const i = ++jobs;
    return {
      seq: 0n,
      jobId: keccak256(toHex(`audit-job-${i}`)),
      gateway: gateway.address,
      payer: payer.address,
      worker: workerOwner.address,
      modelId,
      requestHash: computeRequestHash([1, 2, 3, i], sampling, CANONICAL_SAMPLER),
      outputHash: computeOutputHash([4, 5, i], 'stop'),
      inputUnits: 4n,
      outputUnits: 3n,
      fee: parseAipg('1'),
      completedAt: 1_800_000_000n + BigInt(i),
      confidential: false,
    };
  });
  const firstSeq = await getNextReceiptSeq(reader(), { grid, gateway: gateway.address });
  receipts.forEach((r, i) => {
    r.seq = firstSeq + BigInt(i);
  });
  const operator = privateKeyToAccount(workerOperator.privateKey);
  const signatures: Hex[] = [];
  for (const receipt of receipts) {
    const typed = receiptTypedData(receipt, anvil.chainId, grid);
    const signature = await operator.signTypedData(typed);
    expect(await recoverTypedDataAddress({ ...typed, signature })).toBe(workerOperator.address);
    signatures.push(signature);
  }
  const tree = buildReceiptTree(receipts);
  const total = receipts.reduce((sum, r) => sum + r.fee, 0n);
  const { batchId } = await settleBatch(clientFor(gateway), {
    grid,
    root: tree.root as Hex,
    firstSeq,
    receiptCount: receipts.length,
    debits: [{ payer: payer.address, amount: total }],
    credits: [{ worker: workerOwner.address, gross: total }],
  });
  return { batchId, receipts, signatures, tree };
}

/** Commits `vote` as `v` on receipt `i` of a settled batch; returns what its reveal needs. */
async function commit(
  v: (typeof anvilTestAccounts)[number],
  batch: Awaited<ReturnType<typeof settleSignedBatch>>,
  i: number,
  vote: AuditVote,
) {
  const receipt = batch.receipts[i]!;
  const leaf = receiptLeafHash(receipt);
  const evidenceHash = keccak256(toHex(`report by ${v.address}`));
  const salt = keccak256(toHex(`salt of ${v.address} for ${leaf}`));
  const result = await commitVote(clientFor(v), {
    grid,
    batchId: batch.batchId,
    receipt,
    signature: batch.signatures[i]!,
    proof: batch.tree.getProof(i) as Hex[],
    commitment: voteCommitment({ leaf, validator: v.address, vote, evidenceHash, salt }),
  });
  return { ...result, reveal: { grid, leaf, vote, evidenceHash, salt } };
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
  await increaseGatewayCap(p, { grid, gateway: gateway.address, amount: parseAipg('1000') });
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
      commitWindow: COMMIT_WINDOW,
      revealWindow: REVEAL_WINDOW,
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
    expect(quorum.shortMessage).toMatch(/audit.quorum must be a majority of validatorsPerAudit/);
    const base = await rejection(
      deployGrid(
        { walletClient: clientFor(deployer), publicClient: reader() },
        { network: 'base', token: deployment.token },
      ),
    );
    expect(base.shortMessage).toMatch(/randomnessSource or vrf is required on Base/);
  });
});

describe('voteCommitment', () => {
  test("is the contract's voteCommitment", async () => {
    const p = {
      leaf: keccak256(toHex('leaf')),
      validator: v2.address,
      vote: 'fail' as const,
      evidenceHash: keccak256(toHex('evidence')),
      salt: keccak256(toHex('salt')),
    };
    const onChain = await readContract(reader(), {
      address: grid,
      abi: gridAbi,
      functionName: 'voteCommitment',
      args: [p.leaf, p.validator, 2, p.evidenceHash, p.salt],
    });
    expect(voteCommitment(p)).toBe(onChain);
    expect(voteCommitment({ ...p, vote: 'pass' })).not.toBe(onChain);
  });
});

describe('a FAIL verdict', () => {
  test('every seat commits then reveals FAIL: the worker is slashed, the finders paid, the treasury gets the rest', async () => {
    const batch = await settleSignedBatch(3);
    const { batchId, receipts } = batch;
    const receipt = receipts[1]!;
    const leaf = receiptLeafHash(receipt);

    expect(await isAudited(reader(), { grid, batchId, receipt })).toBe(false);
    expect(await getAssignedValidators(reader(), { grid, batchId, leaf })).toEqual([]);
    const fixed = await fix(batchId);
    const batchAudit = await getBatchAudit(reader(), { grid, batchId });
    expect(batchAudit).toMatchObject({ fixed: true, randomness: fixed.randomness, deadline: fixed.deadline });
    expect(batchAudit.deadline - batchAudit.fixedAt).toBe(COMMIT_WINDOW);
    expect(batchAudit.revealDeadline - batchAudit.deadline).toBe(REVEAL_WINDOW);

    expect(await isAudited(reader(), { grid, batchId, receipt })).toBe(true);
    expect(await isAudited(reader(), { grid, batchId, leaf, worker: workerOwner.address })).toBe(true);
    const assigned = await getAssignedValidators(reader(), { grid, batchId, leaf });
    expect([...assigned].sort()).toEqual(validators.map((v) => v.address).sort());

    const workerBefore = await stake('worker', workerOwner.address);
    const earningsBefore = await Promise.all(validators.map((v) => earningsOf(v.address)));
    const feesBefore = await protocolFees();

    const reveals = [];
    for (const [i, v] of validators.entries()) {
      const c = await commit(v, batch, 1, 'fail');
      expect(c).toMatchObject({ leaf, validator: v.address });
      expect(c.opened === null).toBe(i > 0);
      if (i === 0) expect([...c.opened!.validators].sort()).toEqual([...assigned].sort());
      reveals.push(c.reveal);
    }
    const twice = await rejection(commit(v1, batch, 1, 'pass'));
    expect(twice.errorName).toBe('AlreadyCommitted');
    const outsider = await rejection(commit(stranger, batch, 1, 'fail'));
    expect(outsider.errorName).toBe('NotAssigned');

    const committed = await getAudit(reader(), { grid, leaf, validators: [v1.address, stranger.address] });
    expect(committed).toMatchObject({
      opened: true,
      batchId,
      worker: workerOwner.address,
      modelId: receipt.modelId,
      deadline: batchAudit.deadline,
      revealDeadline: batchAudit.revealDeadline,
      seats: 3,
      commits: 3,
      failVotes: 0,
      passVotes: 0,
      verdict: 'none',
      votes: { [v1.address]: 'committed', [stranger.address]: 'none' },
    });
    // The reveal window opens only after the commit deadline.
    const early = await rejection(revealVote(clientFor(v1), reveals[0]!));
    expect(early.errorName).toBe('RevealWindowNotOpen');

    await mine(1, COMMIT_WINDOW + 1);
    const wrong = await rejection(revealVote(clientFor(v1), { ...reveals[0]!, vote: 'pass' }));
    expect(wrong.errorName).toBe('CommitmentMismatch');
    for (const [i, v] of validators.entries()) {
      const r = await revealVote(clientFor(v), reveals[i]!);
      expect(r).toMatchObject({ batchId, validator: v.address });
    }
    const open = await getAudit(reader(), { grid, leaf, validators: [v1.address] });
    expect(open).toMatchObject({ failVotes: 3, passVotes: 0, votes: { [v1.address]: 'fail' } });
    const tooEarly = await rejection(finalizeAudit(clientFor(stranger), { grid, leaf }));
    expect(tooEarly.errorName).toBe('AuditWindowOpen');

    await mine(1, REVEAL_WINDOW + 1);
    const result = await finalizeAudit(clientFor(stranger), { grid, leaf });
    const slash = parseAipg('100');
    const each = (slash * 5_000n) / 10_000n / 3n;
    expect(result).toMatchObject({ verdict: 'fail', worker: workerOwner.address, slashed: slash });
    // In seat order.
    expect(result.rewards).toEqual(assigned.map((validator) => ({ validator, amount: each })));
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

describe('a validator who never reveals', () => {
  test('two FAIL reveals and a commitment never revealed: the silent seat is slashed', async () => {
    const batch = await settleSignedBatch(2);
    await fix(batch.batchId);
    const leaf = receiptLeafHash(batch.receipts[0]!);
    const stakesBefore = await Promise.all(validators.map((v) => stake('validator', v.address)));
    const poolBefore = await validatorPool();

    const c1 = await commit(v1, batch, 0, 'fail');
    await commit(v2, batch, 0, 'pass');
    const c3 = await commit(v3, batch, 0, 'fail');
    await mine(1, COMMIT_WINDOW + 1);
    await revealVote(clientFor(v1), c1.reveal);
    await revealVote(clientFor(v3), c3.reveal);
    await mine(1, REVEAL_WINDOW + 1);
    const late = await rejection(revealVote(clientFor(v3), c3.reveal));
    expect(late.errorName).toBe('RevealWindowClosed');
    const result = await finalizeAudit(clientFor(stranger), { grid, leaf });

    const falseSlash = parseAipg('500');
    expect(result.verdict).toBe('fail');
    expect(result.falseAttestations).toEqual([{ validator: v2.address, amount: falseSlash }]);
    expect(result.rewards.map((r) => r.validator).sort()).toEqual([v1.address, v3.address].sort());
    expect(await stake('validator', v2.address)).toBe(stakesBefore[1]! - falseSlash);
    expect(await stake('validator', v1.address)).toBe(stakesBefore[0]!);
    expect(await stake('validator', v3.address)).toBe(stakesBefore[2]!);
    expect((await validatorPool()) - poolBefore).toBe(falseSlash);
    const bond2 = await getBond(reader(), { grid, role: 'validator', owner: v2.address });
    expect(bond2).toMatchObject({ slashed: falseSlash, active: false });
  });
});

describe('gateway fault reports', () => {
  async function faultReported(leaf: Hex, validator: Address) {
    return readContract(reader(), {
      address: grid,
      abi: gridAbi,
      functionName: 'faultReported',
      args: [leaf, validator],
    });
  }

  test('a validator served altered evidence abstains and reports the gateway, once per leaf, during the audit period', async () => {
    const batch = await settleSignedBatch(3);
    const { batchId, tree } = batch;
    const leaf = receiptLeafHash(batch.receipts[2]!);
    const evidenceHash = keccak256(toHex('evidence the gateway served'));
    const report = (v: (typeof anvilTestAccounts)[number], i = 2, reason = 'RECEIPT_REQUEST_HASH') =>
      reportGatewayFault(clientFor(v), {
        grid,
        batchId,
        leaf: receiptLeafHash(batch.receipts[i]!),
        proof: tree.getProof(i) as Hex[],
        reason,
        evidenceHash,
      });

    const early = await rejection(report(v1));
    expect(early.errorName).toBe('RandomnessNotFixed');
    await fix(batchId);

    const balanceBefore = await validatorPool();
    const result = await report(v1);
    expect(result).toMatchObject({
      gateway: gateway.address,
      batchId,
      leaf,
      validator: v1.address,
      reason: 'RECEIPT_REQUEST_HASH',
    });
    expect(result.hash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(await faultReported(leaf, v1.address)).toBe(true);
    expect(await faultReported(leaf, v3.address)).toBe(false);
    expect(await validatorPool()).toBe(balanceBefore);
    // no audit opened: the report is a record, not a vote
    expect((await getAudit(reader(), { grid, leaf })).opened).toBe(false);

    // the decoded event: anyone can read the reason back from the log
    const logs = await reader().getContractEvents({
      address: grid,
      abi: gridAbi,
      eventName: 'GatewayFaultReported',
      fromBlock: result.blockNumber,
      toBlock: result.blockNumber,
    });
    expect(logs).toHaveLength(1);
    expect(logs[0]!.args).toMatchObject({
      gateway: gateway.address,
      leaf,
      validator: v1.address,
      evidenceHash,
    });
    expect(gatewayFaultReason(logs[0]!.args.reason!)).toBe('RECEIPT_REQUEST_HASH');
    expect(logs[0]!.args.reason).toBe(encodeGatewayFaultReason('RECEIPT_REQUEST_HASH'));

    const twice = await rejection(report(v1, 2, 'PROMPT_MISMATCH'));
    expect(twice.errorName).toBe('AlreadyReported');
    expect(twice.args).toEqual({ validator: v1.address, leaf });

    // an operator key reports for its owner
    await setOperator(clientFor(v3), { grid, role: 'validator', operator: stranger.address });
    const byKey = await report(stranger, 2, 'PROMPT_MISMATCH');
    expect(byKey).toMatchObject({ validator: v3.address, reason: 'PROMPT_MISMATCH' });
    expect(await faultReported(leaf, v3.address)).toBe(true);
    await setOperator(clientFor(v3), { grid, role: 'validator', operator: undefined });

    // not a validator; a validator slashed below the minimum (v2, above) is not active
    const outsider = await rejection(report(payer));
    expect(outsider.errorName).toBe('NotAnActiveValidator');
    expect(outsider.args).toEqual({ validator: payer.address });
    expect((await getBond(reader(), { grid, role: 'validator', owner: v2.address })).active).toBe(false);
    const inactive = await rejection(report(v2));
    expect(inactive.errorName).toBe('NotAnActiveValidator');

    // another leaf's proof; an unknown batch
    const badProof = await rejection(
      reportGatewayFault(clientFor(v1), {
        grid,
        batchId,
        leaf: receiptLeafHash(batch.receipts[0]!),
        proof: tree.getProof(1) as Hex[],
        reason: 'FEE_MISMATCH',
        evidenceHash,
      }),
    );
    expect(badProof.errorName).toBe('InvalidProof');
    const unknown = await rejection(
      reportGatewayFault(clientFor(v1), {
        grid,
        batchId: 10_000n,
        leaf,
        proof: tree.getProof(2) as Hex[],
        reason: 'FEE_MISMATCH',
        evidenceHash,
      }),
    );
    expect(unknown.errorName).toBe('UnknownBatch');

    // a reason that is no code is refused before anything is sent
    const blockBefore = await reader().getBlockNumber();
    const invalid = await rejection(report(v1, 0, ''));
    expect(invalid.code).toBe('INVALID_ARGUMENT');
    const tooLong = await rejection(report(v1, 0, 'X'.repeat(32)));
    expect(tooLong.code).toBe('INVALID_ARGUMENT');
    expect(await reader().getBlockNumber()).toBe(blockBefore);

    // reports belong to the audit period: after the commit deadline they are refused
    await mine(1, COMMIT_WINDOW + 1);
    const late = await rejection(report(v1, 0));
    expect(late.errorName).toBe('CommitWindowClosed');
    expect(await faultReported(receiptLeafHash(batch.receipts[0]!), v1.address)).toBe(false);
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

    const governance = await getGovernance(reader(), { grid });
    expect(governance).toMatchObject({
      owner: deployer.address,
      pendingOwner: null,
      cutDelay: deployment.params.cutDelay,
      changeWindow: deployment.params.changeWindow,
      auditLimits: deployment.params.auditLimits,
    });
    const from = { grid, fromBlock: BigInt(deployment.deployBlock) };
    expect((await getPendingChanges(reader(), from)).changes).toEqual([]);

    const config = { ...deployment.params.audit!, auditRateBps: 500, commitWindow: 120 };
    const bad = await rejection(
      announceAuditConfig(clientFor(deployer), { grid, config: { ...config, finderShareBps: 10_001 } }),
    );
    expect(bad.errorName).toBe('InvalidAuditConfig');
    const notOwner = await rejection(announceAuditConfig(clientFor(stranger), { grid, config }));
    expect(notOwner.errorName).toBe('NotOwner');
    const announced = await announceAuditConfig(clientFor(deployer), { grid, config });
    expect(announced.expiresAt - announced.executableAt).toBe(governance.changeWindow);
    const pending = await getPendingChanges(reader(), from);
    expect(pending.changes).toEqual([
      expect.objectContaining({
        kind: 'auditConfig',
        id: announced.id,
        config,
        executableAt: announced.executableAt,
        expiresAt: announced.expiresAt,
        status: 'waiting',
      }),
    ]);
    const notYet = await rejection(setAuditConfig(clientFor(deployer), { grid, config }));
    expect(notYet.errorName).toBe('ChangeNotReady');
    await mine(1, governance.cutDelay);
    expect((await getPendingChanges(reader(), from)).changes[0]?.status).toBe('ready');
    await setAuditConfig(clientFor(deployer), { grid, config });
    expect((await getGridParams(reader(), { grid })).audit).toEqual(config);
    expect((await getPendingChanges(reader(), from)).changes).toEqual([]);
  });

  test('a cancelled or lapsed announcement is no longer pending', async () => {
    const from = { grid, fromBlock: BigInt(deployment.deployBlock) };
    const { changeWindow, cutDelay } = await getGovernance(reader(), { grid });
    const owner = clientFor(deployer);
    const a = await announceAuditConfig(owner, {
      grid,
      config: { ...deployment.params.audit!, auditRateBps: 700 },
    });
    const b = await announceAuditConfig(owner, {
      grid,
      config: { ...deployment.params.audit!, auditRateBps: 800 },
    });
    expect((await getPendingChanges(reader(), from)).changes.map((c) => c.id)).toEqual([a.id, b.id]);
    await writeCancel(a.id);
    expect((await getPendingChanges(reader(), from)).changes.map((c) => c.id)).toEqual([b.id]);
    await mine(1, cutDelay + changeWindow + 1);
    expect((await getPendingChanges(reader(), from)).changes).toEqual([]);
  });
});

async function writeCancel(id: Hex) {
  const owner = clientFor(deployer);
  const hash = await owner.writeContract({
    address: grid,
    abi: gridAbi,
    functionName: 'cancelChange',
    args: [id],
  });
  await owner.waitForTransactionReceipt({ hash });
}
