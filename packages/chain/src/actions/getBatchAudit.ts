import { type Address, type Hex, zeroHash } from 'viem';
import { readContract } from 'viem/actions';
import type { ReadClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { wrapRead } from '../internal/write.ts';

export type GetBatchAuditParameters = { grid: Address; batchId: bigint };

export type GetBatchAuditReturnType = {
  /** Whether `fixRandomness` ran for this batch. */
  fixed: boolean;
  /** R (zero until fixed). */
  randomness: Hex;
  /** Unix seconds of `fixRandomness` (0 until fixed). */
  fixedAt: number;
  /** Unix seconds: commits are accepted while `block.timestamp <= deadline` (0 until fixed). */
  deadline: number;
  /** Unix seconds: reveals are accepted after `deadline` while `block.timestamp <= revealDeadline`. */
  revealDeadline: number;
};

export type GetBatchAuditErrorType = ChainError;

/** A batch's audit randomness and its commit and reveal windows. */
export async function getBatchAudit(
  client: ReadClient,
  { grid, batchId }: GetBatchAuditParameters,
): Promise<GetBatchAuditReturnType> {
  const b = await wrapRead('getBatchAudit', () =>
    readContract(client, { address: grid, abi: gridAbi, functionName: 'batchAudit', args: [batchId] }),
  );
  return {
    fixed: b.randomness !== zeroHash,
    randomness: b.randomness,
    fixedAt: Number(b.fixedAt),
    deadline: Number(b.deadline),
    revealDeadline: Number(b.revealDeadline),
  };
}
