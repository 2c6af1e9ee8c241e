import { computeTextFee, type RateCard } from '@aipg/core';
import { type Address, formatUnits } from 'viem';
import type { Chain } from '../chain/index.ts';
import { chainFailure, type PayerFunds } from '../chain/index.ts';
import type { Common } from '../common.ts';
import { GatewayError } from '../errors.ts';
import type { ApiKeyRecord, NewJob, Storage } from '../storage/index.ts';
import type { FirstDispatch } from '../storage/jobs.ts';

export type Balance = {
  payer: Address;
  deposit: bigint;
  withdrawRequested: bigint;
  allowance: bigint;
  /** Fees of stored receipts not yet settled on chain. */
  unsettled: bigint;
  /** Maximum fees held by jobs in flight. */
  reserved: bigint;
  /** What a new request may still spend through this gateway. */
  available: bigint;
};

/** AIPG decimal string of a wei amount, full precision ("0.000012"). */
export function aipg(wei: bigint): string {
  return formatUnits(wei, 18);
}

/** The most a job can cost: its prompt as the gateway tokenized it, and `maxTokens` of output. */
export function maxFee(p: {
  inputTokens: number;
  maxTokens: number;
  rates: Pick<RateCard, 'inputPerMTokens' | 'outputPerMTokens'>;
  confidential: boolean;
  premiumBps: number;
}): bigint {
  return computeTextFee({
    inputTokens: p.inputTokens,
    outputTokens: p.maxTokens,
    rates: p.rates,
    confidential: p.confidential,
    confidentialPremiumBps: p.premiumBps,
  });
}

export type Billing = ReturnType<typeof createBilling>;

/** Balances and fees: what a payer can spend here, and the reservation that holds a job's maximum fee. */
export function createBilling({
  common,
  storage,
  chain,
}: {
  common: Common;
  storage: Storage;
  chain: Chain;
}) {
  const { options } = common;

  async function funds(payer: Address, fresh = false) {
    try {
      return await chain.payerFunds(payer, { fresh });
    } catch (error) {
      throw chainFailure(error, 'payer deposit');
    }
  }

  function spendable(f: { balance: bigint; withdrawRequested: bigint; allowance: bigint }): bigint {
    // A requested withdrawal leaves the escrow after its delay: never lend against it.
    const deposit = f.balance - f.withdrawRequested;
    // biome-ignore lint/complexity/useMathMinMax: bigints (Math.min takes numbers only)
    return deposit < f.allowance ? deposit : f.allowance;
  }

  /**
   * Reserves `job.reservedFee` against `f` and inserts the job, under the payer's row lock (one
   * statement). Returns true (nothing done) when the funds fall short and `final` is false: the caller
   * reads the chain again; with `final`, a shortfall is 402. Inserted: `{ seq }`, the first dispatch's
   * receipt number when one was asked and given.
   */
  async function reserveWith(
    job: NewJob,
    f: PayerFunds,
    final: boolean,
    dispatch: FirstDispatch | undefined,
  ): Promise<{ seq: bigint | undefined } | undefined> {
    const { inserted, unsettled, reserved, seq } = await storage.jobs.insertReserved(
      job,
      spendable(f),
      dispatch,
    );
    if (inserted) return { seq };
    if (!final) return undefined;
    const available = spendable(f) - unsettled - reserved;
    throw new GatewayError(
      'insufficient_balance',
      `insufficient balance: this request may cost up to ${aipg(job.reservedFee)} AIPG, but ${aipg(
        available > 0n ? available : 0n,
      )} AIPG is available to this gateway (deposit ${aipg(f.balance - f.withdrawRequested)}, approved ${aipg(
        f.allowance,
      )}, unsettled ${aipg(unsettled)}, in flight ${aipg(reserved)}); deposit more AIPG, approve gateway ${
        chain.gateway
      } for more, or lower max_tokens`,
    );
  }

  return {
    async balance(payer: Address): Promise<Balance> {
      const f = await funds(payer);
      const { unsettled, reserved } = await storage.payerSpend(payer);
      const available = spendable(f) - unsettled - reserved;
      return {
        payer,
        deposit: f.balance,
        withdrawRequested: f.withdrawRequested,
        allowance: f.allowance,
        unsettled,
        reserved,
        available: available > 0n ? available : 0n,
      };
    },

    /**
     * Inserts `job` holding `job.reservedFee` if the payer can afford it, atomically with the check
     * (a per-payer row lock): concurrent requests can never together overspend. 402 otherwise. With
     * `dispatch`, the same statement numbers the job's first dispatch: returns that receipt number.
     */
    async reserve(job: NewJob, dispatch?: FirstDispatch): Promise<bigint | undefined> {
      // Cached funds first; before refusing, the chain is read again (a deposit a moment ago counts).
      let f = await funds(job.payer);
      for (let attempt = 0; ; attempt++) {
        const done = await reserveWith(job, f, attempt > 0, dispatch);
        if (done) return done.seq;
        f = await funds(job.payer, true);
      }
    },
  };
}
