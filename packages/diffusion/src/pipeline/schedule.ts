/**
 * The noise schedule and the two deterministic samplers. All arithmetic here is IEEE-exact
 * (+, −, ×, ÷, sqrt, Math.round) in float64, rounded to float32 once per value when a latent is
 * stored, so a step is the same on every machine given the UNet's ε.
 *
 * Latents are always in the model's ("variance-preserving") coordinates x_t = √ā_t·x₀ + √(1−ā_t)·ε,
 * what the UNet reads; latents[0] is the seed's noise for both samplers, and the last latent is x₀.
 */

/** Training steps of the schedule (Stable Diffusion's). */
export const TRAIN_STEPS = 1000;
const BETA_START = 0.00085;
const BETA_END = 0.012;

export const SCHEDULERS = ['ddim', 'euler'] as const;
export type Scheduler = (typeof SCHEDULERS)[number];

/**
 * ā_t = Π_{s≤t} (1 − β_s) for Stable Diffusion's "scaled linear" β: β_t = (√β₀ + t/999·(√β₁ − √β₀))².
 */
const ALPHAS_CUMPROD: Float64Array = (() => {
  const a = new Float64Array(TRAIN_STEPS);
  const s0 = Math.sqrt(BETA_START);
  const s1 = Math.sqrt(BETA_END);
  let prod = 1;
  for (let t = 0; t < TRAIN_STEPS; t++) {
    const s = s0 + (t / (TRAIN_STEPS - 1)) * (s1 - s0);
    prod *= 1 - s * s;
    a[t] = prod;
  }
  return a;
})();

/** One step's constants: the UNet's timestep, and ā before and after the step. */
export type StepPlan = { timestep: number; alpha: number; alphaNext: number };

/**
 * The steps of a sampler:
 * - `ddim` (η = 0): integer timesteps, "trailing" spacing (the first at t = 999, so that one step
 *   starts from pure noise), round((steps − i)·1000/steps) − 1; the last step lands on ā = 1 (x₀).
 * - `euler`: diffusers' EulerDiscrete: timesteps linspace(999, 0, steps) (fractional), σ_t =
 *   √((1 − ā_t)/ā_t) interpolated linearly between integer t, and a last step to σ = 0 (x₀).
 */
export function stepPlan(scheduler: Scheduler, steps: number): StepPlan[] {
  const plan: StepPlan[] = [];
  if (scheduler === 'ddim') {
    const ts = Array.from({ length: steps }, (_, i) => Math.round(((steps - i) * TRAIN_STEPS) / steps) - 1);
    for (const [i, t] of ts.entries()) {
      const next = ts[i + 1];
      plan.push({
        timestep: t,
        alpha: ALPHAS_CUMPROD[t]!,
        alphaNext: next === undefined ? 1 : ALPHAS_CUMPROD[next]!,
      });
    }
    return plan;
  }
  const ts = Array.from({ length: steps }, (_, i) =>
    steps === 1 ? TRAIN_STEPS - 1 : ((TRAIN_STEPS - 1) * (steps - 1 - i)) / (steps - 1),
  );
  const alphaOf = (t: number) => {
    const sigma = interpolatedSigma(t);
    return 1 / (sigma * sigma + 1);
  };
  for (const [i, t] of ts.entries()) {
    const next = ts[i + 1];
    plan.push({ timestep: t, alpha: alphaOf(t), alphaNext: next === undefined ? 1 : alphaOf(next) });
  }
  return plan;
}

function sigmaAt(t: number): number {
  const a = ALPHAS_CUMPROD[t]!;
  return Math.sqrt((1 - a) / a);
}

function interpolatedSigma(t: number): number {
  const lo = Math.floor(t);
  if (lo >= TRAIN_STEPS - 1) return sigmaAt(TRAIN_STEPS - 1);
  const f = t - lo;
  return f === 0 ? sigmaAt(lo) : sigmaAt(lo) + f * (sigmaAt(lo + 1) - sigmaAt(lo));
}

/**
 * x_{k+1} from x_k and the guided ε, in place into `out`:
 * - `ddim`: x̂₀ = (x − √(1−ā)·ε)/√ā; x' = √ā'·x̂₀ + √(1−ā')·ε.
 * - `euler`: in σ coordinates z = x/√ā, z' = z + (σ' − σ)·ε; x' = √ā'·z'.
 * (On the same timesteps the two are one update written two ways; they differ by their timesteps.)
 */
export function applyStep(
  scheduler: Scheduler,
  { alpha, alphaNext }: StepPlan,
  x: Float32Array,
  eps: Float32Array,
  out: Float32Array,
): void {
  const sa = Math.sqrt(alpha);
  const sn = Math.sqrt(alphaNext);
  if (scheduler === 'ddim') {
    const s1a = Math.sqrt(1 - alpha);
    const s1n = Math.sqrt(1 - alphaNext);
    for (let i = 0; i < x.length; i++) {
      const e = eps[i]!;
      out[i] = sn * ((x[i]! - s1a * e) / sa) + s1n * e;
    }
    return;
  }
  const sigma = Math.sqrt((1 - alpha) / alpha);
  const sigmaNext = Math.sqrt((1 - alphaNext) / alphaNext);
  const dSigma = sigmaNext - sigma;
  for (let i = 0; i < x.length; i++) out[i] = sn * (x[i]! / sa + dSigma * eps[i]!);
}
