import {
  computeOutputHash,
  computeRequestHash,
  computeTextFee,
  type JobMessage,
  type Receipt,
  receiptTypedData,
} from '@aipg/core';
import type { Address, Hex, LocalAccount } from 'viem';
import type { GenerateResult } from '../backends/types.ts';

export type BuildTextReceiptParameters = {
  job: JobMessage;
  /** The gateway this job came from (its address from the login challenge). */
  gateway: Address;
  /** The bond owner: earnings are credited there (not the operator key that signs). */
  worker: Address;
  result: Pick<GenerateResult, 'promptTokenIds' | 'outputTokenIds' | 'finishReason'>;
  /** The sampler the backend ran (`InferenceBackend.sampler`, as advertised in `hello`). */
  sampler: string;
  /** Unix seconds. */
  completedAt: number;
};

/**
 * The receipt of a text job (docs/DESIGN.md §4): hashes commit to token ids (`requestHash` also to
 * the sampling parameters and the sampler that ran), units are token counts and
 * the fee is `computeTextFee` over the job's pricing, exactly as the gateway recomputes it; `seq` is the
 * receipt number the gateway sent with the job.
 */
export function buildTextReceipt({
  job,
  gateway,
  worker,
  result,
  sampler,
  completedAt,
}: BuildTextReceiptParameters): Receipt {
  const inputTokens = result.promptTokenIds.length;
  const outputTokens = result.outputTokenIds.length;
  return {
    jobId: job.jobId,
    gateway,
    payer: job.payer,
    worker,
    modelId: job.modelId,
    requestHash: computeRequestHash(result.promptTokenIds, job.params, sampler),
    outputHash: computeOutputHash(result.outputTokenIds, result.finishReason),
    inputUnits: BigInt(inputTokens),
    outputUnits: BigInt(outputTokens),
    fee: computeTextFee({
      inputTokens,
      outputTokens,
      rates: {
        inputPerMTokens: BigInt(job.pricing.inputPerMTokens),
        outputPerMTokens: BigInt(job.pricing.outputPerMTokens),
      },
      confidential: job.confidential,
      confidentialPremiumBps: job.pricing.confidentialPremiumBps,
    }),
    completedAt: BigInt(completedAt),
    confidential: job.confidential,
    seq: BigInt(job.seq),
  };
}

/** EIP-712 signature by the operator key, for the Grid on `chainId`. */
export function signReceipt(
  account: LocalAccount,
  receipt: Receipt,
  chainId: number,
  grid: Address,
): Promise<Hex> {
  return account.signTypedData(receiptTypedData(receipt, chainId, grid));
}
