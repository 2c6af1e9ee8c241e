import type { Address } from 'viem';
import type { WriteClient } from '../client.ts';
import type { AuditParams } from '../deployment.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { auditConfigToChain } from '../internal/audit.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type SetAuditConfigParameters = {
  grid: Address;
  /** The whole new config (read the current one with `getGridParams(...).audit`). */
  config: AuditParams;
};

export type SetAuditConfigReturnType = TransactionResult;

/** `NotOwner`, `InvalidAuditConfig(reason)`. */
export type SetAuditConfigErrorType = ChainError;

/** Replaces the audit parameters for the batches fixed from now on (open audits keep theirs). Owner only. */
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
