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
  /** Whether anyone attested (an audit opens with its first vote). */
  opened: boolean;
  /** 0n when not opened. */
  batchId: bigint;
  worker: Address;
  modelId: Hex;
  /** Unix seconds: votes are accepted while `block.timestamp <= deadline`. */
  deadline: number;
  passVotes: number;
  failVotes: number;
  verdict: AuditVerdict;
  /** AIPG wei taken from the worker (FAIL verdict). */
  slashed: bigint;
  /** The vote of each of `validators`. */
  votes: Record<Address, AuditVote | 'none'>;
};

export type GetAuditErrorType = ChainError;

/** One audit: who, its votes so far, its verdict. */
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
    passVotes: info.passVotes,
    failVotes: info.failVotes,
    verdict: verdictFromUint(info.verdict),
    slashed: info.slashed,
    votes: Object.fromEntries(validators.map((v, i) => [v, voteFromUint(votes[i] ?? 0)])),
  };
}
