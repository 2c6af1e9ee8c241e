import { formatUnits, parseUnits } from 'viem';
import { InvalidInputError } from './errors.ts';

export const AIPG_DECIMALS = 18;

/** AIPG on Base (the production token). Local chains deploy their own test AIPG. */
export const AIPG_BASE_ADDRESS = '0xa1c0deCaFE3E9Bf06A5F29B7015CD373a9854608' as const;

/** Parses a human amount ("1000", "12.5") into wei; rejects negatives, junk and too many decimals. */
export function parseAipg(amount: string): bigint {
  const s = amount.trim();
  if (!/^\d+(\.\d+)?$/.test(s))
    throw new InvalidInputError(`invalid AIPG amount "${amount}"`, 'expected a number such as 1000 or 12.5');
  const decimals = s.split('.')[1]?.length ?? 0;
  if (decimals > AIPG_DECIMALS)
    throw new InvalidInputError(`invalid AIPG amount "${amount}"`, `at most ${AIPG_DECIMALS} decimals`);
  return parseUnits(s, AIPG_DECIMALS);
}

/**
 * Formats wei as AIPG for people: thousands separators and at most `maxDecimals` decimals, trailing
 * zeros dropped. An amount below 1 AIPG keeps `maxDecimals` significant digits instead, so a
 * per-request fee of 0.0000175 AIPG never reads as 0.
 */
export function formatAipg(wei: bigint, maxDecimals = 4): string {
  const negative = wei < 0n;
  const [int = '0', frac = ''] = formatUnits(negative ? -wei : wei, AIPG_DECIMALS).split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const leadingZeros = int === '0' ? (/^0*/.exec(frac)?.[0].length ?? 0) : 0;
  const trimmed = frac.slice(0, leadingZeros + maxDecimals).replace(/0+$/, '');
  return `${negative ? '-' : ''}${grouped}${trimmed ? `.${trimmed}` : ''}`;
}
