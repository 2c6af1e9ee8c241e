import type { Address } from 'viem';
import type { WriteClient } from '../client.ts';
import type { AuditParams } from '../deployment.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { auditConfigToChain } from '../internal/audit.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type SetAuditConfigParameters = {
  grid: Address;
  /** Exactly the config announced with `announceAuditConfig`. */
  config: AuditParams;
};

export type SetAuditConfigReturnType = TransactionResult;

/**
 * `NotOwner`, `ChangeNotAnnounced(id)` (never announced, cancelled or already applied), `ChangeNotReady(id,
 * executableAt)`, `ChangeExpired(id, expiresAt)`, `InvalidAuditConfig(reason)`.
 */
export type SetAuditConfigErrorType = ChainError;

/**
 * Applies an announced audit config once its delay has passed and before it expires, for the batches fixed
 * from then on (open audits keep theirs). Owner only.
 */
export async function setAuditConfig(
  client: WriteClient,
  { grid, config }: SetAuditConfigParameters,
): Promise<SetAuditConfigReturnType> {
  const receipt = await writeAndWait(client, 'setAuditConfig', {
    address: grid,
    abi: gridAbi,
    functionName: 'setAuditConfig',
    args: [auditConfigToChain(config)],
  });
  return { hash: receipt.transactionHash, blockNumber: receipt.blockNumber };
}
