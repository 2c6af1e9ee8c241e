import type { Address, Hex } from 'viem';
import { readContract } from 'viem/actions';
import type { ReadClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type AuditVerdict, type AuditVote, verdictFromUint, voteFromUint } from '../internal/audit.ts';
import { wrapRead } from '../internal/write.ts';

export type GetAuditParameters = {
  grid: Address;
  /** The audited receipt's leaf (`receiptLeafHash`). */
  leaf: Hex;
  /** Also read these validators' votes. */
  validators?: readonly Address[] | undefined;
};

export type GetAuditReturnType = {
  /** Whether anyone committed (an audit opens with its first commit). */
  opened: boolean;
  /** 0n when not opened. */
  batchId: bigint;
  worker: Address;
  modelId: Hex;
  /** Unix seconds: commits are accepted while `block.timestamp <= deadline`. */
  deadline: number;
  /** Unix seconds: reveals are accepted after `deadline` while `block.timestamp <= revealDeadline`. */
  revealDeadline: number;
  /** Validators seated (`assignedValidators`), commitments received, and revealed votes. */
  seats: number;
  commits: number;
  passVotes: number;
  failVotes: number;
  verdict: AuditVerdict;
  /** AIPG wei taken from the worker (FAIL verdict). */
  slashed: bigint;
  /** Each of `validators`: no commitment, a commitment not revealed yet, or the revealed vote. */
  votes: Record<Address, AuditVote | 'committed' | 'none'>;
};

export type GetAuditErrorType = ChainError;

/** One audit: who, its seats, commitments and revealed votes so far, its verdict. */
export async function getAudit(
  client: ReadClient,
  { grid, leaf, validators = [] }: GetAuditParameters,
): Promise<GetAuditReturnType> {
  const c = { address: grid, abi: gridAbi } as const;
  const [info, votes] = await wrapRead('getAudit', () =>
    Promise.all([
      readContract(client, { ...c, functionName: 'getAudit', args: [leaf] }),
      Promise.all(
        validators.map((v) => readContract(client, { ...c, functionName: 'voteOf', args: [leaf, v] })),
      ),
    ]),
  );
  return {
    opened: info.batchId !== 0n,
    batchId: info.batchId,
    worker: info.worker,
    modelId: info.modelId,
    deadline: Number(info.deadline),
    revealDeadline: Number(info.revealDeadline),
    seats: info.seats,
    commits: info.commits,
    passVotes: info.passVotes,
    failVotes: info.failVotes,
    verdict: verdictFromUint(info.verdict),
    slashed: info.slashed,
    votes: Object.fromEntries(
      validators.map((v, i) => {
        const [committed, vote] = votes[i] ?? [false, 0];
        const revealed = voteFromUint(vote);
        return [v, revealed === 'none' && committed ? 'committed' : revealed];
      }),
    ),
  };
}
