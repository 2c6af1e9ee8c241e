import type { Address } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type ApproveGatewayParameters = {
  grid: Address;
  /** The gateway's settling address. */
  gateway: Address;
  /** AIPG wei the gateway may debit in total (replaces the previous cap; 0 revokes; maxUint256 is unlimited). */
  cap: bigint;
};

export type ApproveGatewayReturnType = TransactionResult;

export type ApproveGatewayErrorType = ChainError;

/** Lets a gateway settle the client account's requests against its deposit, up to `cap`. */
export async function approveGateway(
  client: WriteClient,
  { grid, gateway, cap }: ApproveGatewayParameters,
): Promise<ApproveGatewayReturnType> {
  const receipt = await writeAndWait(client, 'approveGateway', {
    address: grid,
    abi: gridAbi,
    functionName: 'approveGateway',
    args: [gateway, cap],
  });
  return { hash: receipt.transactionHash, blockNumber: receipt.blockNumber };
}
