import { type Address, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import type { BondRole } from '../internal/role.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type RequestUnbondParameters = {
  grid: Address;
  role: BondRole;
  /** AIPG wei of the active bond to unbond; what stays must be 0 or at least the minimum. */
  amount: bigint;
};

export type RequestUnbondReturnType = TransactionResult & {
  /** Unix seconds (chain time) from which `withdrawBond` works. */
  readyAt: number;
};

/** `NotBonded`, `InsufficientBond`, `BondTooLow` (remainder), `ZeroAmount`. */
export type RequestUnbondErrorType = ChainError;

/** Moves `amount` of the active bond to unbonding and (re)starts the unbond delay. */
export async function requestUnbond(
  client: WriteClient,
  { grid, role, amount }: RequestUnbondParameters,
): Promise<RequestUnbondReturnType> {
  const receipt = await writeAndWait(client, `unbond ${role}`, {
    address: grid,
    abi: gridAbi,
    functionName: role === 'worker' ? 'requestWorkerUnbond' : 'requestValidatorUnbond',
    args: [amount],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: receipt.logs, eventName: 'UnbondRequested' });
  return {
    hash: receipt.transactionHash,
    blockNumber: receipt.blockNumber,
    readyAt: Number(event?.args.readyAt ?? 0n),
  };
}
