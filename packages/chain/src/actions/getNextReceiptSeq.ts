import type { Address } from 'viem';
import { readContract } from 'viem/actions';
import type { ReadClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { wrapRead } from '../internal/write.ts';

export type GetNextReceiptSeqParameters = {
  grid: Address;
  gateway: Address;
  /** Read at this block (default: latest). */
  blockNumber?: bigint | undefined;
};

/**
 * The receipt number `gateway`'s next batch must start at (`settle`'s `firstSeq`): 0 before its first
 * batch, then the end of its last settled range.
 */
export type GetNextReceiptSeqReturnType = bigint;

export type GetNextReceiptSeqErrorType = ChainError;

export async function getNextReceiptSeq(
  client: ReadClient,
  { grid, gateway, blockNumber }: GetNextReceiptSeqParameters,
): Promise<GetNextReceiptSeqReturnType> {
  return wrapRead('getNextReceiptSeq', () =>
    readContract(client, {
      address: grid,
      abi: gridAbi,
      functionName: 'nextReceiptSeq',
      args: [gateway],
      ...(blockNumber !== undefined ? { blockNumber } : {}),
    }),
  );
}
