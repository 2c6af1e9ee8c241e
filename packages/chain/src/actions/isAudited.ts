import { type Receipt, receiptLeafHash } from '@aipg/core';
import type { Address, Hex } from 'viem';
import { readContract } from 'viem/actions';
import type { ReadClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { wrapRead } from '../internal/write.ts';

export type IsAuditedParameters = { grid: Address; batchId: bigint } & (
  | { receipt: Receipt }
  | {
      /** The receipt's leaf (`receiptLeafHash`). */
      leaf: Hex;
      /** The receipt's worker (bond owner): its own audit rate may be higher than the default. */
      worker: Address;
    }
);

export type IsAuditedReturnType = boolean;

export type IsAuditedErrorType = ChainError;

/**
 * Whether a receipt of a batch is audited (false until the batch's randomness is fixed). Confidential
 * receipts are drawn like any other (their validators check the attestation instead of re-running them).
 */
export async function isAudited(client: ReadClient, parameters: IsAuditedParameters): Promise<boolean> {
  const { grid, batchId } = parameters;
  const [leaf, worker] =
    'receipt' in parameters
      ? [receiptLeafHash(parameters.receipt), parameters.receipt.worker]
      : [parameters.leaf, parameters.worker];
  return wrapRead('isAudited', () =>
    readContract(client, {
      address: grid,
      abi: gridAbi,
      functionName: 'isAudited',
      args: [batchId, leaf, worker],
    }),
  );
}
