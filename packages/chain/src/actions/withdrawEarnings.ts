import { type Address, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type WithdrawEarningsParameters = { grid: Address };

export type WithdrawEarningsReturnType = TransactionResult & {
  /** AIPG wei sent to the client account. */
  amount: bigint;
};

/** `NothingToWithdraw`. */
export type WithdrawEarningsErrorType = ChainError;

/** Sends the client account's settled earnings to it. Works while paused. */
export async function withdrawEarnings(
  client: WriteClient,
  { grid }: WithdrawEarningsParameters,
): Promise<WithdrawEarningsReturnType> {
  const receipt = await writeAndWait(client, 'withdrawEarnings', {
    address: grid,
    abi: gridAbi,
    functionName: 'withdrawEarnings',
    args: [],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: receipt.logs, eventName: 'EarningsWithdrawn' });
  return {
    hash: receipt.transactionHash,
    blockNumber: receipt.blockNumber,
    amount: event?.args.amount ?? 0n,
  };
}
