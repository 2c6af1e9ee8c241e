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
  /** Read at this block (default: latest). Assignments follow live stakes. */
  blockNumber?: bigint | undefined;
};

/** Validator bond owners, in draw order; empty until the batch's randomness is fixed. */
export type GetAssignedValidatorsReturnType = readonly Address[];

export type GetAssignedValidatorsErrorType = ChainError;

/**
 * The validators assigned to audit a receipt: min(k, active validators) drawn by stake weight. They follow
 * live stakes, exactly as `attest` checks them in the same block.
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
