import type { AuditLimits, AuditParams } from '../deployment.ts';

// The audit enums live with the protocol in @aipg/core; the chain actions read and write them.
export {
  type AuditVerdict,
  type AuditVote,
  auditVoteToUint,
  verdictFromUint,
  voteFromUint,
} from '@aipg/core';

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
