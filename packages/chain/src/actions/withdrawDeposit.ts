import { type Address, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type WithdrawDepositParameters = { grid: Address };

export type WithdrawDepositReturnType = TransactionResult & {
  /** AIPG wei sent (less than requested, even 0, when settlements spent the deposit meanwhile). */
  amount: bigint;
};

/** `NothingToWithdraw`, `WithdrawalNotReady`. */
export type WithdrawDepositErrorType = ChainError;

/** Withdraws the requested part of the client account's deposit once the delay has passed. Works while paused. */
export async function withdrawDeposit(
  client: WriteClient,
  { grid }: WithdrawDepositParameters,
): Promise<WithdrawDepositReturnType> {
  const receipt = await writeAndWait(client, 'withdrawDeposit', {
    address: grid,
    abi: gridAbi,
    functionName: 'withdrawDeposit',
    args: [],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: receipt.logs, eventName: 'DepositWithdrawn' });
  return {
    hash: receipt.transactionHash,
    blockNumber: receipt.blockNumber,
    amount: event?.args.amount ?? 0n,
  };
}
