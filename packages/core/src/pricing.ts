import type { RateCard } from './model.ts';

export const BPS = 10_000n;
const MILLION = 1_000_000n;

export type TextFeeParameters = {
  inputTokens: number;
  outputTokens: number;
  rates: Pick<RateCard, 'inputPerMTokens' | 'outputPerMTokens'>;
  confidential?: boolean;
  confidentialPremiumBps?: number;
};

function ceilDiv(a: bigint, b: bigint): bigint {
  return a === 0n ? 0n : (a - 1n) / b + 1n;
}

/**
 * Fee of one text job in AIPG wei. Rounded up once at the end (a job never costs 0 when
 * tokens ran at a non-zero rate); the confidential premium multiplies the whole fee.
 * Worker and gateway both compute it and the receipt commits to it, so it must stay exact.
 */
export function computeTextFee({
  inputTokens,
  outputTokens,
  rates,
  confidential = false,
  confidentialPremiumBps = 0,
}: TextFeeParameters): bigint {
  if (!Number.isSafeInteger(inputTokens) || inputTokens < 0)
    throw new RangeError('inputTokens must be a non-negative integer');
  if (!Number.isSafeInteger(outputTokens) || outputTokens < 0)
    throw new RangeError('outputTokens must be a non-negative integer');
  const base = BigInt(inputTokens) * rates.inputPerMTokens + BigInt(outputTokens) * rates.outputPerMTokens;
  const premium = confidential ? BPS + BigInt(confidentialPremiumBps) : BPS;
  return ceilDiv(base * premium, MILLION * BPS);
}

/** A job's pricing as it travels and is stored: the rate card in decimal strings, and the premium. */
export type JobPricing = {
  inputPerMTokens: string;
  outputPerMTokens: string;
  confidentialPremiumBps: number;
};

/**
 * The fee of a text job at the pricing it carries: what the worker signs, the gateway checks and a
 * validator recomputes, so all three read the pricing the same way.
 */
export function feeAtPricing(
  pricing: JobPricing,
  {
    inputTokens,
    outputTokens,
    confidential,
  }: { inputTokens: number; outputTokens: number; confidential: boolean },
): bigint {
  return computeTextFee({
    inputTokens,
    outputTokens,
    rates: {
      inputPerMTokens: BigInt(pricing.inputPerMTokens),
      outputPerMTokens: BigInt(pricing.outputPerMTokens),
    },
    confidential,
    confidentialPremiumBps: pricing.confidentialPremiumBps,
  });
}

/** Upper bound of a text job's fee before it runs, for the 402 check (all of max_tokens used). */
export function maxTextFee(params: TextFeeParameters): bigint {
  return computeTextFee(params);
}

/** Splits a worker's gross exactly as PaymentsFacet.settle does (protocol takes the rounding remainder). */
export function splitGross(gross: bigint, shares: { workerBps: number; validatorBps: number }) {
  const worker = (gross * BigInt(shares.workerBps)) / BPS;
  const validator = (gross * BigInt(shares.validatorBps)) / BPS;
  return { worker, validator, protocol: gross - worker - validator };
}
