import type { AuditLimits, AuditParams } from '../deployment.ts';

/** IAudit.Vote as people write it; the contract numbers them None = 0, Pass = 1, Fail = 2. */
export type AuditVote = 'pass' | 'fail';

/** IAudit.Verdict: `none` until finalized. */
export type AuditVerdict = 'none' | 'pass' | 'fail' | 'inconclusive';

export const auditVoteToUint = { pass: 1, fail: 2 } as const satisfies Record<AuditVote, number>;

const verdicts = ['none', 'pass', 'fail', 'inconclusive'] as const satisfies readonly AuditVerdict[];
const votes = ['none', 'pass', 'fail'] as const;

export function verdictFromUint(value: number): AuditVerdict {
  const verdict = verdicts[value];
  if (!verdict) throw new RangeError(`unknown audit verdict ${value}`);
  return verdict;
}

export function voteFromUint(value: number): AuditVote | 'none' {
  const vote = votes[value];
  if (!vote) throw new RangeError(`unknown audit vote ${value}`);
  return vote;
}

/** IAudit.AuditConfig as the ABI returns it (uint64 fields as bigints). */
export type ChainAuditConfig = {
  auditRateBps: number;
  validatorsPerAudit: number;
  quorum: number;
  commitWindow: bigint;
  revealWindow: bigint;
  randomnessDelay: bigint;
  workerSlashAmount: bigint;
  falseAttestationSlash: bigint;
  finderShareBps: number;
  passReward: bigint;
};

export function auditConfigFromChain(c: ChainAuditConfig): AuditParams {
  return {
    ...c,
    commitWindow: Number(c.commitWindow),
    revealWindow: Number(c.revealWindow),
    randomnessDelay: Number(c.randomnessDelay),
  };
}

export function auditConfigToChain(a: AuditParams): ChainAuditConfig {
  return {
    auditRateBps: a.auditRateBps,
    validatorsPerAudit: a.validatorsPerAudit,
    quorum: a.quorum,
    commitWindow: BigInt(a.commitWindow),
    revealWindow: BigInt(a.revealWindow),
    randomnessDelay: BigInt(a.randomnessDelay),
    workerSlashAmount: a.workerSlashAmount,
    falseAttestationSlash: a.falseAttestationSlash,
    finderShareBps: a.finderShareBps,
    passReward: a.passReward,
  };
}

/** IAudit.AuditLimits as the ABI returns it (uint64 fields as bigints). */
export type ChainAuditLimits = {
  maxWorkerSlashBps: number;
  maxFalseAttestationSlashBps: number;
  maxFinderShareBps: number;
  minValidatorsPerAudit: number;
  minQuorum: number;
  minCommitWindow: bigint;
  minRevealWindow: bigint;
};

export function auditLimitsFromChain(l: ChainAuditLimits): AuditLimits {
  return { ...l, minCommitWindow: Number(l.minCommitWindow), minRevealWindow: Number(l.minRevealWindow) };
}

export function auditLimitsToChain(l: AuditLimits): ChainAuditLimits {
  return {
    maxWorkerSlashBps: l.maxWorkerSlashBps,
    maxFalseAttestationSlashBps: l.maxFalseAttestationSlashBps,
    maxFinderShareBps: l.maxFinderShareBps,
    minValidatorsPerAudit: l.minValidatorsPerAudit,
    minQuorum: l.minQuorum,
    minCommitWindow: BigInt(l.minCommitWindow),
    minRevealWindow: BigInt(l.minRevealWindow),
  };
}
