import type { Address } from 'viem';

/** One worker's audit history, as followed on chain. Times are chain time (block timestamps), in ms. */
export type AuditRecord = {
  owner: Address;
  passes: number;
  fails: number;
  inconclusive: number;
  /** `BondSlashed` events of the worker's bond (a FAIL verdict slashes, so FAILs count here too). */
  slashes: number;
  /** AIPG wei slashed in all. */
  slashed: bigint;
  lastFailAt: number | null;
  lastSlashAt: number | null;
  lastEventBlock: bigint;
};

export type ReputationPolicy = {
  /** After a FAIL or a slash, the worker is excluded (factor 0) for this long. */
  failCooldownMs: number;
  /** Then its factor is cut by `RECENT_PENALTY` for this long. */
  penaltyWindowMs: number;
};

/** How much one FAIL outweighs one PASS in the long-run history term. */
export const FAIL_WEIGHT = 10;
/** Multiplier in the penalty window after the cool-down. */
export const RECENT_PENALTY = 0.05;
/** Largest preference for a clean history (factor 1 + CLEAN_BONUS after many PASSes, no FAIL). */
export const CLEAN_BONUS = 0.25;
/** PASSes at which half the clean bonus is reached. */
const CLEAN_HALF = 8;

/**
 * The routing factor of a worker's audit history (`Reputation.factor`): 1 never audited (or only
 * inconclusive audits); up to 1 + CLEAN_BONUS for a clean history of PASSes; 0 during the cool-down
 * after a FAIL or a slash (routing then only picks it when nobody else can run the job); after it,
 * RECENT_PENALTY × the history term for the penalty window, and the history term alone after that:
 * (passes + 1) / (passes + 1 + FAIL_WEIGHT × fails), so a FAIL is only lived down by many PASSes.
 */
export function reputationFactor(
  record: AuditRecord | undefined,
  nowMs: number,
  policy: ReputationPolicy,
): number {
  if (!record) return 1;
  const bad = Math.max(record.fails, record.slashes);
  const lastPenalty = Math.max(record.lastFailAt ?? -Infinity, record.lastSlashAt ?? -Infinity);
  if (bad === 0 || lastPenalty === -Infinity) {
    const p = record.passes;
    return bad === 0 ? 1 + (CLEAN_BONUS * p) / (p + CLEAN_HALF) : historyTerm(record.passes, bad);
  }
  const since = nowMs - lastPenalty;
  if (since < policy.failCooldownMs) return 0;
  const history = historyTerm(record.passes, bad);
  return since < policy.failCooldownMs + policy.penaltyWindowMs ? history * RECENT_PENALTY : history;
}

function historyTerm(passes: number, fails: number): number {
  return (passes + 1) / (passes + 1 + FAIL_WEIGHT * fails);
}
