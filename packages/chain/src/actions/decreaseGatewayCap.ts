import { type Address, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type DecreaseGatewayCapParameters = {
  grid: Address;
  /** The gateway's settling address. */
  gateway: Address;
  /** AIPG wei taken off the cap (`maxUint256` revokes it). */
  amount: bigint;
};

export type DecreaseGatewayCapReturnType = TransactionResult & {
  /** The cap after the change (`GatewayApproved`'s `cap`). */
  cap: bigint;
};

/** `ZeroAddress`. */
export type DecreaseGatewayCapErrorType = ChainError;

/** Lowers what a gateway may debit from the client account's deposit by `amount` (saturating at 0: pass `maxUint256` to revoke). Relative, so a settlement that lands first can never leave the gateway more than meant (no approve race). */
export async function decreaseGatewayCap(
  client: WriteClient,
  { grid, gateway, amount }: DecreaseGatewayCapParameters,
): Promise<DecreaseGatewayCapReturnType> {
  const receipt = await writeAndWait(client, 'decreaseGatewayCap', {
    address: grid,
    abi: gridAbi,
    functionName: 'decreaseGatewayCap',
    args: [gateway, amount],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: receipt.logs, eventName: 'GatewayApproved' });
  return { hash: receipt.transactionHash, blockNumber: receipt.blockNumber, cap: event?.args.cap ?? 0n };
}
