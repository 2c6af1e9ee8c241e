import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  splitGross,
  verifyReceiptProof,
} from '@aipg/core';
import {
  type Address,
  createTestClient,
  type Hex,
  hashTypedData,
  http,
  keccak256,
  maxUint256,
  recoverTypedDataAddress,
  toHex,
  zeroHash,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { getBytecode, readContract } from 'viem/actions';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  anvilTestAccounts,
  approveToken,
  bond,
  ChainError,
  cancelUnbond,
  createGridClients,
  type Deployment,
  decreaseGatewayCap,
  deployGrid,
  deposit,
  depositWithPermit,
  facetNames,
  getAccountStatus,
  getBond,
  getGridParams,
  getModel,
  getNextReceiptSeq,
  gridAbi,
  increaseBond,
  increaseGatewayCap,
  listModels,
  readDeployment,
  registerModel,
  requestDepositWithdrawal,
  requestUnbond,
  type StartAnvilReturnType,
  setOperator,
  settleBatch,
  startAnvil,
  testAipgAbi,
  withdrawBond,
  withdrawDeposit,
  withdrawEarnings,
  writeDeployment,
} from '../src/index.ts';

let anvil: StartAnvilReturnType;
let deployment: Deployment;
let grid: Address;
let token: Address;

const [deployer, workerOwner, workerOperator, validatorOwner, payer, gateway, stranger, permitPayer] =
  anvilTestAccounts;

function clientFor(account: (typeof anvilTestAccounts)[number]) {
  const { walletClient } = createGridClients({
    rpcUrl: anvil.rpcUrl,
    chainId: anvil.chainId,
    account: privateKeyToAccount(account.privateKey),
  });
  return walletClient!;
}

async function advance(seconds: number) {
  const test = createTestClient({ mode: 'anvil', transport: http(anvil.rpcUrl) });
  await test.increaseTime({ seconds });
  await test.mine({ blocks: 1 });
}

async function balanceOf(account: Address) {
  const { publicClient } = createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId });
  return readContract(publicClient, {
    address: token,
    abi: testAipgAbi,
    functionName: 'balanceOf',
    args: [account],
  });
}

async function rejection(promise: Promise<unknown>): Promise<ChainError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ChainError);
  return error as ChainError;
}

beforeAll(async () => {
  anvil = await startAnvil();
  const { publicClient } = createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId });
  deployment = await deployGrid(
    { walletClient: clientFor(deployer), publicClient },
    {
      network: 'devnet',
      fund: { accounts: anvilTestAccounts.map((a) => a.address), amount: parseAipg('100000') },
    },
  );
  grid = deployment.grid;
  token = deployment.token;
});

afterAll(async () => {
  await anvil?.stop();
});

describe('deployGrid', () => {
  test('deploys every facet behind one diamond with the devnet parameters', async () => {
    const { publicClient } = createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId });
    expect(deployment).toMatchObject({
      network: 'devnet',
      chainId: 31337,
      owner: deployer.address,
      treasury: deployer.address,
      params: {
        unbondDelay: 30,
        depositWithdrawDelay: 30,
        cutDelay: 120,
        changeWindow: 120,
        workerBps: 8000,
        audit: { validatorsPerAudit: 3, quorum: 2, commitWindow: 30, revealWindow: 30 },
        auditLimits: {
          maxWorkerSlashBps: 2000,
          maxFalseAttestationSlashBps: 1000,
          maxFinderShareBps: 5000,
          minValidatorsPerAudit: 1,
          minQuorum: 1,
          minCommitWindow: 5,
          minRevealWindow: 5,
        },
      },
    });
    expect(Object.keys(deployment.facets).sort()).toEqual([...facetNames].sort());
    for (const address of Object.values(deployment.facets)) {
      expect(await getBytecode(publicClient, { address })).toMatch(/^0x[0-9a-f]{20,}/);
    }
    const facetAddresses = await readContract(publicClient, {
      address: grid,
      abi: gridAbi,
      functionName: 'facetAddresses',
    });
    const lower = (list: readonly string[]) => list.map((a) => a.toLowerCase()).sort();
    expect(lower(facetAddresses)).toEqual(lower(Object.values(deployment.facets)));

    const params = await getGridParams(publicClient, { grid });
    expect(params).toMatchObject({
      token,
      owner: deployer.address,
      paused: false,
      workerMinimumBond: parseAipg('1000'),
      validatorMinimumBond: parseAipg('10000'),
      workerUnbondDelay: 30,
      validatorUnbondDelay: 30,
      depositWithdrawDelay: 30,
      cutDelay: 120,
      workerBps: 8000,
      validatorBps: 1500,
      protocolBps: 500,
      confidentialPremiumBps: 2500,
      audit: deployment.params.audit,
    });
    const limits = await readContract(publicClient, {
      address: grid,
      abi: gridAbi,
      functionName: 'auditLimits',
    });
    expect(limits).toEqual({
      ...deployment.params.auditLimits,
      minCommitWindow: 5n,
      minRevealWindow: 5n,
    });
    expect(
      await readContract(publicClient, { address: grid, abi: gridAbi, functionName: 'changeWindow' }),
    ).toBe(120n);
    expect(await balanceOf(stranger.address)).toBe(parseAipg('100000'));
  });

  test('writes and reads the deployment file, and rejects a malformed one clearly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aipg-chain-'));
    try {
      const path = join(dir, 'nested', 'deployment.json');
      await writeDeployment(path, deployment);
      expect(await readDeployment(path)).toEqual(deployment);

      await writeFile(
        path,
        JSON.stringify({
          ...JSON.parse(JSON.stringify(deployment, (_k, v) => (typeof v === 'bigint' ? `${v}` : v))),
          grid: '0x1234',
        }),
      );
      const bad = await rejection(readDeployment(path));
      expect(bad.code).toBe('DEPLOYMENT_FILE');
      expect(bad.shortMessage).toBe(`invalid deployment file ${path}: grid is not an address`);

      const missing = await rejection(readDeployment(join(dir, 'nope.json')));
      expect(missing.shortMessage).toMatch(/deployment file .*nope\.json not found/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('refuses inconsistent parameters before sending anything', async () => {
    const { publicClient } = createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId });
    const error = await rejection(
      deployGrid(
        { walletClient: clientFor(deployer), publicClient },
        { network: 'devnet', init: { workerBps: 9000 } },
      ),
    );
    expect(error.shortMessage).toMatch(/shares must sum to 10,000 bps/);
    const refused = async (init: Parameters<typeof deployGrid>[1]['init']) =>
      (
        await rejection(
          deployGrid({ walletClient: clientFor(deployer), publicClient }, { network: 'devnet', init }),
        )
      ).shortMessage;
    // DiamondInit's reaction margin is 60 s off Base: the devnet's 120 s cut delay is exactly 30 + 60 + 30.
    expect(await refused({ cutDelay: 89 })).toMatch(/cutDelay must be at least .* \+ 60 s/);
    expect(await refused({ changeWindow: 121 })).toMatch(
      /changeWindow must be positive and at most cutDelay/,
    );
    expect(await refused({ audit: { validatorsPerAudit: 4, quorum: 2 } })).toMatch(
      /quorum must be a majority/,
    );
    expect(await refused({ audit: { commitWindow: 4 } })).toMatch(/commitWindow must be at least 5 s/);
    expect(await refused({ audit: { workerSlashAmount: parseAipg('201') } })).toMatch(
      /workerSlashAmount must be at most 2000 bps/,
    );
    expect(await refused({ auditLimits: { minQuorum: 0 } })).toMatch(/minQuorum must be at least 1/);
  });

  test('a single-validator devnet config is within the devnet limits and deploys', async () => {
    const { publicClient } = createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId });
    const single = await deployGrid(
      { walletClient: clientFor(deployer), publicClient },
      { network: 'devnet', token, init: { audit: { validatorsPerAudit: 1, quorum: 1 } } },
    );
    expect(single.params.audit).toMatchObject({ validatorsPerAudit: 1, quorum: 1 });
  });
});

describe('bonding', () => {
  test('a bond below the minimum is a decoded BondTooLow', async () => {
    const client = clientFor(stranger);
    await approveToken(client, { token, spender: grid, amount: parseAipg('500') });
    const error = await rejection(bond(client, { grid, role: 'worker', amount: parseAipg('500') }));
    expect(error.code).toBe('CONTRACT_REVERT');
    expect(error.errorName).toBe('BondTooLow');
    expect(error.shortMessage).toBe('BondTooLow(bond: 500 AIPG, minimum: 1,000 AIPG)');
    expect(error.args).toEqual({ bond: parseAipg('500'), minimum: parseAipg('1000') });
  });

  test('a bond without an allowance is a decoded token error', async () => {
    const client = clientFor(stranger);
    const error = await rejection(bond(client, { grid, role: 'validator', amount: parseAipg('10000') }));
    expect(error.errorName).toBe('ERC20InsufficientAllowance');
    expect(error.shortMessage).toMatch(
      /^ERC20InsufficientAllowance\(spender: 0x[0-9a-fA-F]{40}, allowance: 500 AIPG, needed: 10,000 AIPG\)$/,
    );
  });

  test('stakes as a worker (with an operator key) and as a validator', async () => {
    const worker = clientFor(workerOwner);
    const approval = await approveToken(worker, { token, spender: grid, amount: parseAipg('1500') });
    expect(approval.hash).toMatch(/^0x/);
    const again = await approveToken(worker, { token, spender: grid, amount: parseAipg('1000') });
    expect(again.hash).toBeUndefined();
    await bond(worker, { grid, role: 'worker', amount: parseAipg('1000'), operator: workerOperator.address });
    await increaseBond(worker, { grid, role: 'worker', amount: parseAipg('500') });

    const validator = clientFor(validatorOwner);
    await approveToken(validator, { token, spender: grid, amount: parseAipg('10000') });
    await bond(validator, { grid, role: 'validator', amount: parseAipg('10000') });

    const { publicClient } = createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId });
    expect(await getBond(publicClient, { grid, role: 'worker', owner: workerOwner.address })).toEqual({
      amount: parseAipg('1500'),
      unbonding: 0n,
      unbondReadyAt: 0,
      operator: workerOperator.address,
      slashed: 0n,
      active: true,
    });
    expect(
      await getBond(publicClient, { grid, role: 'validator', owner: validatorOwner.address }),
    ).toMatchObject({
      amount: parseAipg('10000'),
      operator: validatorOwner.address,
      active: true,
    });
    const owner = await readContract(publicClient, {
      address: grid,
      abi: gridAbi,
      functionName: 'workerOf',
      args: [workerOperator.address],
    });
    expect(owner).toBe(workerOwner.address);
  });

  test('an unbond that leaves less than the minimum is refused; a cancelled unbond is active again', async () => {
    const worker = clientFor(workerOwner);
    const error = await rejection(requestUnbond(worker, { grid, role: 'worker', amount: parseAipg('1000') }));
    expect(error.shortMessage).toBe('BondTooLow(bond: 500 AIPG, minimum: 1,000 AIPG)');

    await requestUnbond(worker, { grid, role: 'worker', amount: parseAipg('500') });
    await cancelUnbond(worker, { grid, role: 'worker' });
    const { publicClient } = createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId });
    expect(await getBond(publicClient, { grid, role: 'worker', owner: workerOwner.address })).toMatchObject({
      amount: parseAipg('1500'),
      unbonding: 0n,
    });
    await setOperator(worker, { grid, role: 'worker', operator: workerOperator.address });
  });

  test('unbonds, waits out the delay and withdraws', async () => {
    const validator = clientFor(validatorOwner);
    const before = await balanceOf(validatorOwner.address);
    const { readyAt } = await requestUnbond(validator, {
      grid,
      role: 'validator',
      amount: parseAipg('10000'),
    });

    const { publicClient } = createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId });
    const status = await getAccountStatus(publicClient, { grid, account: validatorOwner.address });
    expect(status.validator).toMatchObject({ amount: 0n, unbonding: parseAipg('10000'), active: false });
    expect(status.validator.unbondReadyAt).toBe(readyAt);
    expect(status.validator.unbondSecondsLeft).toBeGreaterThan(25);

    const early = await rejection(withdrawBond(validator, { grid, role: 'validator' }));
    expect(early.errorName).toBe('UnbondNotReady');
    expect(early.shortMessage).toMatch(/^UnbondNotReady\(readyAt: \d{4}-\d\d-\d\dT[\d:]+Z, nowTs: .*Z\)$/);

    await advance(31);
    const { amount } = await withdrawBond(validator, { grid, role: 'validator' });
    expect(amount).toBe(parseAipg('10000'));
    expect(await balanceOf(validatorOwner.address)).toBe(before + parseAipg('10000'));
    const nothing = await rejection(withdrawBond(validator, { grid, role: 'validator' }));
    expect(nothing.errorName).toBe('NothingUnbonding');
  });
});

describe('payments', () => {
  let receipts: Receipt[];
  let root: Hex;

  test('a payer deposits and raises and lowers a gateway cap relatively', async () => {
    const client = clientFor(payer);
    await approveToken(client, { token, spender: grid, amount: parseAipg('100') });
    await deposit(client, { grid, amount: parseAipg('100') });
    expect(
      (await increaseGatewayCap(client, { grid, gateway: gateway.address, amount: parseAipg('60') })).cap,
    ).toBe(parseAipg('60'));
    expect(
      (await decreaseGatewayCap(client, { grid, gateway: gateway.address, amount: parseAipg('10') })).cap,
    ).toBe(parseAipg('50'));
    const { publicClient } = createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId });
    const allowance = await readContract(publicClient, {
      address: grid,
      abi: gridAbi,
      functionName: 'gatewayAllowance',
      args: [payer.address, gateway.address],
    });
    expect(allowance).toBe(parseAipg('50'));
  });

  test('a gateway settles a batch of receipts signed by the worker operator; the worker withdraws earnings', async () => {
    const modelId = computeModelId('tiny-llama', keccak256(toHex('weights')));
    const sampling = { maxTokens: 16, temperature: 0, topP: 1, seed: 7, stop: [] };
    const { publicClient } = createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId });
    expect(await getNextReceiptSeq(publicClient, { grid, gateway: gateway.address })).toBe(0n);
    // Receipt numbers 0, 1 and 3: the job numbered 2 failed without a receipt, inside the range with no leaf.
    receipts = [0, 1, 3].map((seq, i) => ({
      jobId: keccak256(toHex(`job-${i}`)),
      gateway: gateway.address,
      payer: payer.address,
      worker: workerOwner.address,
      modelId,
      requestHash: computeRequestHash([1, 2, 3, i], sampling, CANONICAL_SAMPLER),
      outputHash: computeOutputHash([4, 5, i], 'stop'),
      inputUnits: 4n,
      outputUnits: 3n,
      fee: parseAipg(`${i + 1}`),
      completedAt: 1_800_000_000n + BigInt(i),
      confidential: false,
      seq: BigInt(seq),
    }));
    const operator = privateKeyToAccount(workerOperator.privateKey);
    for (const receipt of receipts) {
      const typed = receiptTypedData(receipt, anvil.chainId, grid);
      const signature = await operator.signTypedData(typed);
      expect(await recoverTypedDataAddress({ ...typed, signature })).toBe(workerOperator.address);
      // The EIP-712 type (seq last) and the leaf are the contract's own.
      const onChain = { address: grid, abi: gridAbi, args: [receipt] } as const;
      expect(await readContract(publicClient, { ...onChain, functionName: 'receiptDigest' })).toBe(
        hashTypedData(typed),
      );
      expect(await readContract(publicClient, { ...onChain, functionName: 'receiptLeaf' })).toBe(
        receiptLeafHash(receipt),
      );
    }
    const tree = buildReceiptTree(receipts);
    root = tree.root as Hex;
    const proof = tree.getProof(1) as Hex[];
    expect(verifyReceiptProof(root, receipts[1]!, proof)).toBe(true);
    expect(verifyReceiptProof(root, receipts[0]!, proof)).toBe(false);

    const total = receipts.reduce((sum, r) => sum + r.fee, 0n);
    const { batchId } = await settleBatch(clientFor(gateway), {
      grid,
      root,
      firstSeq: 0n,
      receiptCount: 4,
      debits: [{ payer: payer.address, amount: total }],
      credits: [{ worker: workerOwner.address, gross: total }],
    });
    expect(batchId).toBe(1n);
    expect(await getNextReceiptSeq(publicClient, { grid, gateway: gateway.address })).toBe(4n);

    const batch = await readContract(publicClient, {
      address: grid,
      abi: gridAbi,
      functionName: 'getBatch',
      args: [1n],
    });
    expect(batch).toMatchObject({ root, gateway: gateway.address, receiptCount: 4, total, firstSeq: 0n });

    const share = splitGross(total, { workerBps: 8000, validatorBps: 1500 });
    const status = await getAccountStatus(publicClient, { grid, account: workerOwner.address });
    expect(status.earnings).toBe(share.worker);
    const payerStatus = await getAccountStatus(publicClient, { grid, account: payer.address });
    expect(payerStatus.deposit.balance).toBe(parseAipg('100') - total);

    const before = await balanceOf(workerOwner.address);
    const { amount } = await withdrawEarnings(clientFor(workerOwner), { grid });
    expect(amount).toBe(share.worker);
    expect(await balanceOf(workerOwner.address)).toBe(before + share.worker);
  });

  test('settlement errors are decoded: a root twice, a range settled twice, an empty total, a cap exceeded', async () => {
    const again = await rejection(
      settleBatch(clientFor(gateway), {
        grid,
        root,
        firstSeq: 4n,
        receiptCount: 1,
        debits: [{ payer: payer.address, amount: 1n }],
        credits: [{ worker: workerOwner.address, gross: 1n }],
      }),
    );
    expect(again.errorName).toBe('BatchAlreadySettled');
    const stale = await rejection(
      settleBatch(clientFor(gateway), {
        grid,
        root: keccak256(toHex('a replayed range')),
        firstSeq: 0n,
        receiptCount: 4,
        debits: [{ payer: payer.address, amount: 1n }],
        credits: [{ worker: workerOwner.address, gross: 1n }],
      }),
    );
    expect(stale.errorName).toBe('SequenceMismatch');
    expect(stale.args).toEqual({ gateway: gateway.address, expected: 4n, firstSeq: 0n });
    expect(stale.shortMessage).toBe(
      `SequenceMismatch(gateway: ${gateway.address}, expected: 4, firstSeq: 0)`,
    );
    const empty = await rejection(
      settleBatch(clientFor(gateway), {
        grid,
        root: keccak256(toHex('a batch that pays nothing')),
        firstSeq: 4n,
        receiptCount: 1,
        debits: [{ payer: payer.address, amount: 0n }],
        credits: [{ worker: workerOwner.address, gross: 0n }],
      }),
    );
    expect(empty.errorName).toBe('EmptyBatch');
    const capped = await rejection(
      settleBatch(clientFor(gateway), {
        grid,
        root: keccak256(toHex('another batch')),
        firstSeq: 4n,
        receiptCount: 1,
        debits: [{ payer: payer.address, amount: parseAipg('60') }],
        credits: [{ worker: workerOwner.address, gross: parseAipg('60') }],
      }),
    );
    expect(capped.errorName).toBe('GatewayCapExceeded');
    expect(capped.shortMessage).toContain('requested: 60 AIPG, cap: 44 AIPG');
  });

  test('a deposit withdrawal waits out its delay', async () => {
    const client = clientFor(payer);
    const { readyAt } = await requestDepositWithdrawal(client, { grid, amount: parseAipg('10') });
    expect(readyAt).toBeGreaterThan(0);
    expect((await rejection(withdrawDeposit(client, { grid }))).errorName).toBe('WithdrawalNotReady');
    await advance(31);
    const before = await balanceOf(payer.address);
    const { amount } = await withdrawDeposit(client, { grid });
    expect(amount).toBe(parseAipg('10'));
    expect(await balanceOf(payer.address)).toBe(before + parseAipg('10'));
  });

  test('depositWithPermit deposits without a prior approve', async () => {
    const client = clientFor(permitPayer);
    await depositWithPermit(client, { grid, amount: parseAipg('25') });
    const { publicClient } = createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId });
    const status = await getAccountStatus(publicClient, { grid, account: permitPayer.address });
    expect(status.deposit).toEqual({
      balance: parseAipg('25'),
      withdrawRequested: 0n,
      withdrawReadyAt: 0,
      withdrawSecondsLeft: 0,
    });
    expect(status.walletBalance).toBe(parseAipg('100000') - parseAipg('25'));
    const allowance = await readContract(publicClient, {
      address: token,
      abi: testAipgAbi,
      functionName: 'allowance',
      args: [permitPayer.address, grid],
    });
    expect(allowance).toBe(0n);
    // An expired permit is decoded too.
    const expired = await rejection(
      depositWithPermit(client, { grid, amount: parseAipg('1'), deadline: 1n }),
    );
    expect(expired.errorName).toBe('ERC2612ExpiredSignature');
  });
});

describe('models', () => {
  test('the owner registers a model; anyone lists them with rate cards and tokenizer hashes', async () => {
    const weightsHash = keccak256(toHex('gguf bytes'));
    const tokenizerHash = keccak256(toHex('tokenizer gguf bytes'));
    const rates = {
      inputPerMTokens: parseAipg('0.5'),
      outputPerMTokens: parseAipg('1.5'),
      perMegapixelStep: 0n,
    };
    const { modelId } = await registerModel(clientFor(deployer), {
      grid,
      name: 'tiny-llama-113k',
      kind: 'text',
      weightsHash,
      tokenizerHash,
      parameterCount: 113_000n,
      minVramMb: 512,
      rates,
    });
    expect(modelId).toBe(computeModelId('tiny-llama-113k', weightsHash));

    const { publicClient } = createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId });
    const model = await getModel(publicClient, { grid, modelId });
    expect(model).toEqual({
      id: modelId,
      name: 'tiny-llama-113k',
      kind: 'text',
      weightsHash,
      tokenizerHash,
      parameterCount: 113_000n,
      minVramMb: 512,
      rates,
      active: true,
    });
    expect(await listModels(publicClient, { grid })).toEqual([model]);

    const notOwner = await rejection(
      registerModel(clientFor(stranger), {
        grid,
        name: 'x',
        kind: 'image',
        weightsHash,
        tokenizerHash: zeroHash,
        parameterCount: 1n,
        minVramMb: 1,
        rates,
      }),
    );
    expect(notOwner.errorName).toBe('NotOwner');
    expect(notOwner.shortMessage).toBe(`NotOwner(caller: ${stranger.address})`);
  });

  test('a text model needs a tokenizer hash; an image model may go without', async () => {
    const weightsHash = keccak256(toHex('other gguf bytes'));
    const noTokenizer = await rejection(
      registerModel(clientFor(deployer), {
        grid,
        name: 'no-tokenizer',
        kind: 'text',
        weightsHash,
        tokenizerHash: zeroHash,
        parameterCount: 1n,
        minVramMb: 1,
        rates: { inputPerMTokens: 1n, outputPerMTokens: 1n, perMegapixelStep: 0n },
      }),
    );
    expect(noTokenizer.errorName).toBe('ZeroTokenizerHash');

    const { modelId } = await registerModel(clientFor(deployer), {
      grid,
      name: 'sd-tiny',
      kind: 'image',
      weightsHash,
      tokenizerHash: zeroHash,
      parameterCount: 1n,
      minVramMb: 1,
      rates: { inputPerMTokens: 0n, outputPerMTokens: 0n, perMegapixelStep: 1n },
    });
    const { publicClient } = createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId });
    expect(await getModel(publicClient, { grid, modelId })).toMatchObject({
      kind: 'image',
      tokenizerHash: zeroHash,
    });
  });
});

describe('status and RPC errors', () => {
  test('getAccountStatus reports bonds, earnings, deposit and wallet balance', async () => {
    const { publicClient } = createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId });
    const status = await getAccountStatus(publicClient, { grid, account: workerOwner.address });
    expect(status).toMatchObject({
      account: workerOwner.address,
      token,
      worker: {
        amount: parseAipg('1500'),
        unbonding: 0n,
        active: true,
        minimum: parseAipg('1000'),
        slashed: 0n,
      },
      validator: { amount: 0n, active: false, minimum: parseAipg('10000') },
      earnings: 0n,
      deposit: { balance: 0n },
    });
    expect(status.chainTime).toBeGreaterThan(0);
  });

  test('an unreachable RPC is RPC_UNREACHABLE', async () => {
    const { publicClient } = createGridClients({ rpcUrl: 'http://127.0.0.1:9', chainId: 31337 });
    const error = await rejection(getBond(publicClient, { grid, role: 'worker', owner: payer.address }));
    expect(error.code).toBe('RPC_UNREACHABLE');
    expect(error.retryable).toBe(true);
    expect(error.shortMessage).toBe('cannot reach the RPC endpoint http://127.0.0.1:9');
  });

  test('an unlimited gateway cap saturates and a decrease saturates at zero', async () => {
    const client = clientFor(payer);
    expect(
      (await increaseGatewayCap(client, { grid, gateway: stranger.address, amount: maxUint256 })).cap,
    ).toBe(maxUint256);
    expect((await increaseGatewayCap(client, { grid, gateway: stranger.address, amount: 1n })).cap).toBe(
      maxUint256,
    );
    expect(
      (await decreaseGatewayCap(client, { grid, gateway: stranger.address, amount: maxUint256 })).cap,
    ).toBe(0n);
    expect((await decreaseGatewayCap(client, { grid, gateway: stranger.address, amount: 1n })).cap).toBe(0n);
  });
});
