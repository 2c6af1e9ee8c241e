import { type Address, type Hex, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type AuditVerdict, verdictFromUint } from '../internal/audit.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type FinalizeAuditParameters = {
  grid: Address;
  /** The audited receipt's leaf (`receiptLeafHash(receipt)`). */
  leaf: Hex;
};

export type FinalizeAuditReturnType = TransactionResult & {
  verdict: AuditVerdict;
  worker: Address;
  /** AIPG wei taken from the worker's bond (FAIL only). */
  slashed: bigint;
  /** Finder shares (FAIL) or pass rewards (PASS), credited as earnings, in vote order. */
  rewards: { validator: Address; amount: bigint }[];
  /** Validators who revealed against the verdict or never revealed, and what was taken from their bonds. */
  falseAttestations: { validator: Address; amount: bigint }[];
};

/** `NothingToFinalize` (nobody committed), `AuditWindowOpen` (before the reveal deadline), `AlreadyFinalized`. */
export type FinalizeAuditErrorType = ChainError;

/** Applies the verdict of an audit whose reveal window has closed. Anyone may call it, once. */
export async function finalizeAudit(
  client: WriteClient,
  { grid, leaf }: FinalizeAuditParameters,
): Promise<FinalizeAuditReturnType> {
  const receipt = await writeAndWait(client, 'finalize', {
    address: grid,
    abi: gridAbi,
    functionName: 'finalize',
    args: [leaf],
  });
  const [finalized] = parseEventLogs({ abi: gridAbi, logs: receipt.logs, eventName: 'AuditFinalized' });
  if (!finalized) {
    throw new ChainError('finalizeAudit: no AuditFinalized event in the receipt', { code: 'RPC_ERROR' });
  }
  const rewards = parseEventLogs({ abi: gridAbi, logs: receipt.logs, eventName: 'ValidatorRewarded' });
  const falseAttestations = parseEventLogs({
    abi: gridAbi,
    logs: receipt.logs,
    eventName: 'FalseAttestationSlashed',
  });
  return {
    hash: receipt.transactionHash,
    blockNumber: receipt.blockNumber,
    verdict: verdictFromUint(finalized.args.verdict),
    worker: finalized.args.worker,
    slashed: finalized.args.slashed,
    rewards: rewards.map((e) => ({ validator: e.args.validator, amount: e.args.amount })),
    falseAttestations: falseAttestations.map((e) => ({ validator: e.args.validator, amount: e.args.amount })),
  };
}
