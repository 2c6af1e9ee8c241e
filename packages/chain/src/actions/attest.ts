import type { Receipt } from '@aipg/core';
import { type Address, type Hex, parseEventLogs, zeroHash } from 'viem';
import type { WriteClient } from '../client.ts';
import { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type AuditVote, auditVoteToUint } from '../internal/audit.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type AttestParameters = {
  grid: Address;
  batchId: bigint;
  /** The audited receipt, exactly as the worker signed it. */
  receipt: Receipt;
  /** Its Merkle proof against the batch's root (`buildReceiptTree(receipts).getProof(index)`). */
  proof: readonly Hex[];
  vote: AuditVote;
  /** Commitment to the evidence (the re-scoring report); not interpreted on chain. Default: zero. */
  evidenceHash?: Hex | undefined;
};

export type AttestReturnType = TransactionResult & {
  /** The receipt's leaf: the audit's key for `getAudit`, `finalizeAudit`. */
  leaf: Hex;
  /** The validator (bond owner) the vote counts for: the client account or the bond it is the operator of. */
  validator: Address;
};

/**
 * `UnknownBatch`, `RandomnessNotFixed`, `AttestWindowClosed`, `InvalidProof`, `NotAudited` (not drawn, or
 * confidential), `NotAssigned`, `AuditedInOtherBatch`, `AlreadyAttested`.
 */
export type AttestErrorType = ChainError;

/** Attests PASS or FAIL on an audited receipt as the client account (a validator's operator key or owner). */
export async function attest(
  client: WriteClient,
  { grid, batchId, receipt, proof, vote, evidenceHash }: AttestParameters,
): Promise<AttestReturnType> {
  const tx = await writeAndWait(client, 'attest', {
    address: grid,
    abi: gridAbi,
    functionName: 'attest',
    args: [batchId, receipt, [...proof], auditVoteToUint[vote], evidenceHash ?? zeroHash],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: tx.logs, eventName: 'Attested' });
  if (!event) throw new ChainError('attest: no Attested event in the receipt', { code: 'RPC_ERROR' });
  return {
    hash: tx.transactionHash,
    blockNumber: tx.blockNumber,
    leaf: event.args.leaf,
    validator: event.args.validator,
  };
}
