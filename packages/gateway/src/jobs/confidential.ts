/**
 * Confidential jobs (docs/confidential.md): what the gateway can check of a result it cannot read. The
 * receipt must commit to the evidence the client encrypted to and the sealed request the gateway relayed
 * (`requestHash`), to exactly the sealed chunks it relayed (`outputHash`), to token counts within what was
 * reserved, and to the fee those counts cost with the confidential premium; and it must be signed by the
 * worker's operator key, which the evidence binds.
 */
import {
  confidentialRequestHash,
  feeAtPricing,
  type Receipt,
  receiptFromJson,
  type SealedChunkMessage,
  type SealedJobMessage,
  type SealedResultMessage,
  sealedOutputHash,
  sealedRequestHash,
} from '@aipg/core';
import type { Hex } from 'viem';
import type { JobRecord, SealedInput } from '../storage/index.ts';
import { partiesFault, type ReceiptExpectation, signatureFault } from './receipt-check.ts';

export type SealedExpectation = Pick<
  ReceiptExpectation,
  | 'jobId'
  | 'seq'
  | 'gateway'
  | 'payer'
  | 'worker'
  | 'operator'
  | 'modelId'
  | 'chainId'
  | 'grid'
  | 'dispatchedAt'
  | 'now'
  | 'clockSkewSec'
  | 'pricing'
> & {
  sealed: SealedInput;
  maxTokens: number;
  /** The chunks the worker sent, in the order they came. */
  chunks: readonly SealedChunkMessage[];
};

export type SealedVerdict = { ok: true; receipt: Receipt } | { ok: false; field: string; reason: string };

const b64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

/** The `sealed-job` frame of a confidential job, for dispatch number `seq`. */
export function sealedJobFrame(
  job: JobRecord,
  sealed: SealedInput,
  seq: bigint,
  stream: boolean,
): SealedJobMessage {
  return {
    type: 'sealed-job',
    jobId: job.id,
    modelId: job.modelId,
    model: job.request.model,
    payer: job.payer,
    attestation: sealed.attestation,
    enc: sealed.enc,
    ciphertext: sealed.ciphertext,
    stream,
    maxTokens: job.params.maxTokens,
    maxInputTokens: sealed.maxInputTokens,
    pricing: {
      inputPerMTokens: job.pricing.inputPerMTokens,
      outputPerMTokens: job.pricing.outputPerMTokens,
      confidentialPremiumBps: job.pricing.confidentialPremiumBps,
    },
    seq: seq.toString(),
  };
}

/** Checks a `sealed-result` against the job and the chunks relayed; the first fault, or the receipt. */
export async function verifySealedResult(
  frame: SealedResultMessage,
  x: SealedExpectation,
): Promise<SealedVerdict> {
  const fail = (field: string, reason: string): SealedVerdict => ({ ok: false, field, reason });
  let r: Receipt;
  try {
    r = receiptFromJson(frame.receipt);
  } catch {
    return fail('receipt', 'malformed receipt');
  }
  const parties = partiesFault(r, frame.jobId, { ...x, confidential: true });
  if (parties) return fail(parties.field, parties.reason);
  if (frame.chunks !== x.chunks.length || x.chunks.length === 0)
    return fail('chunks', `the result counts ${frame.chunks} chunks, ${x.chunks.length} were sent`);
  for (const [i, c] of x.chunks.entries()) {
    if (c.seq !== i) return fail('chunks', `chunk ${i} came with number ${c.seq}`);
    if (c.final !== (i === x.chunks.length - 1)) return fail('chunks', 'only the last chunk may be final');
  }
  const requestHash = confidentialRequestHash(
    x.sealed.attestation,
    sealedRequestHash(b64(x.sealed.enc), b64(x.sealed.ciphertext)),
  );
  if (r.requestHash.toLowerCase() !== requestHash)
    return fail('requestHash', 'requestHash does not commit to the attestation and the sealed request');
  const outputHash: Hex = sealedOutputHash(x.chunks.map((c) => b64(c.ciphertext)));
  if (r.outputHash.toLowerCase() !== outputHash)
    return fail('outputHash', 'outputHash does not commit to the sealed chunks relayed');
  if (r.inputUnits < 1n || r.inputUnits > BigInt(x.sealed.maxInputTokens))
    return fail('inputUnits', `inputUnits ${r.inputUnits} is outside 1..${x.sealed.maxInputTokens}`);
  if (r.outputUnits > BigInt(x.maxTokens))
    return fail('outputUnits', `outputUnits ${r.outputUnits} exceeds max_tokens ${x.maxTokens}`);
  const fee = feeAtPricing(x.pricing, {
    inputTokens: Number(r.inputUnits),
    outputTokens: Number(r.outputUnits),
    confidential: true,
  });
  if (r.fee !== fee)
    return fail('fee', `fee ${r.fee} is not ${fee} (the counts at the rate card with the premium)`);
  const sig = await signatureFault(r, frame.signature, x);
  if (sig) return fail(sig.field, sig.reason);
  return { ok: true, receipt: r };
}
