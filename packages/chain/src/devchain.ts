import { parseAipg } from '@aipg/core';
import { privateKeyToAccount } from 'viem/accounts';
import {
  anvilTestAccounts,
  type StartAnvilParameters,
  type StartAnvilReturnType,
  startAnvil,
} from './anvil.ts';
import { createGridClients } from './client.ts';
import { deployGrid } from './deploy.ts';
import type { Deployment, GridParamsOverrides } from './deployment.ts';

export type StartDevChainParameters = Pick<
  StartAnvilParameters,
  'port' | 'chainId' | 'blockTime' | 'silent'
> & {
  /** Test AIPG minted to each of anvil's 10 test accounts (default 1,000,000 AIPG). */
  fundAmount?: bigint;
  /** Overrides of the devnet deployment parameters (delays, minimums, shares, `audit` fields). */
  init?: GridParamsOverrides;
};

export type StartDevChainReturnType = {
  anvil: StartAnvilReturnType;
  deployment: Deployment;
  /** anvil's PUBLIC test accounts, all funded with test AIPG (account 0 deployed and owns the Grid). */
  accounts: typeof anvilTestAccounts;
  fundAmount: bigint;
  /** Stops anvil. */
  stop: () => Promise<void>;
};

/**
 * A local chain with the whole Grid on it: anvil, a devnet deployment by test account 0, and test
 * AIPG minted to all ten test accounts. For `aipg chain up`, `aipg devnet` and tests.
 */
export async function startDevChain(
  parameters: StartDevChainParameters = {},
): Promise<StartDevChainReturnType> {
  const { fundAmount = parseAipg('1000000'), init, ...anvilParameters } = parameters;
  const anvil = await startAnvil({ ...anvilParameters, accounts: anvilTestAccounts.length });
  try {
    const { publicClient, walletClient } = createGridClients({
      rpcUrl: anvil.rpcUrl,
      chainId: anvil.chainId,
      account: privateKeyToAccount(anvilTestAccounts[0].privateKey),
    });
    const deployment = await deployGrid(
      { walletClient: walletClient!, publicClient },
      {
        network: 'devnet',
        init,
        fund: { accounts: anvilTestAccounts.map((a) => a.address), amount: fundAmount },
      },
    );
    return { anvil, deployment, accounts: anvilTestAccounts, fundAmount, stop: () => anvil.stop() };
  } catch (error) {
    await anvil.stop();
    throw error;
  }
}
