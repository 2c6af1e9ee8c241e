import { type Address, type Hex, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type SettleBatchParameters = {
  grid: Address;
  /** Merkle root of the batch's receipts (`buildReceiptTree(receipts).root`). */
  root: Hex;
  /**
   * The first receipt number of the batch's range: must be `getNextReceiptSeq(gateway)` (else
   * `SequenceMismatch`, which means an earlier batch landed that the caller does not know of).
   */
  firstSeq: bigint;
  /**
   * Length of the range of receipt numbers the batch covers, `[firstSeq, firstSeq + receiptCount)`:
   * numbers of jobs that failed without a receipt lie inside it with no leaf under `root`.
   */
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
 * `ZeroRoot`, `EmptyBatch` (no range, no debit, or a zero total), `BatchAlreadySettled`, `SequenceMismatch`,
 * `SumMismatch`, `GatewayCapExceeded`, `InsufficientDeposit`, `UnknownWorker`, `EnforcedPause`.
 */
export type SettleBatchErrorType = ChainError;

/** Settles one batch of receipts as the client account (the gateway). */
export async function settleBatch(
  client: WriteClient,
  { grid, root, firstSeq, receiptCount, debits, credits }: SettleBatchParameters,
): Promise<SettleBatchReturnType> {
  const receipt = await writeAndWait(client, 'settle', {
    address: grid,
    abi: gridAbi,
    functionName: 'settle',
    args: [root, firstSeq, receiptCount, [...debits], [...credits]],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: receipt.logs, eventName: 'BatchSettled' });
  return {
    hash: receipt.transactionHash,
    blockNumber: receipt.blockNumber,
    batchId: event?.args.batchId ?? 0n,
  };
}
