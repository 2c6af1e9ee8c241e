import { AIPG_BASE_ADDRESS, parseAipg } from '@aipg/core';
import {
  type Account,
  type Address,
  type Chain,
  type Client,
  encodeFunctionData,
  getAddress,
  getContractAddress,
  type Hex,
  type Transport,
  type WalletClient,
  zeroAddress,
} from 'viem';
import {
  deployContract,
  getBytecode,
  getChainId,
  getTransactionCount,
  waitForTransactionReceipt,
} from 'viem/actions';
import type {
  AuditLimits,
  AuditParams,
  Deployment,
  GridParams,
  GridParamsOverrides,
  Network,
} from './deployment.ts';
import { ChainError, toChainError } from './errors.ts';
import { artifacts, facetNames, testAipgAbi } from './generated/abis.ts';
import { auditConfigToChain, auditLimitsToChain } from './internal/audit.ts';
import { writeAndWait } from './internal/write.ts';

/** IGridInit.InitArgs. */
export type InitArgs = Omit<GridParams, 'audit' | 'auditLimits'> & {
  token: Address;
  treasury: Address;
  audit: AuditParams;
  auditLimits: AuditLimits;
  randomnessSource: Address;
};

const HOUR = 60 * 60;
const DAY = 24 * HOUR;
const BASE_CHAIN_ID = 8453;
const BASE_SEPOLIA_CHAIN_ID = 84532;

/**
 * DiamondInit.reactionMargin: the least time, beyond every exit delay, anyone gets to react to an
 * announced change (two days on Base mainnet and Sepolia, a minute elsewhere).
 */
export function reactionMargin(chainId: number): number {
  return chainId === BASE_CHAIN_ID || chainId === BASE_SEPOLIA_CHAIN_ID ? 2 * DAY : 60;
}

/**
 * Deployment parameters per network: short delays on a devnet, a week (and two for upgrades and rule
 * changes) on Base. Audits: a devnet audits one receipt in ten, 30 s to commit and 30 s to reveal, with a
 * randomness two blocks after settlement; Base audits 2% with a day to commit and a day to reveal (its
 * randomness comes from a VRF adapter, which may take its own time: `randomnessDelay` only sets how many
 * blocks it waits before requesting). The audit limits bound every later config: a devnet may seat one
 * validator; Base needs at least three seats and a quorum of two, and half a day per window.
 */
export const defaultGridParams: Record<Network, GridParams & { audit: AuditParams }> = {
  devnet: {
    workerMinimumBond: parseAipg('1000'),
    validatorMinimumBond: parseAipg('10000'),
    unbondDelay: 30,
    depositWithdrawDelay: 30,
    cutDelay: 120,
    changeWindow: 120,
    workerBps: 8_000,
    validatorBps: 1_500,
    protocolBps: 500,
    confidentialPremiumBps: 2_500,
    audit: {
      auditRateBps: 1_000,
      validatorsPerAudit: 3,
      quorum: 2,
      commitWindow: 30,
      revealWindow: 30,
      randomnessDelay: 2,
      workerSlashAmount: parseAipg('100'),
      falseAttestationSlash: parseAipg('500'),
      finderShareBps: 5_000,
      passReward: parseAipg('0.01'),
    },
    auditLimits: {
      maxWorkerSlashBps: 2_000,
      maxFalseAttestationSlashBps: 1_000,
      maxFinderShareBps: 5_000,
      minValidatorsPerAudit: 1,
      minQuorum: 1,
      minCommitWindow: 5,
      minRevealWindow: 5,
    },
  },
  base: {
    workerMinimumBond: parseAipg('1000'),
    validatorMinimumBond: parseAipg('10000'),
    unbondDelay: 7 * DAY,
    depositWithdrawDelay: 7 * DAY,
    cutDelay: 14 * DAY,
    changeWindow: 7 * DAY,
    workerBps: 8_000,
    validatorBps: 1_500,
    protocolBps: 500,
    confidentialPremiumBps: 2_500,
    audit: {
      auditRateBps: 200,
      validatorsPerAudit: 3,
      quorum: 2,
      commitWindow: DAY,
      revealWindow: DAY,
      randomnessDelay: 3,
      workerSlashAmount: parseAipg('100'),
      falseAttestationSlash: parseAipg('500'),
      finderShareBps: 5_000,
      passReward: parseAipg('0.01'),
    },
    auditLimits: {
      maxWorkerSlashBps: 2_000,
      maxFalseAttestationSlashBps: 1_000,
      maxFinderShareBps: 5_000,
      minValidatorsPerAudit: 3,
      minQuorum: 2,
      minCommitWindow: 12 * HOUR,
      minRevealWindow: 12 * HOUR,
    },
  },
};

export type DeployGridClients = {
  walletClient: WalletClient<Transport, Chain, Account>;
  publicClient: Client<Transport, Chain | undefined>;
};

export type DeployGridParameters = {
  network: Network;
  /** AIPG token. Devnet: a fresh TestAIPG when unset. Base: the real AIPG when unset. */
  token?: Address;
  /** Receives protocol fees (default: the owner). */
  treasury?: Address;
  /**
   * Who runs the grid (default: the deploying account): the diamond's owner on a devnet; on Base the sole
   * proposer and executor of the GridTimelock that owns the diamond. Also the default treasury.
   */
  owner?: Address;
  /** Overrides of the network's `defaultGridParams` (`audit` fields one by one). */
  init?: GridParamsOverrides;
  /**
   * IRandomnessSource for audits. Devnet: a fresh FutureBlockRandomness when unset. Base: this or `vrf` is
   * required (a future block's hash is known to Base's sequencer in advance).
   */
  randomnessSource?: Address;
  /**
   * Deploy a VrfRandomness (Chainlink VRF v2.5) adapter for this grid as its randomness source, instead of
   * `randomnessSource`. It is deployed right before the diamond, for the diamond's predicted address; add
   * it as a consumer of subscription `subId` before anyone calls its `request`.
   */
  vrf?: VrfRandomnessParameters;
  /**
   * Base only: seconds the GridTimelock that owns the diamond holds every owner action. Must exceed
   * `unbondDelay` and `depositWithdrawDelay` (default: twice the longer of them).
   */
  timelockDelay?: number;
  /** Devnet only: TestAIPG minted to each account. */
  fund?: { accounts: readonly Address[]; amount: bigint };
};

export type DeployGridReturnType = Deployment;

/** VrfRandomness constructor settings (see contracts/src/randomness/VrfRandomness.sol). */
export type VrfRandomnessParameters = {
  /** The chain's VRF v2.5 coordinator. */
  coordinator: Address;
  /** The VRF key hash (gas lane). */
  keyHash: Hex;
  /** The funded subscription that pays every request. */
  subId: bigint;
  /** At least the coordinator's minimum. */
  requestConfirmations: number;
  /** Gas for the answer (`rawFulfillRandomWords` needs about 50,000). */
  callbackGasLimit: number;
  /** Pay in ETH (default) rather than LINK. */
  nativePayment?: boolean;
};

/**
 * The rules DiamondInit (and LibAudit.checkLimits / checkConfig) enforce, checked before anything is sent
 * so a bad parameter costs no gas and names itself.
 */
function validate(params: GridParams & { audit: AuditParams }, chainId: number): void {
  const fail = (reason: string): never => {
    throw new ChainError(`invalid deployment parameters: ${reason}`, { code: 'DEPLOY_FAILED' });
  };
  if (params.workerBps + params.validatorBps + params.protocolBps !== 10_000) {
    fail(
      `shares must sum to 10,000 bps (got ${params.workerBps + params.validatorBps + params.protocolBps})`,
    );
  }
  const margin = reactionMargin(chainId);
  if (
    params.cutDelay < params.unbondDelay + margin ||
    params.cutDelay < params.depositWithdrawDelay + margin
  ) {
    fail(
      `cutDelay must be at least unbondDelay and depositWithdrawDelay + ${margin} s (an exit window before any upgrade)`,
    );
  }
  if (params.changeWindow <= 0 || params.changeWindow > params.cutDelay) {
    fail('changeWindow must be positive and at most cutDelay');
  }
  if (params.workerMinimumBond <= 0n || params.validatorMinimumBond <= 0n)
    fail('minimum bonds must be positive');
  const l = params.auditLimits;
  if (l.maxWorkerSlashBps > 10_000) fail('auditLimits.maxWorkerSlashBps must be at most 10,000');
  if (l.maxFalseAttestationSlashBps > 10_000) {
    fail('auditLimits.maxFalseAttestationSlashBps must be at most 10,000');
  }
  if (l.maxFinderShareBps > 10_000) fail('auditLimits.maxFinderShareBps must be at most 10,000');
  if (l.minValidatorsPerAudit < 1) fail('auditLimits.minValidatorsPerAudit must be at least 1');
  if (l.minQuorum < 1) fail('auditLimits.minQuorum must be at least 1');
  if (l.minCommitWindow <= 0 || l.minRevealWindow <= 0) fail('auditLimits windows must be positive');
  const a = params.audit;
  if (a.auditRateBps > 10_000) fail('audit.auditRateBps must be at most 10,000');
  if (a.validatorsPerAudit < l.minValidatorsPerAudit || a.validatorsPerAudit > 255) {
    fail(`audit.validatorsPerAudit must be ${l.minValidatorsPerAudit}..255`);
  }
  if (a.quorum < l.minQuorum || a.quorum > a.validatorsPerAudit || a.quorum * 2 <= a.validatorsPerAudit) {
    fail(
      `audit.quorum must be a majority of validatorsPerAudit (quorum * 2 > k), at most k and at least ${l.minQuorum}`,
    );
  }
  if (a.commitWindow < l.minCommitWindow) fail(`audit.commitWindow must be at least ${l.minCommitWindow} s`);
  if (a.revealWindow < l.minRevealWindow) fail(`audit.revealWindow must be at least ${l.minRevealWindow} s`);
  if (a.finderShareBps > l.maxFinderShareBps) {
    fail(`audit.finderShareBps must be at most ${l.maxFinderShareBps}`);
  }
  if (a.workerSlashAmount < 0n || a.falseAttestationSlash < 0n || a.passReward < 0n) {
    fail('audit amounts must not be negative');
  }
  if (a.workerSlashAmount > (params.workerMinimumBond * BigInt(l.maxWorkerSlashBps)) / 10_000n) {
    fail(`audit.workerSlashAmount must be at most ${l.maxWorkerSlashBps} bps of workerMinimumBond`);
  }
  if (
    a.falseAttestationSlash >
    (params.validatorMinimumBond * BigInt(l.maxFalseAttestationSlashBps)) / 10_000n
  ) {
    fail(
      `audit.falseAttestationSlash must be at most ${l.maxFalseAttestationSlashBps} bps of validatorMinimumBond`,
    );
  }
}

async function deploy(
  clients: DeployGridClients,
  name: string,
  parameters: { abi: readonly unknown[]; bytecode: Hex; args?: readonly unknown[] },
): Promise<{ address: Address; blockNumber: bigint }> {
  try {
    const hash = await deployContract(clients.walletClient, {
      ...parameters,
      account: clients.walletClient.account,
      chain: clients.walletClient.chain,
    } as unknown as Parameters<typeof deployContract>[1]);
    const receipt = await waitForTransactionReceipt(clients.publicClient, { hash });
    if (receipt.status !== 'success' || !receipt.contractAddress) {
      throw new ChainError(`deploying ${name} reverted in transaction ${hash}`, { code: 'DEPLOY_FAILED' });
    }
    return { address: getAddress(receipt.contractAddress), blockNumber: receipt.blockNumber };
  } catch (error) {
    throw toChainError(error, `deploy ${name}`);
  }
}

/**
 * Deploys the whole Grid: on a devnet a TestAIPG first (minted to `fund.accounts`), then every facet,
 * DiamondInit, on Base a GridTimelock (the diamond's owner, run by `owner`), the randomness source (a
 * FutureBlockRandomness, or a VrfRandomness for `vrf`), and the GridDiamond with one cut of all facets
 * (selectors from the forge artifacts) and the init call.
 */
export async function deployGrid(
  clients: DeployGridClients,
  { network, token, treasury, owner, init, fund, randomnessSource, vrf, timelockDelay }: DeployGridParameters,
): Promise<DeployGridReturnType> {
  const deployer = clients.walletClient.account.address;
  const defaults = defaultGridParams[network];
  const params = {
    ...defaults,
    ...init,
    audit: { ...defaults.audit, ...init?.audit },
    auditLimits: { ...defaults.auditLimits, ...init?.auditLimits },
  };
  const chainId = await getChainId(clients.publicClient).catch((error: unknown) => {
    throw toChainError(error, 'deployGrid');
  });
  if (init?.cutDelay === undefined) {
    // A devnet on a Base chain id (tests) gets Base's two-day reaction margin: stretch the default to fit.
    const margin = reactionMargin(chainId);
    params.cutDelay = Math.max(
      params.cutDelay,
      params.unbondDelay + margin,
      params.depositWithdrawDelay + margin,
    );
  }
  validate(params, chainId);
  if (network === 'devnet' && chainId === BASE_CHAIN_ID) {
    throw new ChainError('refusing to deploy a devnet (test AIPG) on Base mainnet', {
      code: 'DEPLOY_FAILED',
    });
  }
  if (network === 'base' && fund) {
    throw new ChainError('fund is for devnets only: nobody can mint the real AIPG', {
      code: 'DEPLOY_FAILED',
    });
  }
  if (network === 'base' && !randomnessSource && !vrf) {
    throw new ChainError(
      'randomnessSource or vrf is required on Base: a VRF adapter (a future block hash is known to the sequencer)',
      { code: 'DEPLOY_FAILED' },
    );
  }
  if (randomnessSource && vrf) {
    throw new ChainError('give randomnessSource or vrf, not both', { code: 'DEPLOY_FAILED' });
  }
  // Base: the diamond's owner is a GridTimelock slower than every exit, so nobody is ever caught by an
  // owner action they could not leave before.
  const longestExit = Math.max(params.unbondDelay, params.depositWithdrawDelay);
  if (network !== 'base' && timelockDelay !== undefined) {
    throw new ChainError('timelockDelay is for Base only: a devnet is owned by its owner directly', {
      code: 'DEPLOY_FAILED',
    });
  }
  const ownerDelay = timelockDelay ?? 2 * longestExit;
  if (network === 'base' && (!Number.isSafeInteger(ownerDelay) || ownerDelay <= longestExit)) {
    throw new ChainError(
      `invalid deployment parameters: timelockDelay must exceed unbondDelay and depositWithdrawDelay (${longestExit} s)`,
      { code: 'DEPLOY_FAILED' },
    );
  }

  let tokenAddress: Address;
  if (network === 'devnet' && !token) {
    tokenAddress = (await deploy(clients, 'TestAIPG', { ...artifacts.TestAIPG, args: [deployer] })).address;
  } else {
    tokenAddress = token ?? AIPG_BASE_ADDRESS;
    const code = await getBytecode(clients.publicClient, { address: tokenAddress }).catch(
      (error: unknown) => {
        throw toChainError(error, 'deployGrid');
      },
    );
    if (!code || code === '0x') {
      throw new ChainError(`no token contract at ${tokenAddress} on chain ${chainId}`, {
        code: 'DEPLOY_FAILED',
      });
    }
  }

  const facets: Record<string, Address> = {};
  const cut: { facetAddress: Address; action: number; functionSelectors: Hex[] }[] = [];
  for (const name of facetNames) {
    const artifact = artifacts[name];
    const { address } = await deploy(clients, name, artifact);
    facets[name] = address;
    cut.push({
      facetAddress: address,
      action: 0,
      functionSelectors: Object.values(artifact.selectors) as Hex[],
    });
  }
  const diamondInit = await deploy(clients, 'DiamondInit', artifacts.DiamondInit);
  // `owner` runs the grid: directly on a devnet, through the timelock (its only proposer and executor,
  // with no admin besides the timelock itself) on Base.
  const operator = owner ?? deployer;
  const timelock =
    network === 'base'
      ? (
          await deploy(clients, 'GridTimelock', {
            ...artifacts.GridTimelock,
            args: [
              BigInt(ownerDelay),
              [operator],
              [operator],
              zeroAddress,
              [BigInt(params.unbondDelay), BigInt(params.depositWithdrawDelay)],
            ],
          })
        ).address
      : undefined;

  let source: Address;
  let predictedGrid: Address | undefined;
  if (vrf) {
    // The adapter reads batches from the diamond, and the diamond's init needs the adapter: deploy the
    // adapter first, for the address the diamond gets from the deployer's next nonce but one.
    const nonce = await getTransactionCount(clients.publicClient, {
      address: deployer,
      blockTag: 'pending',
    }).catch((error: unknown) => {
      throw toChainError(error, 'deployGrid');
    });
    predictedGrid = getContractAddress({ from: deployer, nonce: BigInt(nonce + 1) });
    source = (
      await deploy(clients, 'VrfRandomness', {
        ...artifacts.VrfRandomness,
        args: [
          vrf.coordinator,
          predictedGrid,
          vrf.keyHash,
          vrf.subId,
          vrf.requestConfirmations,
          vrf.callbackGasLimit,
          vrf.nativePayment ?? true,
        ],
      })
    ).address;
  } else {
    source =
      randomnessSource ??
      (await deploy(clients, 'FutureBlockRandomness', artifacts.FutureBlockRandomness)).address;
  }

  const gridOwner = timelock ?? operator;
  const gridTreasury = treasury ?? operator;
  const args: InitArgs = { ...params, token: tokenAddress, treasury: gridTreasury, randomnessSource: source };
  const initCalldata = encodeFunctionData({
    abi: artifacts.DiamondInit.abi,
    functionName: 'init',
    args: [
      {
        ...args,
        unbondDelay: BigInt(args.unbondDelay),
        depositWithdrawDelay: BigInt(args.depositWithdrawDelay),
        cutDelay: BigInt(args.cutDelay),
        changeWindow: BigInt(args.changeWindow),
        audit: auditConfigToChain(args.audit),
        auditLimits: auditLimitsToChain(args.auditLimits),
      },
    ],
  });
  const diamond = await deploy(clients, 'GridDiamond', {
    ...artifacts.GridDiamond,
    args: [gridOwner, cut, diamondInit.address, initCalldata],
  });
  if (predictedGrid && diamond.address !== predictedGrid) {
    throw new ChainError(
      `the diamond landed at ${diamond.address}, not at ${predictedGrid} where its VrfRandomness looks (was another transaction sent from ${deployer} meanwhile?)`,
      { code: 'DEPLOY_FAILED' },
    );
  }

  if (fund) {
    for (const account of fund.accounts) {
      await writeAndWait(clients.walletClient, 'mint test AIPG', {
        address: tokenAddress,
        abi: testAipgAbi,
        functionName: 'mint',
        args: [account, fund.amount],
      });
    }
  }

  return {
    network,
    chainId,
    grid: diamond.address,
    token: tokenAddress,
    deployBlock: Number(diamond.blockNumber),
    owner: gridOwner,
    treasury: gridTreasury,
    facets,
    params,
    randomnessSource: source,
    ...(timelock ? { timelock } : {}),
  };
}
