import {
  computeOutputHash,
  computeRequestHash,
  feeAtPricing,
  type JobMessage,
  type Receipt,
  receiptDigestBytes,
  receiptTypedData,
  signReceiptDigest,
} from '@aipg/core';
import { type Address, type Hex, hexToBytes, type LocalAccount } from 'viem';
import { type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts';
import type { GenerateResult } from '../backends/types.ts';

export type BuildTextReceiptParameters = {
  job: JobMessage;
  /** The receipt number: the job's `seq`, or the one its `job-seq` frame brought. */
  seq: bigint;
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
 * the fee is `feeAtPricing` over the job's pricing, exactly as the gateway recomputes it; `seq` is the
 * receipt number the gateway sent with the job (or after it).
 */
export function buildTextReceipt({
  job,
  seq,
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
    fee: feeAtPricing(job.pricing, { inputTokens, outputTokens, confidential: job.confidential }),
    completedAt: BigInt(completedAt),
    confidential: job.confidential,
    seq,
  };
}

/**
 * Operator keys of the accounts made by `operatorAccount`, for `signReceipt` to sign with
 * libsecp256k1: kept off the account object, so no log or serialization of it carries the key.
 */
const signingKeys = new WeakMap<LocalAccount, Uint8Array>();

/**
 * The worker's operator account (viem's `privateKeyToAccount`), its key remembered for `signReceipt`,
 * which then signs receipts natively (~50 µs) instead of through viem's JS signer (~1 ms).
 */
export function operatorAccount(privateKey: Hex): PrivateKeyAccount {
  const account = privateKeyToAccount(privateKey);
  signingKeys.set(account, hexToBytes(privateKey));
  return account;
}

/**
 * EIP-712 signature by the operator key, for the Grid on `chainId`: byte for byte what
 * `account.signTypedData(receiptTypedData(receipt, chainId, grid))` returns. An account made by
 * `operatorAccount` signs `receiptDigest` with libsecp256k1; any other through `signTypedData`.
 */
export function signReceipt(
  account: LocalAccount,
  receipt: Receipt,
  chainId: number,
  grid: Address,
): Promise<Hex> {
  const key = signingKeys.get(account);
  if (key === undefined) return account.signTypedData(receiptTypedData(receipt, chainId, grid));
  let digest: Uint8Array;
  try {
    digest = receiptDigestBytes(receipt, chainId, grid);
  } catch (error) {
    return Promise.reject(error);
  }
  return signReceiptDigest(key, digest);
}
