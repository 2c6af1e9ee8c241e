import type { Address } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type SetWorkerAuditRateParameters = {
  grid: Address;
  /** The worker's bond owner. */
  worker: Address;
  /** Its own audit rate in bps (10,000 = every receipt); the effective rate is max(default, own). */
  rateBps: number;
};

export type SetWorkerAuditRateReturnType = TransactionResult;

/** `NotOwner`, `RateCanOnlyRise`, `InvalidAuditConfig` (above 10,000), `ZeroAddress`. */
export type SetWorkerAuditRateErrorType = ChainError;

/** Raises one worker's audit rate for the batches fixed from now on. Owner only; it can only rise. */
export async function setWorkerAuditRate(
  client: WriteClient,
  { grid, worker, rateBps }: SetWorkerAuditRateParameters,
): Promise<SetWorkerAuditRateReturnType> {
  const receipt = await writeAndWait(client, 'setWorkerAuditRate', {
    address: grid,
    abi: gridAbi,
    functionName: 'setWorkerAuditRate',
    args: [worker, rateBps],
  });
  return { hash: receipt.transactionHash, blockNumber: receipt.blockNumber };
}
