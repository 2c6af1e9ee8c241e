import { type Address, zeroAddress } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import type { BondRole } from '../internal/role.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type BondParameters = {
  grid: Address;
  role: BondRole;
  /** AIPG wei; at least the role's minimum. The Grid must be approved for it (`approveToken`). */
  amount: bigint;
  /** Hot key that signs receipts / attestations (default: the owner itself). */
  operator?: Address | undefined;
};

export type BondReturnType = TransactionResult;

/** `BondTooLow`, `AlreadyBonded`, `OperatorTaken`, `EnforcedPause`, `ERC20InsufficientAllowance`… */
export type BondErrorType = ChainError;

/** Posts a first bond for the client account as a worker or a validator. */
export async function bond(
  client: WriteClient,
  { grid, role, amount, operator }: BondParameters,
): Promise<BondReturnType> {
  const receipt = await writeAndWait(client, `bond ${role}`, {
    address: grid,
    abi: gridAbi,
    functionName: role === 'worker' ? 'bondWorker' : 'bondValidator',
    args: [amount, operator ?? zeroAddress],
  });
  return { hash: receipt.transactionHash, blockNumber: receipt.blockNumber };
}
