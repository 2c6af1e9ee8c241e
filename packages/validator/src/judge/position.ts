/**
 * Per-position arithmetic of the judge over what a scorer reports: the claimed token's
 * probability and rank, and the top-k of the distribution that predicted it.
 *
 * Tolerance model: the worker's and the validator's logits may differ by numerical noise (other
 * hardware, kernels, batch shapes). A token fails a sampling rule only if NO perturbation that
 * moves every logit by at most `logitNoise` nats (so every tempered weight q = p^(1/T) by a factor
 * within e^(±logitNoise/T)) could have made it the sampler's pick. Honest noise within the budget
 * can therefore never fail a job, whatever the temperature, top-p or position.
 *
 * Partial views: when the top-k does not hold the whole vocabulary, the unseen tail is bounded
 * (at most V − k tokens, each no likelier than the least likely listed one, together holding the
 * remaining mass) and counted on whichever side favours the worker.
 */
import { samplerUniform } from '@aipg/inference';

export type TopToken = { tokenId: number; probability: number };

/** One output position as a scorer reports it (`engine.score`, or a cross-check worker). */
export type ScoredPosition = {
  tokenId: number;
  /** Probability of `tokenId` under the model's raw (temperature 1) distribution. */
  probability: number;
  /** 0 = the most probable token. */
  rank: number;
  /** The most probable tokens, probability descending. */
  top: readonly TopToken[];
};

export type PositionView = {
  /** `top` in canonical order: probability descending, ties by id ascending. */
  top: TopToken[];
  /** Index of the claimed token in `top`, or -1 when it ranks below the listed tokens. */
  claimed: number;
  tokenId: number;
  probability: number;
  rank: number;
  /** Tokens not listed (V − k, the claimed one excluded). */
  unseen: number;
  /** Raw probability mass not listed, clamped to [0, 1]. */
  unseenMass: number;
};

export type Tolerance = {
  /** Numerical noise budget per logit, nats. */
  logitNoise: number;
  /** Extra top-p mass for the nucleus boundary (engines cut at ≥ or >, round differently). */
  topPSlack: number;
};

export function positionView(p: ScoredPosition, vocabSize: number): PositionView {
  const top = [...p.top].sort((a, b) => b.probability - a.probability || a.tokenId - b.tokenId);
  let listed = 0;
  for (const t of top) listed += t.probability;
  const claimed = top.findIndex((t) => t.tokenId === p.tokenId);
  const unseen = Math.max(0, vocabSize - top.length - (claimed < 0 ? 1 : 0));
  const unseenMass = Math.min(1, Math.max(0, 1 - listed - (claimed < 0 ? p.probability : 0)));
  return { top, claimed, tokenId: p.tokenId, probability: p.probability, rank: p.rank, unseen, unseenMass };
}

const temper = (p: number, temperature: number) => (temperature === 1 ? p : p ** (1 / temperature));

/**
 * Upper bound of Σ q over the unseen tokens, q = p^(1/T): each unseen p ≤ p_min (the least
 * likely listed) and together they hold `unseenMass`. For 1/T ≤ 1 (concave) the power mean gives
 * n·(m/n)^(1/T); for 1/T > 1 (convex) Σ p^(1/T) ≤ p_min^(1/T − 1)·m.
 */
export function unseenTemperedBound(v: PositionView, temperature: number): number {
  if (v.unseen === 0 || v.unseenMass === 0) return 0;
  const pMin = v.top.length > 0 ? v.top[v.top.length - 1]!.probability : 1;
  const n = v.unseen;
  const m = v.unseenMass;
  const inv = 1 / temperature;
  const capped = n * temper(Math.min(pMin, m), temperature);
  const shaped = inv <= 1 ? n * (m / n) ** inv : pMin ** (inv - 1) * m;
  return Math.min(capped, shaped);
}

type Tempered = {
  /** q of the listed tokens, canonical order. */
  qs: number[];
  /** cumulative[j] = Σ qs[0..j). */
  cumulative: Float64Array;
  /** q of the claimed token. */
  qc: number;
  /** Σ q listed + the claimed one when unlisted: a lower bound of Z. */
  zLo: number;
  /** Upper bound of Σ q over the unseen tokens. */
  unseen: number;
};

function tempered(v: PositionView, temperature: number): Tempered {
  const qs = v.top.map((t) => temper(t.probability, temperature));
  const cumulative = new Float64Array(qs.length + 1);
  for (let j = 0; j < qs.length; j++) cumulative[j + 1] = cumulative[j]! + qs[j]!;
  const qc = temper(v.probability, temperature);
  const zLo = cumulative[qs.length]! + (v.claimed < 0 ? qc : 0);
  return { qs, cumulative, qc, zLo, unseen: unseenTemperedBound(v, temperature) };
}

/** Listed tokens with q > x form a prefix of the canonical order: its length. */
function prefixAbove(qs: readonly number[], x: number): number {
  let lo = 0;
  let hi = qs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (qs[mid]! > x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * ln of an upper bound of the claimed token's tempered probability q/Z (Z ≥ the listed mass).
 * -Infinity for a token the model gives probability 0.
 */
export function logTemperedUpper(v: PositionView, temperature: number): number {
  const t = tempered(v, temperature);
  if (t.qc <= 0 || t.zLo <= 0) return Number.NEGATIVE_INFINITY;
  return Math.log(Math.min(1, t.qc / t.zLo));
}

/**
 * Share of the mass that surely ranks before the claimed token, at the most favourable noise:
 * those tokens shrunk by e^-k, everything else (the unseen tail included) grown by e^k. The
 * claimed token can be in a top-p nucleus only if this is below top-p (the nucleus is the
 * shortest canonical prefix whose mass reaches top-p).
 */
export function massBeforeLower(v: PositionView, temperature: number, logitNoise = 0): number {
  const t = tempered(v, temperature);
  const e = Math.exp(logitNoise / temperature);
  // Tokens that stay ahead of the claimed one under any noise: q > q_c · e^2k.
  const n =
    v.claimed < 0 ? prefixAbove(t.qs, t.qc * e * e) : Math.min(v.claimed, prefixAbove(t.qs, t.qc * e * e));
  const before = t.cumulative[n]! / e;
  const rest = (t.zLo - t.cumulative[n]! + t.unseen) * e;
  return before + rest > 0 ? before / (before + rest) : 0;
}

export type GreedyCheck = {
  expectedTokenId: number;
  /** p(argmax) − p(claimed), 0 when the claimed token is the argmax. */
  gap: number;
  /** The logit noise that would make the claimed token the argmax: ln(p_best / p_claimed) / 2. */
  requiredNoise: number;
};

export function greedyCheck(v: PositionView): GreedyCheck {
  const best = v.top[0];
  if (!best || best.tokenId === v.tokenId)
    return { expectedTokenId: best?.tokenId ?? -1, gap: 0, requiredNoise: 0 };
  const ratio = v.probability > 0 ? Math.log(best.probability / v.probability) : Number.POSITIVE_INFINITY;
  return {
    expectedTokenId: best.tokenId,
    gap: Math.max(0, best.probability - v.probability),
    requiredNoise: Math.max(0, ratio / 2),
  };
}

export type SeededCheck = {
  /** The canonical sampler's pick on the validator's distribution (no noise). */
  expectedTokenId: number;
  /**
   * How far u lies outside every interval the claimed token can have under the noise budget: 0
   * when some perturbation within the budget makes it the pick; 1 when it cannot even enter the
   * nucleus.
   */
  distance: number;
  /** The unseen tail is large enough to matter (a partial view; the check leans to the worker). */
  partial: boolean;
};

/**
 * The canonical sampler `aipg-sampler-v1` (see @aipg/inference sampler.ts) replayed on a position
 * with u = samplerUniform(seed, position): q ∝ p^(1/T); the nucleus is the shortest canonical
 * prefix with q-mass ≥ top-p; inverse CDF over the nucleus laid out in token-id order.
 */
export function seededCheck(
  v: PositionView,
  params: { temperature: number; topP: number; seed: number },
  position: number,
  tol: Tolerance,
): SeededCheck {
  const u = samplerUniform(params.seed, position);
  const T = params.temperature;
  const t = tempered(v, T);
  const expectedTokenId = nominalPick(v, t, params.topP, u);
  const partial = t.unseen > 0.001 * t.zLo;
  if (expectedTokenId === v.tokenId) return { expectedTokenId, distance: 0, partial };
  const e = Math.exp(tol.logitNoise / T);
  const pLo = Math.max(0, params.topP - tol.topPSlack);
  const pHi = Math.min(1, params.topP + tol.topPSlack);
  if (massBeforeLower(v, T, tol.logitNoise) >= pHi) return { expectedTokenId, distance: 1, partial };

  // Which listed tokens are surely / maybe in the nucleus under the noise budget: a token is in it
  // when the mass ranked before it is below top-p · Z.
  const k = t.qs.length;
  const surely = new Uint8Array(k);
  const maybe = new Uint8Array(k);
  const tailMax = k > 0 ? temper(v.top[k - 1]!.probability, T) : 0;
  for (let j = 0; j < k; j++) {
    const qj = t.qs[j]!;
    // Surely in: even when everything that can overtake j (q > q_j·e^-2k, the unseen tail too if
    // it can) grows and the rest shrinks, the mass before j stays below top-p.
    const p1 = prefixAbove(t.qs, qj / (e * e));
    const ahead = (t.cumulative[p1]! - (j < p1 ? qj : 0)) * e + (tailMax * e * e > qj ? t.unseen * e : 0);
    const rest = (t.zLo - t.cumulative[p1]! - (j < p1 ? 0 : qj)) / e;
    surely[j] = ahead / (ahead + qj / e + Math.max(0, rest)) < pLo ? 1 : 0;
    // Maybe in: when only what must stay ahead of j (q > q_j·e^2k) is before it, shrunk, and the
    // rest grows, the mass before j is below top-p.
    const p2 = Math.min(j, prefixAbove(t.qs, qj * e * e));
    const must = t.cumulative[p2]! / e;
    const others = (t.zLo - t.cumulative[p2]! + t.unseen) * e;
    maybe[j] = surely[j] || must / (must + others) < pHi ? 1 : 0;
  }
  const c = v.claimed;
  let aSure = 0;
  let aMaybe = 0;
  let bSure = 0;
  let bMaybe = 0;
  for (let j = 0; j < k; j++) {
    if (j === c) continue;
    const lower = v.top[j]!.tokenId < v.tokenId;
    const q = t.qs[j]!;
    if (surely[j]) {
      if (lower) aSure += q / e;
      else bSure += q / e;
    }
    if (maybe[j]) {
      if (lower) aMaybe += q * e;
      else bMaybe += q * e;
    }
  }
  // The unseen tail may hold nucleus tokens on either side of the claimed id.
  aMaybe += t.unseen * e;
  bMaybe += t.unseen * e;
  const qc = t.qc * e;
  const lo = aSure / (aSure + qc + bMaybe);
  const hi = bSure === 0 ? 1 : (aMaybe + qc) / (aMaybe + qc + bSure);
  const distance = u < lo ? lo - u : u >= hi ? u - hi : 0;
  return { expectedTokenId, distance, partial };
}

/** The sampler's pick on the nominal distribution (for the record; the unseen tail ignored). */
function nominalPick(v: PositionView, t: Tempered, topP: number, u: number): number {
  const k = t.qs.length;
  if (k === 0) return -1;
  const z = t.zLo - (v.claimed < 0 ? t.qc : 0) + t.unseen;
  let c = 1;
  while (c < k && t.cumulative[c]! < topP * z) c++;
  const order = v.top
    .slice(0, c)
    .map((x, i) => ({ id: x.tokenId, q: t.qs[i]! }))
    .sort((a, b) => a.id - b.id);
  const mass = t.cumulative[c]!;
  let acc = 0;
  for (let i = 0; i < order.length; i++) {
    acc += order[i]!.q;
    if (i === order.length - 1 || u < acc / mass) return order[i]!.id;
  }
  return -1;
}

/**
 * The least noise budget (nats) under which `passes` holds, by bisection up to `max` (returned
 * when even that fails): the calibration statistic of a rule.
 */
export function requiredNoise(passes: (logitNoise: number) => boolean, max = 4): number {
  if (passes(0)) return 0;
  if (!passes(max)) return max;
  let lo = 0;
  let hi = max;
  for (let i = 0; i < 30; i++) {
    const mid = (lo + hi) / 2;
    if (passes(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * Entropy of the tempered nucleus distribution and the surprise −ln q̃ of the claimed token, for
 * the soft drift signal. Only on complete distributions (undefined otherwise).
 */
export function surprise(
  v: PositionView,
  temperature: number,
  topP: number,
): { entropy: number; surprise: number } | undefined {
  if (v.unseen > 0 || v.claimed < 0) return undefined;
  const { qs, zLo } = tempered(v, temperature);
  let mass = 0;
  let n = 0;
  while (n < qs.length && (n === 0 || mass < topP * zLo)) mass += qs[n++]!;
  if (v.claimed >= n) return undefined;
  let entropy = 0;
  for (let i = 0; i < n; i++) {
    const q = qs[i]! / mass;
    if (q > 0) entropy -= q * Math.log(q);
  }
  return { entropy, surprise: -Math.log(qs[v.claimed]! / mass) };
}
