import { computeImageFee } from '@aipg/core';
import { expect, test } from 'vitest';
import {
  formatAipg,
  formatBps,
  formatCompact,
  formatDuration,
  formatMemory,
  formatParams,
  formatPercent,
  formatRelative,
  formatSeconds,
  formatSize,
  imageFeeWei,
  shortAddress,
} from '../app/format.ts';

const AIPG = 10n ** 18n;

test('AIPG amounts: separators, at most 4 decimals, small fees keep 3 significant digits', () => {
  expect(formatAipg(1_000n * AIPG)).toBe('1,000');
  expect(formatAipg(1_234_567n * AIPG + AIPG / 2n)).toBe('1,234,567.5');
  expect(formatAipg((12_345n * AIPG) / 10_000n)).toBe('1.2345');
  expect(formatAipg(368_000_000_000_000n)).toBe('0.000368');
  expect(formatAipg(33_000_000_000_000n)).toBe('0.000033');
  expect(formatAipg(1n)).toBe('0.000000000000000001');
  expect(formatAipg(0n)).toBe('0');
  expect(formatAipg('-2500000000000000000')).toBe('-2.5');
  expect(formatAipg(null)).toBe('—');
});

test('durations, countdowns and relative times read like a person would say them', () => {
  expect(formatDuration(0.4)).toBe('0.4 ms');
  expect(formatDuration(9.6)).toBe('9.6 ms');
  expect(formatDuration(850)).toBe('850 ms');
  expect(formatDuration(1_250)).toBe('1.3 s');
  expect(formatDuration(125_000)).toBe('2 min 5 s');
  expect(formatDuration(null)).toBe('—');
  expect(formatSeconds(29)).toBe('29 s');
  expect(formatSeconds(3 * 3600 + 20 * 60)).toBe('3 h 20 min');
  expect(formatSeconds(7 * 86_400 - 3600)).toBe('6 d 23 h');
  const now = Date.parse('2026-11-24T12:00:00Z');
  expect(formatRelative('2026-11-24T11:59:58Z', now)).toBe('just now');
  expect(formatRelative('2026-11-24T11:59:48Z', now)).toBe('12 s ago');
  expect(formatRelative('2026-11-24T11:55:00Z', now)).toBe('5 min ago');
  expect(formatRelative('2026-11-24T12:02:00Z', now)).toBe('in 2 min');
  expect(formatRelative('2026-11-22T12:00:00Z', now)).toBe('2 d ago');
  expect(formatRelative('2026-09-01T12:00:00Z', now)).toBe('Sep 1, 2026');
});

test('counts, rates and hardware', () => {
  expect(formatCompact(7)).toBe('7');
  expect(formatCompact(9_999)).toBe('9,999');
  expect(formatCompact(12_345)).toBe('12.3K');
  expect(formatCompact('4200000')).toBe('4.2M');
  expect(formatBps(2_500)).toBe('25%');
  expect(formatBps(2_500, true)).toBe('+25%');
  expect(formatPercent(0.987)).toBe('98.7%');
  expect(formatPercent(null)).toBe('—');
  expect(formatMemory(24_564)).toBe('24 GB');
  expect(formatMemory(512)).toBe('512 MB');
  expect(formatParams('113000')).toBe('113K');
  expect(formatParams(7_000_000_000)).toBe('7B');
  expect(shortAddress('0x90F79bf6EB2c4f870365E785982E1f101E93b906')).toBe('0x90F7…b906');
});

test('image prices: exactly the grid’s megapixel-step fee, rounded up once', () => {
  const rate = AIPG / 100n; // 0.01 AIPG per megapixel-step
  const example = { width: 1024, height: 1024, steps: 20, n: 1 };
  expect(imageFeeWei(rate, example)).toBe(209_715_200_000_000_000n);
  expect(formatAipg(imageFeeWei(rate, example))).toBe('0.2097');
  for (const [params, r] of [
    [example, rate],
    [{ width: 128, height: 64, steps: 6, n: 2 }, rate],
    [{ width: 512, height: 768, steps: 7, n: 3 }, 333_333_333_333_333n],
    [{ width: 8, height: 8, steps: 1, n: 1 }, 7n], // 448 / 10⁶ wei: rounds up to 1
    [example, 0n],
  ] as const) {
    expect(imageFeeWei(r.toString(), params)).toBe(
      computeImageFee({ params, rates: { perMegapixelStep: r } }),
    );
  }
  expect(imageFeeWei(7n, { width: 8, height: 8, steps: 1, n: 1 })).toBe(1n);
  expect(formatSize('1024x1024')).toBe('1024×1024');
  expect(formatSize(null)).toBe('—');
});
