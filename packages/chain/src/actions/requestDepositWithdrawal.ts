import { type Address, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type RequestDepositWithdrawalParameters = {
  grid: Address;
  /** AIPG wei, at most the deposit. Replaces an earlier request and restarts the delay. */
  amount: bigint;
};

export type RequestDepositWithdrawalReturnType = TransactionResult & {
  /** Unix seconds (chain time) from which `withdrawDeposit` works. */
  readyAt: number;
};

/** `ZeroAmount`, `InsufficientDeposit`. */
export type RequestDepositWithdrawalErrorType = ChainError;

/** Starts the withdrawal delay on part of the client account's deposit. */
export async function requestDepositWithdrawal(
  client: WriteClient,
  { grid, amount }: RequestDepositWithdrawalParameters,
): Promise<RequestDepositWithdrawalReturnType> {
  const receipt = await writeAndWait(client, 'requestDepositWithdrawal', {
    address: grid,
    abi: gridAbi,
    functionName: 'requestDepositWithdrawal',
    args: [amount],
  });
  const [event] = parseEventLogs({
    abi: gridAbi,
    logs: receipt.logs,
    eventName: 'DepositWithdrawalRequested',
  });
  return {
    hash: receipt.transactionHash,
    blockNumber: receipt.blockNumber,
    readyAt: Number(event?.args.readyAt ?? 0n),
  };
}
