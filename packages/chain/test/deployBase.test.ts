import { type Address, getAddress, type Hex, keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { deployContract, getBlockNumber, readContract, waitForTransactionReceipt } from 'viem/actions';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { defaultGridParams } from '../src/deploy.ts';
import { artifacts } from '../src/generated/abis.ts';
import {
  anvilTestAccounts,
  ChainError,
  createGridClients,
  type Deployment,
  deployGrid,
  gridAbi,
  type StartAnvilReturnType,
  startAnvil,
} from '../src/index.ts';

// deployGrid for Base against an anvil that says it is Base (chain id 8453): the diamond is owned by a
// GridTimelock slower than every exit, run by the given owner, and its randomness comes from a VrfRandomness
// adapter deployed for the diamond's address. No VRF coordinator runs here: nothing requests randomness.
let anvil: StartAnvilReturnType;
let token: Address;
let deployment: Deployment;

const [deployer, operator, coordinator] = anvilTestAccounts;
const base = defaultGridParams.base;
const KEY_HASH = keccak256(toHex('base vrf key'));
const SUB_ID = 1234n;

function clients() {
  const { walletClient, publicClient } = createGridClients({
    rpcUrl: anvil.rpcUrl,
    chainId: anvil.chainId,
    account: privateKeyToAccount(deployer.privateKey),
  });
  return { walletClient: walletClient!, publicClient };
}

function reader() {
  return createGridClients({ rpcUrl: anvil.rpcUrl, chainId: anvil.chainId }).publicClient;
}

function readTimelock<const F extends 'getMinDelay' | 'longestExitDelay'>(address: Address, functionName: F) {
  return readContract(reader(), { address, abi: artifacts.GridTimelock.abi, functionName });
}

async function hasRole(timelock: Address, role: Hex, account: Address): Promise<boolean> {
  return readContract(reader(), {
    address: timelock,
    abi: artifacts.GridTimelock.abi,
    functionName: 'hasRole',
    args: [role, account],
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
  anvil = await startAnvil({ chainId: 8453 });
  const { walletClient, publicClient } = clients();
  const hash = await deployContract(walletClient, {
    abi: artifacts.TestAIPG.abi,
    bytecode: artifacts.TestAIPG.bytecode,
    args: [deployer.address],
  });
  const receipt = await waitForTransactionReceipt(publicClient, { hash });
  token = getAddress(receipt.contractAddress!);
  deployment = await deployGrid(clients(), {
    network: 'base',
    token,
    owner: operator.address,
    vrf: {
      coordinator: coordinator.address,
      keyHash: KEY_HASH,
      subId: SUB_ID,
      requestConfirmations: 3,
      callbackGasLimit: 100_000,
    },
  });
});

afterAll(async () => {
  await anvil?.stop();
});

describe('deployGrid on Base', () => {
  test('the diamond is owned by a GridTimelock slower than every exit', async () => {
    expect(deployment.chainId).toBe(8453);
    expect(deployment.timelock).toBeDefined();
    const timelock = deployment.timelock!;
    const owner = await readContract(reader(), {
      address: deployment.grid,
      abi: gridAbi,
      functionName: 'owner',
    });
    expect(owner).toBe(timelock);
    expect(deployment.owner).toBe(timelock);

    const minDelay = await readTimelock(timelock, 'getMinDelay');
    const unbondDelay = await readContract(reader(), {
      address: deployment.grid,
      abi: gridAbi,
      functionName: 'workerUnbondDelay',
    });
    const depositDelay = await readContract(reader(), {
      address: deployment.grid,
      abi: gridAbi,
      functionName: 'depositWithdrawDelay',
    });
    expect(minDelay).toBeGreaterThan(unbondDelay);
    expect(minDelay).toBeGreaterThan(depositDelay);
    // the default: twice the longest exit delay
    expect(minDelay).toBe(2n * BigInt(Math.max(base.unbondDelay, base.depositWithdrawDelay)));
    expect(await readTimelock(timelock, 'longestExitDelay')).toBe(BigInt(base.unbondDelay));
  });

  test('the given owner proposes and executes; nobody else administers the timelock', async () => {
    const timelock = deployment.timelock!;
    const role = (name: 'PROPOSER_ROLE' | 'EXECUTOR_ROLE' | 'CANCELLER_ROLE' | 'DEFAULT_ADMIN_ROLE') =>
      readContract(reader(), { address: timelock, abi: artifacts.GridTimelock.abi, functionName: name });
    expect(await hasRole(timelock, await role('PROPOSER_ROLE'), operator.address)).toBe(true);
    expect(await hasRole(timelock, await role('EXECUTOR_ROLE'), operator.address)).toBe(true);
    expect(await hasRole(timelock, await role('PROPOSER_ROLE'), deployer.address)).toBe(false);
    const admin = await role('DEFAULT_ADMIN_ROLE');
    expect(await hasRole(timelock, admin, operator.address)).toBe(false);
    expect(await hasRole(timelock, admin, deployer.address)).toBe(false);
    expect(await hasRole(timelock, admin, timelock)).toBe(true);
    // fees go to the owner itself, not into the timelock
    const treasury = await readContract(reader(), {
      address: deployment.grid,
      abi: gridAbi,
      functionName: 'treasury',
    });
    expect(treasury).toBe(operator.address);
    expect(deployment.treasury).toBe(operator.address);
  });

  test('the randomness source is a VrfRandomness adapter bound to this diamond', async () => {
    const source = deployment.randomnessSource!;
    expect(
      await readContract(reader(), {
        address: deployment.grid,
        abi: gridAbi,
        functionName: 'randomnessSource',
      }),
    ).toBe(source);
    const read = <const F extends 'diamond' | 'coordinator' | 'keyHash' | 'subId' | 'nativePayment'>(
      functionName: F,
    ) => readContract(reader(), { address: source, abi: artifacts.VrfRandomness.abi, functionName });
    expect(await read('diamond')).toBe(deployment.grid);
    expect(await read('coordinator')).toBe(coordinator.address);
    expect(await read('keyHash')).toBe(KEY_HASH);
    expect(await read('subId')).toBe(SUB_ID);
    expect(await read('nativePayment')).toBe(true);
  });

  test('a timelockDelay is used when it exceeds every exit delay', async () => {
    const delay = base.unbondDelay + 1;
    const d = await deployGrid(clients(), {
      network: 'base',
      token,
      owner: operator.address,
      randomnessSource: deployment.randomnessSource!,
      timelockDelay: delay,
    });
    expect(await readTimelock(d.timelock!, 'getMinDelay')).toBe(BigInt(delay));
    expect(await readContract(reader(), { address: d.grid, abi: gridAbi, functionName: 'owner' })).toBe(
      d.timelock,
    );
  });

  test('a timelockDelay not above the exit delays is refused before anything is sent', async () => {
    const before = await getBlockNumber(reader());
    const error = await rejection(
      deployGrid(clients(), {
        network: 'base',
        token,
        owner: operator.address,
        randomnessSource: deployment.randomnessSource!,
        timelockDelay: base.unbondDelay,
      }),
    );
    expect(error.code).toBe('DEPLOY_FAILED');
    expect(error.message).toMatch(/timelockDelay must exceed/);
    expect(await getBlockNumber(reader())).toBe(before);
  });
});
