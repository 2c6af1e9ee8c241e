/**
 * ‖a − b‖₂ / ‖b‖₂ in float64, `b` the reference (the committed latent): 0 for an honest re-step on the
 * same class of machine. A zero reference gives 0 when `a` is zero too, else Infinity.
 */
export function relativeL2(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError(`relativeL2: lengths differ (${a.length} and ${b.length})`);
  let diff = 0;
  let ref = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    diff += d * d;
    ref += b[i]! * b[i]!;
  }
  if (ref === 0) return diff === 0 ? 0 : Number.POSITIVE_INFINITY;
  return Math.sqrt(diff / ref);
}
