import { type Address, encodeAbiParameters, type Hex, keccak256 } from 'viem';
import { type AuditVote, auditVoteToUint } from '../internal/audit.ts';

export type VoteCommitmentParameters = {
  /** The audited receipt's leaf (`receiptLeafHash`). */
  leaf: Hex;
  /** The validator's bond owner (not its operator key): the contract binds the vote to the seat. */
  validator: Address;
  vote: AuditVote;
  evidenceHash: Hex;
  /** 32 random bytes, kept secret until the reveal. */
  salt: Hex;
};

/**
 * The hidden vote `commitVote` takes: `keccak256(abi.encode(leaf, validator, vote, evidenceHash, salt))`,
 * exactly as the contract's `voteCommitment` view computes it.
 */
export function voteCommitment({ leaf, validator, vote, evidenceHash, salt }: VoteCommitmentParameters): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: 'bytes32' }, { type: 'address' }, { type: 'uint8' }, { type: 'bytes32' }, { type: 'bytes32' }],
      [leaf, validator, auditVoteToUint[vote], evidenceHash, salt],
    ),
  );
}
