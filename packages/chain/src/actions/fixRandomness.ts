import { type Address, type Hex, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type FixRandomnessParameters = {
  grid: Address;
  /** A settled batch. */
  batchId: bigint;
};

export type FixRandomnessReturnType = TransactionResult & {
  /** R: which receipts are audited, and by whom. */
  randomness: Hex;
  /** Unix seconds: commits are accepted while `block.timestamp <= deadline`; reveals after it. */
  deadline: number;
};

/** `UnknownBatch`, `RandomnessAlreadyFixed`, `RandomnessNotReady` (too early: mine or wait for blocks). */
export type FixRandomnessErrorType = ChainError;

/**
 * Fixes a settled batch's audit randomness once its source is ready (on a devnet, `randomnessDelay` blocks
 * after the settlement block) and opens the commit window. Anyone may call it, once per batch.
 */
export async function fixRandomness(
  client: WriteClient,
  { grid, batchId }: FixRandomnessParameters,
): Promise<FixRandomnessReturnType> {
  const receipt = await writeAndWait(client, 'fixRandomness', {
    address: grid,
    abi: gridAbi,
    functionName: 'fixRandomness',
    args: [batchId],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: receipt.logs, eventName: 'AuditRandomnessFixed' });
  if (!event) {
    throw new ChainError('fixRandomness: no AuditRandomnessFixed event in the receipt', {
      code: 'RPC_ERROR',
    });
  }
  return {
    hash: receipt.transactionHash,
    blockNumber: receipt.blockNumber,
    randomness: event.args.randomness,
    deadline: Number(event.args.deadline),
  };
}
