import type { AuditParams } from '../deployment.ts';

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
  attestWindow: bigint;
  randomnessDelay: bigint;
  workerSlashAmount: bigint;
  falseAttestationSlash: bigint;
  finderShareBps: number;
  passReward: bigint;
};

export function auditConfigFromChain(c: ChainAuditConfig): AuditParams {
  return { ...c, attestWindow: Number(c.attestWindow), randomnessDelay: Number(c.randomnessDelay) };
}

export function auditConfigToChain(a: AuditParams): ChainAuditConfig {
  return {
    auditRateBps: a.auditRateBps,
    validatorsPerAudit: a.validatorsPerAudit,
    quorum: a.quorum,
    attestWindow: BigInt(a.attestWindow),
    randomnessDelay: BigInt(a.randomnessDelay),
    workerSlashAmount: a.workerSlashAmount,
    falseAttestationSlash: a.falseAttestationSlash,
    finderShareBps: a.finderShareBps,
    passReward: a.passReward,
  };
}
