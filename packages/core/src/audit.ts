/**
 * The audit enums as the Grid contract numbers them (IAudit.Vote, IAudit.Verdict), in one place for
 * everyone who reads them off the chain or its events: the chain actions, the gateway's reputation
 * and network feed, the devnet's red team.
 */

/** IAudit.Vote as people write it; the contract numbers them None = 0, Pass = 1, Fail = 2. */
export type AuditVote = 'pass' | 'fail';

/** IAudit.Verdict: `none` until finalized; None = 0, Pass = 1, Fail = 2, Inconclusive = 3. */
export const AUDIT_VERDICTS = ['none', 'pass', 'fail', 'inconclusive'] as const;
export type AuditVerdict = (typeof AUDIT_VERDICTS)[number];

const AUDIT_VOTES = ['none', 'pass', 'fail'] as const;

/** A vote's number on chain. */
export const auditVoteToUint = { pass: 1, fail: 2 } as const satisfies Record<AuditVote, number>;
/** A verdict's number on chain. */
export const auditVerdictToUint = { none: 0, pass: 1, fail: 2, inconclusive: 3 } as const satisfies Record<
  AuditVerdict,
  number
>;

/** The verdict a number stands for; a RangeError for one the contract never emits. */
export function verdictFromUint(value: number | bigint): AuditVerdict {
  const verdict = AUDIT_VERDICTS[Number(value)];
  if (!verdict) throw new RangeError(`unknown audit verdict ${value}`);
  return verdict;
}

/** The vote a number stands for (`none`: not revealed); a RangeError for one the contract never emits. */
export function voteFromUint(value: number | bigint): AuditVote | 'none' {
  const vote = AUDIT_VOTES[Number(value)];
  if (!vote) throw new RangeError(`unknown audit vote ${value}`);
  return vote;
}
