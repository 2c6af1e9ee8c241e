import {
  computeOutputHash,
  computeRequestHash,
  computeTextFee,
  type Receipt,
  type ResultMessage,
  receiptFromJson,
  receiptTypedData,
  type SamplingParams,
} from '@aipg/core';
import { type Address, type Hex, recoverTypedDataAddress } from 'viem';
import type { JobPricing } from '../storage/index.ts';

export type ReceiptExpectation = {
  jobId: Hex;
  /** The receipt number this dispatch was given: the receipt must carry exactly it. */
  seq: bigint;
  gateway: Address;
  payer: Address;
  /** The worker's bond owner (receipts name the owner). */
  worker: Address;
  /** The operator key the worker logged in with: must be the signer. */
  operator: Address;
  modelId: Hex;
  params: SamplingParams;
  pricing: JobPricing;
  confidential: boolean;
  chainId: number;
  grid: Address;
  /** When the job was sent to this worker (ms): `completedAt` may not precede it (minus skew). */
  dispatchedAt: number;
  now: number;
  clockSkewSec: number;
  /** Token ids the worker streamed, when it streamed: they must be the output. */
  streamedTokenIds: readonly number[] | null;
};

export type ReceiptVerdict = { ok: true; receipt: Receipt } | { ok: false; reason: string; field: string };

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Checks a worker's `result` against what the gateway expects, field by field, then the EIP-712
 * signature. The receipt must commit to exactly the token ids returned, the parameters sent, the
 * counts of those tokens, and the fee those counts cost at the rate card the job was priced with.
 */
export async function verifyResult(frame: ResultMessage, x: ReceiptExpectation): Promise<ReceiptVerdict> {
  const fail = (field: string, reason: string): ReceiptVerdict => ({ ok: false, field, reason });
  const r = receiptFromJson(frame.receipt);
  if (!same(frame.jobId, x.jobId) || !same(r.jobId, x.jobId))
    return fail('jobId', 'receipt is for another job');
  if (r.seq !== x.seq) return fail('seq', `receipt carries number ${r.seq}, the job was sent as ${x.seq}`);
  if (!same(r.gateway, x.gateway)) return fail('gateway', `receipt names gateway ${r.gateway}`);
  if (!same(r.payer, x.payer)) return fail('payer', `receipt names payer ${r.payer}`);
  if (!same(r.worker, x.worker))
    return fail('worker', `receipt names worker ${r.worker}, the bond owner is ${x.worker}`);
  if (!same(r.modelId, x.modelId)) return fail('modelId', 'receipt names another model');
  if (r.confidential !== x.confidential) return fail('confidential', 'confidential flag differs');
  if (frame.outputTokenIds.length > x.params.maxTokens) {
    return fail(
      'outputUnits',
      `${frame.outputTokenIds.length} output tokens exceed max_tokens ${x.params.maxTokens}`,
    );
  }
  if (frame.finishReason === 'length' && frame.outputTokenIds.length !== x.params.maxTokens) {
    return fail('finishReason', 'finish "length" before max_tokens');
  }
  if (r.inputUnits !== BigInt(frame.promptTokenIds.length))
    return fail('inputUnits', 'inputUnits is not the prompt token count');
  if (r.outputUnits !== BigInt(frame.outputTokenIds.length))
    return fail('outputUnits', 'outputUnits is not the output token count');
  if (r.requestHash !== computeRequestHash(frame.promptTokenIds, x.params)) {
    return fail('requestHash', 'requestHash does not commit to the prompt tokens and the job parameters');
  }
  if (r.outputHash !== computeOutputHash(frame.outputTokenIds, frame.finishReason)) {
    return fail('outputHash', 'outputHash does not commit to the output tokens and finish reason');
  }
  if (x.streamedTokenIds !== null) {
    const s = x.streamedTokenIds;
    const o = frame.outputTokenIds;
    if (s.length !== o.length || s.some((id, i) => id !== o[i])) {
      return fail('outputTokenIds', 'the streamed tokens differ from the result');
    }
  }
  const fee = computeTextFee({
    inputTokens: frame.promptTokenIds.length,
    outputTokens: frame.outputTokenIds.length,
    rates: {
      inputPerMTokens: BigInt(x.pricing.inputPerMTokens),
      outputPerMTokens: BigInt(x.pricing.outputPerMTokens),
    },
    confidential: x.confidential,
    confidentialPremiumBps: x.pricing.confidentialPremiumBps,
  });
  if (r.fee !== fee) return fail('fee', `fee ${r.fee} differs from the rate card's ${fee}`);
  const completed = Number(r.completedAt);
  if (
    completed < Math.floor(x.dispatchedAt / 1000) - x.clockSkewSec ||
    completed > x.now / 1000 + x.clockSkewSec
  ) {
    return fail('completedAt', `completedAt ${completed} is outside the job's time window`);
  }
  let signer: Address;
  try {
    signer = await recoverTypedDataAddress({
      ...receiptTypedData(r, x.chainId, x.grid),
      signature: frame.signature,
    });
  } catch {
    return fail('signature', 'malformed receipt signature');
  }
  if (!same(signer, x.operator))
    return fail('signature', `receipt signed by ${signer}, not the worker's operator ${x.operator}`);
  return { ok: true, receipt: r };
}
