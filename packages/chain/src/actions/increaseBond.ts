import type { Address } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import type { BondRole } from '../internal/role.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type IncreaseBondParameters = {
  grid: Address;
  role: BondRole;
  /** AIPG wei to add. The Grid must be approved for it. */
  amount: bigint;
};

export type IncreaseBondReturnType = TransactionResult;

/** `NotBonded`, `ZeroAmount`, `EnforcedPause`, `ERC20InsufficientAllowance`… */
export type IncreaseBondErrorType = ChainError;

/** Adds to the client account's existing bond. */
export async function increaseBond(
  client: WriteClient,
  { grid, role, amount }: IncreaseBondParameters,
): Promise<IncreaseBondReturnType> {
  const receipt = await writeAndWait(client, `increase ${role} bond`, {
    address: grid,
    abi: gridAbi,
    functionName: role === 'worker' ? 'increaseWorkerBond' : 'increaseValidatorBond',
    args: [amount],
  });
  return { hash: receipt.transactionHash, blockNumber: receipt.blockNumber };
}
