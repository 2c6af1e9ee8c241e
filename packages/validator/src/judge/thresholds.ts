/**
 * The judge's thresholds (docs/DESIGN.md §5). Hard thresholds decide a FAIL attestation, which slashes a
 * worker's bond: each is set with a wide margin over what honest runs produce, measured by
 * `scripts/calibrate.ts` (≥ 1,000 honest generations of the `small` preset; results in the
 * README). Soft thresholds only add soft signals (reputation, audit rate), never a FAIL.
 */
export type JudgeThresholds = {
  /**
   * Numerical noise budget, nats per logit. A greedy or seeded token fails only if no
   * perturbation moving every logit of the validator's distribution by at most this much could
   * make it the sampler's pick (greedy: ln(p_argmax / p_token) > 2 × this). Honest runs on the
   * same build need 0; logit noise of ±0.01–0.1 injected in calibration needs at most as much
   * (by construction). 0.1 nats ≈ the cross-hardware drift budget suggested for bf16 engines
   * (research/verification.md §2.4) and 10× the largest drift measured between engine
   * configurations here (~2e-3 at p ≈ 0.2, i.e. ~0.01 nats: inference README).
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
  softRank: 25,
  softDriftNats: 1,
  softDriftMinPositions: 16,
  softEndAvoidedRatio: 50,
});
