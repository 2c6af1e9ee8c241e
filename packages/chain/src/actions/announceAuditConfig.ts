import { type Address, type Hex, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import type { AuditParams } from '../deployment.ts';
import { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { auditConfigToChain } from '../internal/audit.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type AnnounceAuditConfigParameters = {
  grid: Address;
  /** The whole new config (read the current one with `getGridParams(...).audit`). */
  config: AuditParams;
};

export type AnnounceAuditConfigReturnType = TransactionResult & {
  /** `hashAuditConfig(config)`: what `cancelChange` takes. */
  id: Hex;
  /** Unix seconds: `setAuditConfig` runs within [executableAt, expiresAt]. */
  executableAt: number;
  expiresAt: number;
};

/** `NotOwner`, `InvalidAuditConfig(reason)` (outside the deployment's `auditLimits`, or quorum not a majority). */
export type AnnounceAuditConfigErrorType = ChainError;

/**
 * Announces a new audit config: after `cutDelay()` the owner may apply it with `setAuditConfig` within
 * `changeWindow()`. Everyone bonded sees it coming for longer than it takes to leave. Owner only.
 */
export async function announceAuditConfig(
  client: WriteClient,
  { grid, config }: AnnounceAuditConfigParameters,
): Promise<AnnounceAuditConfigReturnType> {
  const receipt = await writeAndWait(client, 'announceAuditConfig', {
    address: grid,
    abi: gridAbi,
    functionName: 'announceAuditConfig',
    args: [auditConfigToChain(config)],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: receipt.logs, eventName: 'AuditConfigAnnounced' });
  if (!event)
    throw new ChainError('announceAuditConfig: no AuditConfigAnnounced event in the receipt', {
      code: 'RPC_ERROR',
    });
  return {
    hash: receipt.transactionHash,
    blockNumber: receipt.blockNumber,
    id: event.args.id,
    executableAt: Number(event.args.executableAt),
    expiresAt: Number(event.args.expiresAt),
  };
}
