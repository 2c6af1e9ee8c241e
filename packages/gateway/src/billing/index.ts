import { computeTextFee, type RateCard } from '@aipg/core';
import { type Address, formatUnits } from 'viem';
import type { Chain } from '../chain/index.ts';
import { chainFailure, type PayerFunds } from '../chain/index.ts';
import { GatewayError } from '../errors.ts';
import type { NewJob, Storage } from '../storage/index.ts';

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

/** Balances and fees: what a payer can spend here, and the 402 when a job's maximum fee does not fit. */
export function createBilling({ storage, chain }: { storage: Storage; chain: Chain }) {
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
     * What `payer` may spend through this gateway before what it already owes here: the deposit less a
     * requested withdrawal, capped by the gateway's allowance. From cached chain reads; `fresh` reads
     * the chain again (a deposit a moment ago counts). The job that holds it is jobs' to insert.
     */
    async spendable(payer: Address, fresh = false): Promise<{ funds: PayerFunds; spendable: bigint }> {
      const f = await funds(payer, fresh);
      return { funds: f, spendable: spendable(f) };
    },

    /** The 402 for a job its payer cannot afford: what it may cost, what is available and why. */
    insufficient(
      job: Pick<NewJob, 'reservedFee'>,
      f: PayerFunds,
      held: { unsettled: bigint; reserved: bigint },
    ): GatewayError {
      const available = spendable(f) - held.unsettled - held.reserved;
      return new GatewayError(
        'insufficient_balance',
        `insufficient balance: this request may cost up to ${aipg(job.reservedFee)} AIPG, but ${aipg(
          available > 0n ? available : 0n,
        )} AIPG is available to this gateway (deposit ${aipg(f.balance - f.withdrawRequested)}, approved ${aipg(
          f.allowance,
        )}, unsettled ${aipg(held.unsettled)}, in flight ${aipg(held.reserved)}); deposit more AIPG, approve gateway ${
          chain.gateway
        } for more, or lower max_tokens`,
      );
    },
  };
}
