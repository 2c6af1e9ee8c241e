import { describe, expect, test } from 'vitest';
import { applyStep, stepPlan } from '../src/pipeline/schedule.ts';

describe('stepPlan', () => {
  test('ddim: trailing integer timesteps from 999, ending on ā = 1', () => {
    expect(stepPlan('ddim', 1).map((p) => p.timestep)).toEqual([999]);
    expect(stepPlan('ddim', 8).map((p) => p.timestep)).toEqual([999, 874, 749, 624, 499, 374, 249, 124]);
    const plan = stepPlan('ddim', 50);
    expect(plan.at(-1)!.alphaNext).toBe(1);
    for (const [i, p] of plan.entries()) {
      expect(p.alphaNext).toBeGreaterThan(p.alpha);
      if (i > 0) expect(p.alpha).toBe(plan[i - 1]!.alphaNext);
    }
    // Stable Diffusion's scaled-linear schedule: ā₉₉₉ ≈ 0.0047.
    expect(plan[0]!.alpha).toBeCloseTo(0.00466, 5);
  });

  test('euler: linspace timesteps from 999 to 0, then σ = 0', () => {
    expect(stepPlan('euler', 4).map((p) => p.timestep)).toEqual([999, 666, 333, 0]);
    expect(stepPlan('euler', 3).map((p) => p.timestep)).toEqual([999, 499.5, 0]);
    expect(stepPlan('euler', 1).map((p) => p.timestep)).toEqual([999]);
    const plan = stepPlan('euler', 4);
    expect(plan[0]!.alpha).toBeCloseTo(stepPlan('ddim', 1)[0]!.alpha, 12);
    expect(plan.at(-1)!.alphaNext).toBe(1);
  });
});

describe('applyStep', () => {
  test('with the true noise, ddim and euler both land on x₀ in one step', () => {
    const x0 = Float32Array.of(0.5, -1, 2);
    const eps = Float32Array.of(1, 0.25, -0.5);
    for (const scheduler of ['ddim', 'euler'] as const) {
      const plan = stepPlan(scheduler, 1)[0]!;
      const x = x0.map((v, i) => Math.sqrt(plan.alpha) * v + Math.sqrt(1 - plan.alpha) * eps[i]!);
      const out = new Float32Array(3);
      applyStep(scheduler, plan, x, eps, out);
      for (let i = 0; i < 3; i++) expect(out[i]).toBeCloseTo(x0[i]!, 3);
    }
  });
});
