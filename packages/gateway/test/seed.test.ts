import { describe, expect, it } from 'vitest';
import { samplingSeed } from '../src/jobs/index.ts';

const jobId = `0x${'ab12cd34ef56'}${'0'.repeat(52)}` as const;

describe('samplingSeed', () => {
  it('keeps the client’s seed', () => {
    expect(samplingSeed({ temperature: 0.8, seed: 7 }, jobId)).toBe(7);
    expect(samplingSeed({ temperature: 0, seed: 7 }, jobId)).toBe(7);
  });
  it('leaves greedy jobs unseeded', () => {
    expect(samplingSeed({ temperature: 0, seed: null }, jobId)).toBeNull();
  });
  it('gives an unseeded sampled job a seed from its job id, so it can be replayed', () => {
    const seed = samplingSeed({ temperature: 0.8, seed: null }, jobId);
    expect(seed).toBe(0xab12cd34ef56);
    expect(Number.isSafeInteger(seed)).toBe(true);
    const other = samplingSeed({ temperature: 0.8, seed: null }, `0x${'ff'.repeat(32)}`);
    expect(other).toBe(0xffffffffffff);
    expect(Number.isSafeInteger(other)).toBe(true);
  });
});
