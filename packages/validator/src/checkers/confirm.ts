/**
 * One scorer's word never fails a worker alone (docs/DESIGN.md §5). A cross-check FAIL that rests on
 * the scores (the model's distribution, as a drawn worker reported it) stands only when a second,
 * independent drawn worker's scores find it too; reasons the validator checks itself (units, length,
 * end token, ids outside the vocabulary: its own tokenizer and the signed receipt) need no scorer.
 */
import { ValidatorError, ValidatorErrorCode } from '../errors.ts';
import { evidenceHash } from '../judge/evidence.ts';
import { HardReason, type HardReasonCode, type Verdict } from '../judge/judge.ts';
import type { Checker, CheckRequest, CheckResult } from './types.ts';

/**
 * Hard reasons the validator finds without any scores: the signed receipt and ids against the params and
 * its own tokenizer. Every other reason is read from the scores (the scorer's word) — a reason added to
 * the judge later counts as scored until it is listed here, so it never fails a worker on one scorer's
 * word by omission.
 */
export const OWN_REASONS: ReadonlySet<HardReasonCode> = new Set<HardReasonCode>([
  HardReason.requestHash,
  HardReason.outputHash,
  HardReason.promptMismatch,
  HardReason.inputUnits,
  HardReason.outputUnits,
  HardReason.usage,
  HardReason.fee,
  HardReason.invalidToken,
  HardReason.invalidPromptToken,
  HardReason.tooLong,
  HardReason.lengthEarly,
  HardReason.stopWithoutEnd,
  HardReason.afterEnd,
  HardReason.afterStop,
]);

/** Whether a reason is read from the scores (GREEDY_MISMATCH, SEEDED_MISMATCH, OUTSIDE_TOP_P, …). */
export const isScoredReason = (code: HardReasonCode): boolean => !OWN_REASONS.has(code);

/** Whether a FAIL leans on the scorer's word, so a second scorer must confirm it before any vote. */
export function needsSecondScorer(first: Verdict): boolean {
  return first.verdict === 'fail' && first.reasons.some((r) => isScoredReason(r.code));
}

export type Confirmation =
  /**
   * FAIL on the first verdict's reasons that stand: the validator's own, and the scored ones whose code
   * the second scorer's verdict holds too. `disagreement`: the second scorer confirmed none of the
   * scored ones (the FAIL stands on the validator's own reasons only).
   */
  | { outcome: 'fail'; verdict: Verdict; disagreement: boolean }
  /** No vote: the scorers disagree, or there is no second scorer, and nothing else fails the job. */
  | { outcome: 'abstain'; disagreement: boolean; reason: string };

/**
 * The verdict on a first FAIL once the second scorer has answered (`second`: its verdict on the same
 * job, or null when no independent second scorer could be drawn). Each scorer's scores are judged on
 * their own; a scored reason stands only if both verdicts hold its code. The evidence hash covers the
 * reasons that stand.
 */
export function confirmFail(first: Verdict, second: Verdict | null): Confirmation {
  const confirmed = new Set(
    second?.verdict === 'fail' ? second.reasons.filter((r) => isScoredReason(r.code)).map((r) => r.code) : [],
  );
  const reasons = first.reasons.filter((r) => !isScoredReason(r.code) || confirmed.has(r.code));
  const scoredStand = reasons.some((r) => isScoredReason(r.code));
  const disagreement = second !== null && !scoredStand;
  if (reasons.length === 0)
    return {
      outcome: 'abstain',
      disagreement,
      reason:
        second === null
          ? "no independent second scorer to confirm the first scorer's FAIL"
          : `scorer disagreement: the second drawn scorer's scores give ${second.verdict.toUpperCase()}${second.verdict === 'fail' ? ` on other reasons (${[...new Set(second.reasons.map((r) => r.code))].join(', ')})` : ''}`,
    };
  return {
    outcome: 'fail',
    verdict: { ...first, reasons, evidenceHash: evidenceHash(reasons) },
    disagreement,
  };
}

export type CheckedVerdict = {
  /** Each check and the verdict judged with its scores alone, in the order asked (one or two). */
  checks: { result: CheckResult; verdict: Verdict }[];
  /** What to vote (its `verdict` may be `abstain`: the gateway's evidence), or null: no vote, `reason`. */
  verdict: Verdict | null;
  reason?: string | undefined;
  /** The second scorer did not confirm the first one's scored reasons. */
  disagreement: boolean;
};

/**
 * Checks a job and judges it; a cross-check FAIL that leans on the scores is checked again by the next
 * independent worker of the draw (`skipScorers`: every worker already asked) and stands only as far as
 * `confirmFail` says. No worker left to draw is no confirmation (abstain, unless the validator's own
 * reasons fail the job); any other failure of the second check is thrown (the audit is retried).
 */
export async function checkAndJudge(
  checker: Checker,
  request: CheckRequest,
  judgeWith: (result: CheckResult) => Verdict,
): Promise<CheckedVerdict> {
  const first = await checker.check(request);
  const v1 = judgeWith(first);
  const checks = [{ result: first, verdict: v1 }];
  if (!first.score || !needsSecondScorer(v1)) return { checks, verdict: v1, disagreement: false };
  let second: CheckResult | null = null;
  try {
    second = await checker.check({
      ...request,
      skipScorers: [...(request.skipScorers ?? []), ...(first.tried ?? [first.score.worker])],
    });
  } catch (error) {
    if (
      !(error instanceof ValidatorError && error.code === ValidatorErrorCode.scorerError && !error.retryable)
    )
      throw error;
  }
  const v2 = second ? judgeWith(second) : null;
  if (second && v2) checks.push({ result: second, verdict: v2 });
  const c = confirmFail(v1, v2);
  return c.outcome === 'fail'
    ? { checks, verdict: c.verdict, disagreement: c.disagreement }
    : { checks, verdict: null, reason: c.reason, disagreement: c.disagreement };
}
