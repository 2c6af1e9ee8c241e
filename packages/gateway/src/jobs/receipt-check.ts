import {
  computeOutputHash,
  computeRequestHash,
  feeAtPricing,
  type Receipt,
  type ResultMessage,
  receiptFromJson,
  recoverReceiptSigner,
  type SamplingParams,
} from '@aipg/core';
import type { Address, Hex } from 'viem';
import type { JobPricing } from '../storage/index.ts';
import type { GatewayTokenizer } from '../tokenizers/index.ts';
import { renderOutput } from './output.ts';

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
  /** The prompt as the gateway tokenized it and sent it: the receipt must commit to exactly these ids. */
  promptTokenIds: readonly number[];
  /** The sampler the worker advertised for the model: the receipt's requestHash must commit to it. */
  sampler: string;
  /** The model's registered tokenizer: renders the output and checks how it ends. */
  tokenizer: GatewayTokenizer;
  params: SamplingParams;
  pricing: JobPricing;
  confidential: boolean;
  chainId: number;
  grid: Address;
  /** When the job was sent to this worker (ms): `completedAt` may not precede it (minus skew). */
  dispatchedAt: number;
  now: number;
  clockSkewSec: number;
  /** Token ids the worker streamed, when it streamed: they must be where the output starts. */
  streamedTokenIds: readonly number[] | null;
};

export type ReceiptVerdict =
  | {
      ok: true;
      receipt: Receipt /** The output as the user receives it, rendered from the ids. */;
      text: string;
    }
  | { ok: false; reason: string; field: string };

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Checks a worker's `result` against what the gateway expects, field by field, then the EIP-712
 * signature. The receipt must commit to exactly the prompt ids the gateway sent, the parameters sent,
 * the worker's advertised sampler, the output ids returned (which must end the way generation ends),
 * the counts of those tokens, and the fee those counts cost at the rate card the job was priced with.
 * The text the user receives is rendered here from the output ids, never taken from the worker.
 */
/** What names the dispatch a receipt answers: the job, its number, the parties, the model. */
export type ReceiptParties = Pick<
  ReceiptExpectation,
  'jobId' | 'seq' | 'gateway' | 'payer' | 'worker' | 'modelId' | 'confidential'
>;

/** The fields every receipt must carry exactly as dispatched (text or image); the first that differs. */
export function partiesFault(
  r: Receipt,
  frameJobId: string,
  x: ReceiptParties,
): { field: string; reason: string } | undefined {
  if (!same(frameJobId, x.jobId) || !same(r.jobId, x.jobId))
    return { field: 'jobId', reason: 'receipt is for another job' };
  if (r.seq !== x.seq)
    return { field: 'seq', reason: `receipt carries number ${r.seq}, the job was sent as ${x.seq}` };
  if (!same(r.gateway, x.gateway)) return { field: 'gateway', reason: `receipt names gateway ${r.gateway}` };
  if (!same(r.payer, x.payer)) return { field: 'payer', reason: `receipt names payer ${r.payer}` };
  if (!same(r.worker, x.worker))
    return { field: 'worker', reason: `receipt names worker ${r.worker}, the bond owner is ${x.worker}` };
  if (!same(r.modelId, x.modelId)) return { field: 'modelId', reason: 'receipt names another model' };
  if (r.confidential !== x.confidential)
    return { field: 'confidential', reason: 'confidential flag differs' };
  return undefined;
}

/**
 * The last checks of every receipt: `completedAt` within the job's time window, and the EIP-712
 * signature by the worker's operator key. The first that fails.
 */
export async function signatureFault(
  r: Receipt,
  signature: Hex,
  x: Pick<ReceiptExpectation, 'operator' | 'chainId' | 'grid' | 'dispatchedAt' | 'now' | 'clockSkewSec'>,
): Promise<{ field: string; reason: string } | undefined> {
  const completed = Number(r.completedAt);
  if (
    completed < Math.floor(x.dispatchedAt / 1000) - x.clockSkewSec ||
    completed > x.now / 1000 + x.clockSkewSec
  ) {
    return { field: 'completedAt', reason: `completedAt ${completed} is outside the job's time window` };
  }
  let signer: Address;
  try {
    signer = await recoverReceiptSigner(r, x.chainId, x.grid, signature);
  } catch {
    return { field: 'signature', reason: 'malformed receipt signature' };
  }
  if (!same(signer, x.operator))
    return {
      field: 'signature',
      reason: `receipt signed by ${signer}, not the worker's operator ${x.operator}`,
    };
  return undefined;
}

export async function verifyResult(frame: ResultMessage, x: ReceiptExpectation): Promise<ReceiptVerdict> {
  const fail = (field: string, reason: string): ReceiptVerdict => ({ ok: false, field, reason });
  const r = receiptFromJson(frame.receipt);
  const parties = partiesFault(r, frame.jobId, x);
  if (parties) return { ok: false, ...parties };
  const p = frame.promptTokenIds;
  const q = x.promptTokenIds;
  if (p.length !== q.length || p.some((id, i) => id !== q[i])) {
    return fail(
      'promptTokenIds',
      `the prompt ids (${p.length}) are not the ${q.length} the gateway tokenized and sent`,
    );
  }
  if (r.inputUnits !== BigInt(frame.promptTokenIds.length))
    return fail('inputUnits', 'inputUnits is not the prompt token count');
  if (r.outputUnits !== BigInt(frame.outputTokenIds.length))
    return fail('outputUnits', 'outputUnits is not the output token count');
  if (r.requestHash !== computeRequestHash(frame.promptTokenIds, x.params, x.sampler)) {
    return fail(
      'requestHash',
      `requestHash does not commit to the prompt tokens, the job parameters and the sampler "${x.sampler}"`,
    );
  }
  if (r.outputHash !== computeOutputHash(frame.outputTokenIds, frame.finishReason)) {
    return fail('outputHash', 'outputHash does not commit to the output tokens and finish reason');
  }
  const rendered = renderOutput(
    x.tokenizer,
    {
      outputTokenIds: frame.outputTokenIds,
      finishReason: frame.finishReason,
      promptTokenIds: frame.promptTokenIds,
      sampler: x.sampler,
    },
    x.params,
  );
  if (!rendered.ok) return fail(rendered.field, rendered.reason);
  if (x.streamedTokenIds !== null) {
    // What was streamed must be where the result starts (the rest is shown from the result itself).
    const s = x.streamedTokenIds;
    const o = frame.outputTokenIds;
    if (s.length > o.length || s.some((id, i) => id !== o[i])) {
      return fail('outputTokenIds', 'the streamed tokens are not the start of the result');
    }
  }
  const fee = feeAtPricing(x.pricing, {
    inputTokens: frame.promptTokenIds.length,
    outputTokens: frame.outputTokenIds.length,
    confidential: x.confidential,
  });
  if (r.fee !== fee) return fail('fee', `fee ${r.fee} differs from the rate card's ${fee}`);
  const signed = await signatureFault(r, frame.signature, x);
  if (signed) return { ok: false, ...signed };
  return { ok: true, receipt: r, text: rendered.text };
}
