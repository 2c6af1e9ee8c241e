import { describe, expect, test } from 'vitest';
import { replayCheck, samplerUniform, sampleToken, samplingSupport } from '../src/index.ts';

const dist = (pairs: [number, number][]) => ({
  ids: pairs.map(([id]) => id),
  probs: pairs.map(([, p]) => p),
});

describe('samplerUniform', () => {
  test('is reproducible, in [0, 1), and differs by seed and position', () => {
    expect(samplerUniform(42, 0)).toBe(samplerUniform(42, 0));
    const values = new Set<number>();
    for (let s = 0; s < 20; s++)
      for (let p = 0; p < 20; p++) {
        const u = samplerUniform(s, p);
        expect(u).toBeGreaterThanOrEqual(0);
        expect(u).toBeLessThan(1);
        values.add(u);
      }
    expect(values.size).toBe(400);
    expect(samplerUniform(Number.MAX_SAFE_INTEGER, 7)).toBeLessThan(1);
    expect(() => samplerUniform(-1, 0)).toThrow(RangeError);
  });
});

describe('sampleToken', () => {
  const d = dist([
    [7, 0.5],
    [3, 0.3],
    [9, 0.15],
    [1, 0.05],
  ]);

  test('greedy picks the most probable token, ties by lowest id', () => {
    expect(sampleToken(d, { temperature: 0, topP: 1 }, 0.99)).toBe(7);
    const tie = dist([
      [8, 0.4],
      [2, 0.4],
      [5, 0.2],
    ]);
    expect(sampleToken(tie, { temperature: 0, topP: 1 }, 0)).toBe(2);
  });

  test('nucleus keeps the smallest probable prefix, laid out by token id', () => {
    const s = samplingSupport(d, { temperature: 1, topP: 0.8 });
    expect(s.ids).toEqual([3, 7]);
    expect(s.lo[0]).toBe(0);
    expect(s.hi[0]).toBeCloseTo(0.3 / 0.8);
    expect(s.hi[1]).toBe(1);
    expect(sampleToken(d, { temperature: 1, topP: 0.8 }, 0.2)).toBe(3);
    expect(sampleToken(d, { temperature: 1, topP: 0.8 }, 0.9)).toBe(7);
  });

  test('low temperature sharpens, high temperature flattens', () => {
    const cold = samplingSupport(d, { temperature: 0.1, topP: 1 });
    const hot = samplingSupport(d, { temperature: 5, topP: 1 });
    const width = (s: typeof cold, id: number) => s.hi[s.ids.indexOf(id)]! - s.lo[s.ids.indexOf(id)]!;
    expect(width(cold, 7)).toBeGreaterThan(0.99);
    expect(width(hot, 7)).toBeLessThan(0.35);
  });

  test('empirical frequencies follow the distribution', () => {
    const counts = new Map<number, number>();
    for (let i = 0; i < 4000; i++) {
      const t = sampleToken(d, { temperature: 1, topP: 1 }, samplerUniform(1, i));
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    expect((counts.get(7) ?? 0) / 4000).toBeCloseTo(0.5, 1);
    expect((counts.get(1) ?? 0) / 4000).toBeCloseTo(0.05, 1);
  });
});

describe('replayCheck', () => {
  const d = dist([
    [7, 0.5],
    [3, 0.3],
    [9, 0.2],
  ]);

  test('greedy: distance is the probability gap', () => {
    expect(replayCheck(d, { temperature: 0, topP: 1 }, 0, 7)).toEqual({ expectedTokenId: 7, distance: 0 });
    const r = replayCheck(d, { temperature: 0, topP: 1 }, 0, 9);
    expect(r.expectedTokenId).toBe(7);
    expect(r.distance).toBeCloseTo(0.3);
  });

  test('seeded: distance from u to the claimed interval, 1 outside the nucleus', () => {
    // id order: 3 [0, .3), 7 [.3, .8), 9 [.8, 1)
    const p = { temperature: 1, topP: 1 };
    expect(replayCheck(d, p, 0.5, 7)).toEqual({ expectedTokenId: 7, distance: 0 });
    expect(replayCheck(d, p, 0.31, 3).distance).toBeCloseTo(0.01);
    expect(replayCheck(d, { temperature: 1, topP: 0.5 }, 0.5, 9)).toEqual({
      expectedTokenId: 7,
      distance: 1,
    });
  });
});
