import { describe, expect, it } from 'vitest';
import { computeModelId } from '../src/model.ts';
import { computeTextFee, splitGross } from '../src/pricing.ts';
import { formatAipg, parseAipg } from '../src/units.ts';

const rates = { inputPerMTokens: 2_000_000n, outputPerMTokens: 6_000_000n };

describe('computeTextFee', () => {
  it('charges per million tokens', () => {
    expect(computeTextFee({ inputTokens: 1_000_000, outputTokens: 0, rates })).toBe(2_000_000n);
    expect(computeTextFee({ inputTokens: 500_000, outputTokens: 500_000, rates })).toBe(4_000_000n);
  });
  it('rounds up once so a job at a non-zero rate never costs 0', () => {
    expect(
      computeTextFee({
        inputTokens: 1,
        outputTokens: 0,
        rates: { inputPerMTokens: 1n, outputPerMTokens: 1n },
      }),
    ).toBe(1n);
    expect(computeTextFee({ inputTokens: 0, outputTokens: 0, rates })).toBe(0n);
    // 3 input tokens at 2 wei/M-token = 6e-6 wei → 1 wei
    expect(
      computeTextFee({
        inputTokens: 3,
        outputTokens: 0,
        rates: { inputPerMTokens: 2n, outputPerMTokens: 0n },
      }),
    ).toBe(1n);
  });
  it('applies the confidential premium only to confidential jobs', () => {
    const base = { inputTokens: 1_000_000, outputTokens: 0, rates, confidentialPremiumBps: 2_500 };
    expect(computeTextFee(base)).toBe(2_000_000n);
    expect(computeTextFee({ ...base, confidential: true })).toBe(2_500_000n);
  });
  it('rejects negative or fractional token counts', () => {
    expect(() => computeTextFee({ inputTokens: -1, outputTokens: 0, rates })).toThrow(RangeError);
    expect(() => computeTextFee({ inputTokens: 1.5, outputTokens: 0, rates })).toThrow(RangeError);
  });
});

describe('splitGross', () => {
  it('loses nothing to rounding', () => {
    for (const gross of [0n, 1n, 7n, 9_999n, 10_001n, 123_456_789n]) {
      const s = splitGross(gross, { workerBps: 8_000, validatorBps: 1_500 });
      expect(s.worker + s.validator + s.protocol).toBe(gross);
      expect(s.worker).toBe((gross * 8_000n) / 10_000n);
    }
  });
});

describe('AIPG units', () => {
  it('parses and formats', () => {
    expect(parseAipg('1000')).toBe(1_000n * 10n ** 18n);
    expect(parseAipg('0.5')).toBe(5n * 10n ** 17n);
    expect(formatAipg(1_234_567n * 10n ** 17n)).toBe('123,456.7');
    expect(formatAipg(0n)).toBe('0');
    expect(formatAipg(1n)).toBe('0.000000000000000001');
    // below 1 AIPG: significant digits, so a small fee never reads as 0
    expect(formatAipg(17_500_000_000_000n)).toBe('0.0000175');
    expect(formatAipg(123_456_789n * 10n ** 6n)).toBe('0.0001234');
    expect(formatAipg(15n * 10n ** 17n + 17_500_000_000_000n)).toBe('1.5');
  });
  it('rejects junk, negatives and too many decimals', () => {
    for (const bad of ['', '-1', '1e18', 'abc', '1.0000000000000000001', '1,000']) {
      expect(() => parseAipg(bad)).toThrow(/invalid AIPG amount/);
    }
  });
});

describe('computeModelId', () => {
  it('depends on name and weights', () => {
    const w = `0x${'11'.repeat(32)}` as const;
    expect(computeModelId('a', w)).not.toBe(computeModelId('b', w));
    expect(computeModelId('a', w)).not.toBe(computeModelId('a', `0x${'12'.repeat(32)}`));
  });
});
