import { AIPG_BASE_ADDRESS, parseAipg } from '@aipg/core';
import {
  type Account,
  type Address,
  type Chain,
  type Client,
  encodeFunctionData,
  getAddress,
  type Hex,
  type Transport,
  type WalletClient,
} from 'viem';
import { deployContract, getBytecode, getChainId, waitForTransactionReceipt } from 'viem/actions';
import type { AuditParams, Deployment, GridParams, GridParamsOverrides, Network } from './deployment.ts';
import { ChainError, toChainError } from './errors.ts';
import { artifacts, facetNames, testAipgAbi } from './generated/abis.ts';
import { auditConfigToChain } from './internal/audit.ts';
import { writeAndWait } from './internal/write.ts';

/** IGridInit.InitArgs. */
export type InitArgs = Omit<GridParams, 'audit'> & {
  token: Address;
  treasury: Address;
  audit: AuditParams;
  randomnessSource: Address;
};

const DAY = 24 * 60 * 60;
const BASE_CHAIN_ID = 8453;

/**
 * Deployment parameters per network: short delays on a devnet, a week (and two for upgrades) on Base.
 * Audits: a devnet audits one receipt in ten with a one-minute window and a randomness two blocks after
 * settlement; Base audits 2% with a day to attest (its randomness comes from a VRF adapter, which may take
 * its own time: `randomnessDelay` only sets how many blocks it waits before requesting).
 */
export const defaultGridParams: Record<Network, GridParams & { audit: AuditParams }> = {
  devnet: {
    workerMinimumBond: parseAipg('1000'),
    validatorMinimumBond: parseAipg('10000'),
    unbondDelay: 30,
    depositWithdrawDelay: 30,
    cutDelay: 120,
    workerBps: 8_000,
    validatorBps: 1_500,
    protocolBps: 500,
    confidentialPremiumBps: 2_500,
    audit: {
      auditRateBps: 1_000,
      validatorsPerAudit: 3,
      quorum: 2,
      attestWindow: 60,
      randomnessDelay: 2,
      workerSlashAmount: parseAipg('100'),
      falseAttestationSlash: parseAipg('500'),
      finderShareBps: 5_000,
      passReward: parseAipg('0.01'),
    },
  },
  base: {
    workerMinimumBond: parseAipg('1000'),
    validatorMinimumBond: parseAipg('10000'),
    unbondDelay: 7 * DAY,
    depositWithdrawDelay: 7 * DAY,
    cutDelay: 14 * DAY,
    workerBps: 8_000,
    validatorBps: 1_500,
    protocolBps: 500,
    confidentialPremiumBps: 2_500,
    audit: {
      auditRateBps: 200,
      validatorsPerAudit: 3,
      quorum: 2,
      attestWindow: DAY,
      randomnessDelay: 3,
      workerSlashAmount: parseAipg('100'),
      falseAttestationSlash: parseAipg('500'),
      finderShareBps: 5_000,
      passReward: parseAipg('0.01'),
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
  /** The diamond's owner (default: the deploying account). */
  owner?: Address;
  /** Overrides of the network's `defaultGridParams` (`audit` fields one by one). */
  init?: GridParamsOverrides;
  /**
   * IRandomnessSource for audits. Devnet: a fresh FutureBlockRandomness when unset. Base: required (a VRF
   * adapter: a future block's hash is known to Base's sequencer in advance).
   */
  randomnessSource?: Address;
  /** Devnet only: TestAIPG minted to each account. */
  fund?: { accounts: readonly Address[]; amount: bigint };
};

export type DeployGridReturnType = Deployment;

function validate(params: GridParams & { audit: AuditParams }): void {
  const fail = (reason: string): never => {
    throw new ChainError(`invalid deployment parameters: ${reason}`, { code: 'DEPLOY_FAILED' });
  };
  if (params.workerBps + params.validatorBps + params.protocolBps !== 10_000) {
    fail(
      `shares must sum to 10,000 bps (got ${params.workerBps + params.validatorBps + params.protocolBps})`,
    );
  }
  if (params.cutDelay <= params.unbondDelay || params.cutDelay <= params.depositWithdrawDelay) {
    fail('cutDelay must exceed unbondDelay and depositWithdrawDelay (an exit window before any upgrade)');
  }
  if (params.workerMinimumBond <= 0n || params.validatorMinimumBond <= 0n)
    fail('minimum bonds must be positive');
  // The same rules as DiamondInit (LibAudit.checkConfig), caught before anything is sent.
  const a = params.audit;
  if (a.auditRateBps > 10_000) fail('audit.auditRateBps must be at most 10,000');
  if (a.validatorsPerAudit < 1 || a.validatorsPerAudit > 255) fail('audit.validatorsPerAudit must be 1..255');
  if (a.quorum < 1 || a.quorum > a.validatorsPerAudit) fail('audit.quorum must be 1..validatorsPerAudit');
  if (a.attestWindow <= 0) fail('audit.attestWindow must be positive');
  if (a.finderShareBps > 10_000) fail('audit.finderShareBps must be at most 10,000');
  if (a.workerSlashAmount < 0n || a.falseAttestationSlash < 0n || a.passReward < 0n) {
    fail('audit amounts must not be negative');
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
 * DiamondInit, and the GridDiamond with one cut of all facets (selectors from the forge artifacts) and
 * the init call.
 */
export async function deployGrid(
  clients: DeployGridClients,
  { network, token, treasury, owner, init, fund, randomnessSource }: DeployGridParameters,
): Promise<DeployGridReturnType> {
  const deployer = clients.walletClient.account.address;
  const defaults = defaultGridParams[network];
  const params = { ...defaults, ...init, audit: { ...defaults.audit, ...init?.audit } };
  validate(params);
  const chainId = await getChainId(clients.publicClient).catch((error: unknown) => {
    throw toChainError(error, 'deployGrid');
  });
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
  if (network === 'base' && !randomnessSource) {
    throw new ChainError(
      'randomnessSource is required on Base: a VRF adapter (a future block hash is known to the sequencer)',
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
  const source =
    randomnessSource ??
    (await deploy(clients, 'FutureBlockRandomness', artifacts.FutureBlockRandomness)).address;

  const gridOwner = owner ?? deployer;
  const gridTreasury = treasury ?? gridOwner;
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
        audit: auditConfigToChain(args.audit),
      },
    ],
  });
  const diamond = await deploy(clients, 'GridDiamond', {
    ...artifacts.GridDiamond,
    args: [gridOwner, cut, diamondInit.address, initCalldata],
  });

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
  };
}
