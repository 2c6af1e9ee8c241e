import { type Address, zeroAddress } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import type { BondRole } from '../internal/role.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type SetOperatorParameters = {
  grid: Address;
  role: BondRole;
  /** The new hot key; undefined or the zero address makes the owner its own operator. */
  operator: Address | undefined;
};

export type SetOperatorReturnType = TransactionResult;

/** `NotBonded`, `OperatorTaken`. */
export type SetOperatorErrorType = ChainError;

/** Names the operator key that signs for the client account's bond. */
export async function setOperator(
  client: WriteClient,
  { grid, role, operator }: SetOperatorParameters,
): Promise<SetOperatorReturnType> {
  const receipt = await writeAndWait(client, `set ${role} operator`, {
    address: grid,
    abi: gridAbi,
    functionName: role === 'worker' ? 'setWorkerOperator' : 'setValidatorOperator',
    args: [operator ?? zeroAddress],
  });
  return { hash: receipt.transactionHash, blockNumber: receipt.blockNumber };
}
