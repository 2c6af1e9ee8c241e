import { type Address, type Hex, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type AuditVote, auditVoteToUint } from '../internal/audit.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type RevealVoteParameters = {
  grid: Address;
  /** The audited receipt's leaf. */
  leaf: Hex;
  /** The vote, evidence hash and salt the commitment was made of (`voteCommitment`). */
  vote: AuditVote;
  evidenceHash: Hex;
  salt: Hex;
};

export type RevealVoteReturnType = TransactionResult & {
  batchId: bigint;
  /** The validator (bond owner) whose vote now counts. */
  validator: Address;
};

/**
 * `RevealWindowNotOpen` (the commit deadline has not passed), `RevealWindowClosed`, `NotCommitted`,
 * `AlreadyRevealed`, `CommitmentMismatch` (another vote, evidence hash or salt), `InvalidVote`.
 */
export type RevealVoteErrorType = ChainError;

/**
 * Reveals a committed vote, after the commit deadline and until `batchAudit.revealDeadline`. A validator
 * who committed and never reveals is slashed at finalization, whatever the verdict.
 */
export async function revealVote(
  client: WriteClient,
  { grid, leaf, vote, evidenceHash, salt }: RevealVoteParameters,
): Promise<RevealVoteReturnType> {
  const tx = await writeAndWait(client, 'revealVote', {
    address: grid,
    abi: gridAbi,
    functionName: 'revealVote',
    args: [leaf, auditVoteToUint[vote], evidenceHash, salt],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: tx.logs, eventName: 'Attested' });
  if (!event) throw new ChainError('revealVote: no Attested event in the receipt', { code: 'RPC_ERROR' });
  return {
    hash: tx.transactionHash,
    blockNumber: tx.blockNumber,
    batchId: event.args.batchId,
    validator: event.args.validator,
  };
}
