/**
 * The judge's thresholds (docs/DESIGN.md §5). Hard thresholds decide a FAIL attestation, which slashes a
 * worker's bond: each is set with a wide margin over what honest runs produce, measured by
 * `scripts/drift.ts` (how far honest setups' distributions move apart) and `scripts/calibrate.ts`
 * (10,000 honest audits of the `small` preset and 2,000 of `context`, workers on other llama.cpp
 * builds, batch sizes and sequences; results in the README, "Calibration"). Soft thresholds only
 * add soft signals (reputation, audit rate), never a FAIL.
 */
export type JudgeThresholds = {
  /**
   * Numerical noise budget, nats per logit. A greedy or seeded token fails only if no
   * perturbation moving every logit of the validator's distribution by at most this much could
   * make it the sampler's pick (greedy: ln(p_argmax / p_token) > 2 × this). Measured (README
   * "Calibration"): the distributions of honest setups differ by up to 0.026 nats of equivalent
   * logit noise between CPU builds and 0.037 with flash attention (F16 accumulation), and no
   * honest token of the canonical engine's setups needed more than 0.0062 nats in 11,001 audits:
   * 0.1 is 2.7× the widest drift and 16× the largest need, so it is not tightened. It is the
   * per-token hard line; near copies of the model, which stay under it, are REPEATED_MISMATCH.
   */
  logitNoise: number;
  /**
   * Extra top-p mass at the nucleus boundary (engines cut at ≥ or >, sum in other orders): a
   * token is outside the declared top-p support only if the mass surely ranked before it reaches
   * top-p + this, under the noise budget too.
   */
  topPSlack: number;
  /**
   * Probability floor, as excess nats over ln(vocabulary): a sampled token whose tempered
   * probability q (upper bound) is below e^-(ln V + floorExcessNats) is "impossible". An honest
   * sampler picks such a token with probability ≤ V · e^-(ln V + x) = e^-x per position.
   */
  floorExcessNats: number;
  /**
   * How many sub-floor tokens a sampled job needs to fail. With e^-12 per position and 2 tokens,
   * an honest 2,048-token output fails with probability ≤ C(2048, 2) · e^-24 ≈ 8e-5 in the worst
   * case (every unlikely token exactly at the floor); a 128-token one ≤ 3e-7.
   */
  floorMinCount: number;
  /**
   * Sequence rule for greedy and seeded jobs of the canonical sampler (`REPEATED_MISMATCH`): a
   * job fails when at least `repeatMinCount` of its tokens (and `repeatMinShare` of them) each
   * need more than `repeatNoise` nats of logit noise to be the sampler's pick, even if every one
   * is within `logitNoise`. A near copy of the model (a 6-bit re-quantization under the
   * registered hash) moves the logits by a few hundredths of a nat everywhere: each of its tokens
   * stays within the per-token budget, but about one in ten needs more than 0.02 nats. Measured on
   * honest workers (README "Calibration"): not one of 492,460 greedy / seeded tokens, on any build,
   * batch size or sequence count, needed more than 0.0062 nats (3.2× under this), and no job had
   * a third one over 0.0026 (7.7×); iid noise of ±0.02 nats on every logit of every position
   * fails nothing (by construction).
   */
  repeatNoise: number;
  /** How many tokens over `repeatNoise` fail a job (one or two never do). */
  repeatMinCount: number;
  /**
   * …and at least this share of its greedy / seeded tokens, so that the threshold grows with
   * the output: an honest worker's tokens over `repeatNoise` are rare independent events, whose
   * count grows with the length; a near copy's share does not shrink with it.
   */
  repeatMinShare: number;
  // ── soft (never fail) ─────────────────────────────────────────────────────────────────────
  /** Rank (0 = most likely) at or above which a sampled token is a soft "unlikely token" signal. */
  softRank: number;
  /** Mean surprise − entropy (nats per token) above which a sampled job's log-probs drift. */
  softDriftNats: number;
  /** Positions needed before the drift statistic means anything. */
  softDriftMinPositions: number;
  /** The end token at least this many times likelier than the emitted token: "avoided the end". */
  softEndAvoidedRatio: number;
};

export const DEFAULT_THRESHOLDS: Readonly<JudgeThresholds> = Object.freeze({
  logitNoise: 0.1,
  topPSlack: 0.01,
  floorExcessNats: 12,
  floorMinCount: 2,
  repeatNoise: 0.02,
  repeatMinCount: 3,
  repeatMinShare: 0.01,
  softRank: 25,
  softDriftNats: 1,
  softDriftMinPositions: 16,
  softEndAvoidedRatio: 50,
});
