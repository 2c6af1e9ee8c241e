import { type Address, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type IncreaseGatewayCapParameters = {
  grid: Address;
  /** The gateway's settling address. */
  gateway: Address;
  /** AIPG wei added to the cap (`maxUint256` makes it unlimited). */
  amount: bigint;
};

export type IncreaseGatewayCapReturnType = TransactionResult & {
  /** The cap after the change (`GatewayApproved`'s `cap`). */
  cap: bigint;
};

/** `ZeroAddress`. */
export type IncreaseGatewayCapErrorType = ChainError;

/** Raises what a gateway may debit from the client account's deposit by `amount` (saturating at 2^256-1, which is unlimited: pass `maxUint256`). Settlements lower the cap by what they debit. */
export async function increaseGatewayCap(
  client: WriteClient,
  { grid, gateway, amount }: IncreaseGatewayCapParameters,
): Promise<IncreaseGatewayCapReturnType> {
  const receipt = await writeAndWait(client, 'increaseGatewayCap', {
    address: grid,
    abi: gridAbi,
    functionName: 'increaseGatewayCap',
    args: [gateway, amount],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: receipt.logs, eventName: 'GatewayApproved' });
  return { hash: receipt.transactionHash, blockNumber: receipt.blockNumber, cap: event?.args.cap ?? 0n };
}
