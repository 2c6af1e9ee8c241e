/**
 * Seeded randomness from integer and IEEE-exact arithmetic only (+, −, ×, ÷, sqrt), never
 * Math.log/cos/exp whose last bits may differ between JavaScript engines: the same seed gives the
 * same weights and the same initial noise on every machine, so the pinned hashes and trajectory
 * roots hold everywhere.
 */

/** splitmix32: uniform floats in [0, 1) with 32 bits of randomness each. */
export function splitmix32(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

const SQRT3 = Math.sqrt(3);

/**
 * Standard normal samples, Irwin–Hall style: four uniforms, mean 0, variance 1 (tails cut at ±3.46).
 * Box–Muller would need Math.log and Math.cos.
 */
export function gaussian(seed: number): () => number {
  const u = splitmix32(seed);
  return () => (u() + u() + u() + u() - 2) * SQRT3;
}
