import { type Address, type Hex, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type SettleBatchParameters = {
  grid: Address;
  /** Merkle root of the batch's receipts (`buildReceiptTree(receipts).root`). */
  root: Hex;
  /** Number of receipts under `root`. */
  receiptCount: number;
  /** Per-payer debits (AIPG wei); their sum must equal the credits' sum. */
  debits: readonly { payer: Address; amount: bigint }[];
  /** Per-worker gross (AIPG wei), by bond owner. */
  credits: readonly { worker: Address; gross: bigint }[];
};

export type SettleBatchReturnType = TransactionResult & {
  batchId: bigint;
};

/**
 * `ZeroRoot`, `EmptyBatch`, `BatchAlreadySettled`, `SumMismatch`, `GatewayCapExceeded`,
 * `InsufficientDeposit`, `UnknownWorker`, `EnforcedPause`.
 */
export type SettleBatchErrorType = ChainError;

/** Settles one batch of receipts as the client account (the gateway). */
export async function settleBatch(
  client: WriteClient,
  { grid, root, receiptCount, debits, credits }: SettleBatchParameters,
): Promise<SettleBatchReturnType> {
  const receipt = await writeAndWait(client, 'settle', {
    address: grid,
    abi: gridAbi,
    functionName: 'settle',
    args: [root, receiptCount, [...debits], [...credits]],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: receipt.logs, eventName: 'BatchSettled' });
  return {
    hash: receipt.transactionHash,
    blockNumber: receipt.blockNumber,
    batchId: event?.args.batchId ?? 0n,
  };
}
