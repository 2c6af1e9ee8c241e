import type { Receipt } from '@aipg/core';
import { type Address, type Hex, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type CommitVoteParameters = {
  grid: Address;
  batchId: bigint;
  /** The audited receipt, exactly as the worker signed it (`seq` included). */
  receipt: Receipt;
  /** The worker operator key's EIP-712 signature of `receipt` (65 bytes r‖s‖v), as the gateway stored it. */
  signature: Hex;
  /** Its Merkle proof against the batch's root (`buildReceiptTree(receipts).getProof(index)`). */
  proof: readonly Hex[];
  /** `voteCommitment({ leaf, validator, vote, evidenceHash, salt })`: keep the salt until the reveal. */
  commitment: Hex;
};

export type CommitVoteReturnType = TransactionResult & {
  /** The receipt's leaf: the audit's key for `revealVote`, `getAudit`, `finalizeAudit`. */
  leaf: Hex;
  /** The validator (bond owner) the commitment counts for: the client account or the bond it operates. */
  validator: Address;
  /** Whether this commit opened the audit (the first one on the leaf), and the seats it fixed. */
  opened: { worker: Address; validators: readonly Address[] } | null;
};

/**
 * `UnknownBatch`, `RandomnessNotFixed`, `CommitWindowClosed`, `InvalidProof`, `ReceiptNotInBatch`,
 * `NotAudited` (not drawn), `InvalidReceiptSignature`, `NotAssigned`,
 * `AlreadyCommitted`.
 */
export type CommitVoteErrorType = ChainError;

/**
 * Commits a hidden PASS/FAIL vote on an audited receipt as the client account (a validator's operator key or
 * owner), while `block.timestamp <= batchAudit.deadline`. The first commit on a leaf opens the audit.
 */
export async function commitVote(
  client: WriteClient,
  { grid, batchId, receipt, signature, proof, commitment }: CommitVoteParameters,
): Promise<CommitVoteReturnType> {
  const tx = await writeAndWait(client, 'commitVote', {
    address: grid,
    abi: gridAbi,
    functionName: 'commitVote',
    args: [batchId, receipt, signature, [...proof], commitment],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: tx.logs, eventName: 'VoteCommitted' });
  if (!event)
    throw new ChainError('commitVote: no VoteCommitted event in the receipt', { code: 'RPC_ERROR' });
  const [opened] = parseEventLogs({ abi: gridAbi, logs: tx.logs, eventName: 'AuditOpened' });
  return {
    hash: tx.transactionHash,
    blockNumber: tx.blockNumber,
    leaf: event.args.leaf,
    validator: event.args.validator,
    opened: opened ? { worker: opened.args.worker, validators: opened.args.validators } : null,
  };
}
