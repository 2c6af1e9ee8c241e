import type { Address } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import type { BondRole } from '../internal/role.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type CancelUnbondParameters = { grid: Address; role: BondRole };

export type CancelUnbondReturnType = TransactionResult;

/** `NothingUnbonding`. */
export type CancelUnbondErrorType = ChainError;

/** Moves everything unbonding back to the client account's active bond. */
export async function cancelUnbond(
  client: WriteClient,
  { grid, role }: CancelUnbondParameters,
): Promise<CancelUnbondReturnType> {
  const receipt = await writeAndWait(client, `cancel ${role} unbond`, {
    address: grid,
    abi: gridAbi,
    functionName: role === 'worker' ? 'cancelWorkerUnbond' : 'cancelValidatorUnbond',
    args: [],
  });
  return { hash: receipt.transactionHash, blockNumber: receipt.blockNumber };
}
