import type { Address, Hex } from 'viem';
import { readContract } from 'viem/actions';
import type { ReadClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { wrapRead } from '../internal/write.ts';

export type GetAssignedValidatorsParameters = {
  grid: Address;
  batchId: bigint;
  /** The receipt's leaf (`receiptLeafHash`). */
  leaf: Hex;
  /** Read at this block (default: latest). */
  blockNumber?: bigint | undefined;
};

/** Validator bond owners, in draw order; empty until the batch's randomness is fixed. */
export type GetAssignedValidatorsReturnType = readonly Address[];

export type GetAssignedValidatorsErrorType = ChainError;

/**
 * The validators seated on a receipt's audit: min(k, validators) drawn by stake weight from the stake
 * checkpoints at the block before the batch's settlement, so the answer never changes once the randomness
 * is fixed (the first `commitVote` stores exactly these seats).
 */
export async function getAssignedValidators(
  client: ReadClient,
  { grid, batchId, leaf, blockNumber }: GetAssignedValidatorsParameters,
): Promise<GetAssignedValidatorsReturnType> {
  return wrapRead('getAssignedValidators', () =>
    readContract(client, {
      address: grid,
      abi: gridAbi,
      functionName: 'assignedValidators',
      args: [batchId, leaf],
      ...(blockNumber === undefined ? {} : { blockNumber }),
    }),
  );
}
