import { type Address, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import type { BondRole } from '../internal/role.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type WithdrawBondParameters = { grid: Address; role: BondRole };

export type WithdrawBondReturnType = TransactionResult & {
  /** AIPG wei sent to the bond's owner. */
  amount: bigint;
};

/** `NothingUnbonding`, `UnbondNotReady`. */
export type WithdrawBondErrorType = ChainError;

/** Sends everything unbonding back to the client account once the unbond delay has passed. Works while paused. */
export async function withdrawBond(
  client: WriteClient,
  { grid, role }: WithdrawBondParameters,
): Promise<WithdrawBondReturnType> {
  const receipt = await writeAndWait(client, `withdraw ${role} bond`, {
    address: grid,
    abi: gridAbi,
    functionName: role === 'worker' ? 'withdrawWorkerBond' : 'withdrawValidatorBond',
    args: [],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: receipt.logs, eventName: 'BondWithdrawn' });
  return {
    hash: receipt.transactionHash,
    blockNumber: receipt.blockNumber,
    amount: event?.args.amount ?? 0n,
  };
}
