/**
 * The network's canonical sampler (v1). The engine never uses llama.cpp's private RNG: it reads the
 * model's raw next-token distribution and picks the token here, so a validator holding the same
 * distribution (one teacher-forced pass, `engine.score`) can recompute the choice exactly
 * (docs/DESIGN.md §5: a deterministic sampler driven by a seeded uniform, so seeded jobs replay exactly).
 *
 * - temperature 0: greedy, the most probable token (ties: the lowest id).
 * - temperature T > 0: q_i ∝ p_i^(1/T); nucleus: the smallest prefix of the canonical order
 *   (probability descending, then id ascending) whose q-mass reaches `topP`; then inverse CDF with
 *   u = samplerUniform(seed, position) ∈ [0, 1) over the nucleus renormalized, laid out in
 *   token-id order. Id order (not probability order) keeps each token's CDF interval a continuous
 *   function of the probabilities: two near-equal tokens swapping ranks between the worker's
 *   token-by-token pass and the validator's batched pass must not move every interval.
 */
import { createHash } from 'node:crypto';
import { CANONICAL_SAMPLER } from '@aipg/core';

export const SAMPLER_VERSION = CANONICAL_SAMPLER;

/** A next-token distribution: ids and probabilities, probability descending (ties in any order). */
export type Distribution = { ids: ArrayLike<number>; probs: ArrayLike<number> };

export type SamplerParams = { temperature: number; topP: number };

/**
 * u(seed, position) = the first 53 bits of sha256("aipg-sampler-v1" ‖ u64be(seed) ‖ u32be(position))
 * divided by 2^53: uniform in [0, 1), reproducible in any language.
 */
export function samplerUniform(seed: number, position: number): number {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`invalid sampler seed ${seed}`);
  const msg = new Uint8Array(SAMPLER_VERSION.length + 12);
  msg.set(new TextEncoder().encode(SAMPLER_VERSION));
  const view = new DataView(msg.buffer);
  view.setBigUint64(SAMPLER_VERSION.length, BigInt(seed), false);
  view.setUint32(SAMPLER_VERSION.length + 8, position, false);
  const h = createHash('sha256').update(msg).digest();
  const hi = h.readUInt32BE(0); // bits 0–31
  const lo = h.readUInt32BE(4) >>> 11; // bits 32–52
  return (hi * 2 ** 21 + lo) / 2 ** 53;
}

/** Index order of `d`: probability descending, ties by id ascending (only equal runs are sorted). */
function canonicalOrder(d: Distribution): number[] {
  const n = d.ids.length;
  const order = Array.from({ length: n }, (_, i) => i);
  let start = 0;
  while (start < n) {
    let end = start + 1;
    while (end < n && d.probs[end] === d.probs[start]) end++;
    if (end - start > 1) {
      const run = order.slice(start, end).sort((a, b) => d.ids[a]! - d.ids[b]!);
      order.splice(start, end - start, ...run);
    }
    start = end;
  }
  return order;
}

export type SamplingSupport = {
  /** Candidate token ids in id order, with their interval [lo, hi) of the unit CDF. */
  ids: number[];
  lo: number[];
  hi: number[];
};

/**
 * Walks the nucleus in token-id order with each token's CDF interval, until `visit` returns true.
 * O(vocabulary): no sort unless probabilities tie.
 */
function walkSupport(
  d: Distribution,
  params: SamplerParams,
  visit: (id: number, lo: number, hi: number) => boolean,
): void {
  if (d.ids.length === 0) throw new RangeError('empty distribution');
  const order = canonicalOrder(d);
  if (params.temperature === 0) {
    visit(d.ids[order[0]!]!, 0, 1);
    return;
  }
  const inv = 1 / params.temperature;
  let maxId = 0;
  for (let i = 0; i < d.ids.length; i++) maxId = Math.max(maxId, d.ids[i]!);
  const qById = new Float64Array(maxId + 1);
  let total = 0;
  for (let i = 0; i < d.ids.length; i++) {
    const q = d.probs[i]! ** inv;
    qById[d.ids[i]!] = q;
    total += q;
  }
  // Nucleus: the smallest canonical prefix with mass ≥ topP (at least one token).
  const kept = new Uint8Array(maxId + 1);
  let count = 0;
  let mass = 0;
  for (const i of order) {
    if (count > 0 && mass >= params.topP * total) break;
    kept[d.ids[i]!] = 1;
    mass += qById[d.ids[i]!]!;
    count++;
  }
  let acc = 0;
  let seen = 0;
  for (let id = 0; id <= maxId; id++) {
    if (!kept[id]) continue;
    const lo = acc / mass;
    acc += qById[id]!;
    const hi = ++seen === count ? 1 : acc / mass;
    if (visit(id, lo, hi)) return;
  }
}

/**
 * The nucleus the sampler draws from, as CDF intervals. Greedy: the single best token with [0, 1).
 */
export function samplingSupport(d: Distribution, params: SamplerParams): SamplingSupport {
  const support: SamplingSupport = { ids: [], lo: [], hi: [] };
  walkSupport(d, params, (id, lo, hi) => {
    support.ids.push(id);
    support.lo.push(lo);
    support.hi.push(hi);
    return false;
  });
  return support;
}

/** The token the canonical sampler picks with uniform `u` (ignored when greedy). */
export function sampleToken(d: Distribution, params: SamplerParams, u: number): number {
  let picked = -1;
  walkSupport(d, params, (id, _lo, hi) => {
    picked = id;
    return u < hi;
  });
  return picked;
}

export type ReplayCheck = {
  /** The token the canonical sampler picks from this distribution. */
  expectedTokenId: number;
  /**
   * How far the claimed token is from being the sampler's pick: 0 when it is. Greedy: the
   * probability gap p(best) − p(claimed). Seeded: the distance from u to the claimed token's CDF
   * interval, or 1 when the claimed token is outside the nucleus. Compare against a tolerance
   * (numerical noise moves probabilities by ~1e-4 between batch shapes and machines).
   */
  distance: number;
};

export function replayCheck(d: Distribution, params: SamplerParams, u: number, claimed: number): ReplayCheck {
  const expected = sampleToken(d, params, u);
  if (expected === claimed) return { expectedTokenId: expected, distance: 0 };
  if (params.temperature === 0) {
    let pClaimed = 0;
    let pBest = 0;
    for (let i = 0; i < d.ids.length; i++) {
      if (d.ids[i] === claimed) pClaimed = d.probs[i]!;
      if (d.ids[i] === expected) pBest = d.probs[i]!;
    }
    return { expectedTokenId: expected, distance: pBest - pClaimed };
  }
  const s = samplingSupport(d, params);
  const k = s.ids.indexOf(claimed);
  if (k < 0) return { expectedTokenId: expected, distance: 1 };
  const distance = u < s.lo[k]! ? s.lo[k]! - u : u - s.hi[k]!;
  return { expectedTokenId: expected, distance: Math.max(0, distance) };
}
