/**
 * A confidential job, inside the worker's TEE (docs/confidential.md): open the client's sealed request,
 * tokenize it with the model's own tokenizer and chat template, run it, render the answer as OpenAI's
 * chunks, seal each chunk to the client's response key as it is made, and sign a receipt that commits
 * to the evidence the client encrypted to, the sealed request and the sealed chunks. Nothing of the
 * plaintext leaves this function but sealed.
 */
import {
  type ChatMessage,
  confidentialRequestHash,
  feeAtPricing,
  type Receipt,
  type SamplingParams,
  type SealedJobMessage,
  sealedOutputHash,
  sealedRequestHash,
} from '@aipg/core';
import type { Tokenizer } from '@aipg/inference';
import { openRequest, requestAad, sealChunk } from '@aipg/tee';
import { type Address, hexToBigInt, keccak256, toBytes } from 'viem';
import { z } from 'zod';
import type { InferenceBackend } from '../backends/types.ts';
import type { WorkerTee } from '../tee/index.ts';

/** A refusal that is the client's doing (a request it sealed wrong): no fault of the worker. */
export class SealedRequestError extends Error {
  override name = 'SealedRequestError';
}

const contentPart = z.object({ type: z.literal('text'), text: z.string() });
/** The sealed body: what an OpenAI chat request carries besides model, stream and max_tokens. */
const sealedBody = z.object({
  messages: z
    .array(
      z.object({
        role: z.enum(['system', 'developer', 'user', 'assistant']),
        content: z.union([z.string(), z.array(contentPart).min(1)]).nullable(),
      }),
    )
    .min(1)
    .max(2048),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
  stop: z
    .union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).max(4)])
    .nullable()
    .optional(),
});

export type SealedRunParameters = {
  job: SealedJobMessage;
  backend: InferenceBackend;
  tokenizer: Tokenizer;
  tee: WorkerTee;
  /** Bond owner: the receipt's `worker`, and part of the envelope's AAD. */
  owner: Address;
  gateway: Address;
  signal: AbortSignal;
  now: () => number;
  /** Sends one sealed chunk (base64) as it is made. */
  sendChunk(seq: number, final: boolean, ciphertext: string): void;
};

export type SealedRunResult = {
  receipt: Receipt;
  chunks: number;
  finishReason: 'stop' | 'length';
  timings: { ttftMs: number; totalMs: number };
};

const REPLACEMENT = '\uFFFD';

export async function runSealedJob(p: SealedRunParameters): Promise<SealedRunResult> {
  const { job, tokenizer } = p;
  if (!p.tee.knows(job.attestation))
    throw new SealedRequestError('the request was sealed to evidence this worker did not make');
  const enc = new Uint8Array(Buffer.from(job.enc, 'base64'));
  const ciphertext = new Uint8Array(Buffer.from(job.ciphertext, 'base64'));
  let opened: { plaintext: Uint8Array; responseKey: Uint8Array };
  try {
    opened = await openRequest({
      keyPair: p.tee.keyPair,
      digest: job.attestation,
      aad: requestAad(job.model, p.owner, job.stream),
      enc,
      ciphertext,
    });
  } catch {
    throw new SealedRequestError(
      'the sealed request does not open with this worker key, evidence and envelope',
    );
  }
  let body: z.infer<typeof sealedBody>;
  try {
    body = sealedBody.parse(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(opened.plaintext)));
  } catch (error) {
    // Zod names paths and expectations, never the values: nothing of the prompt is echoed.
    const issue = error instanceof z.ZodError ? error.issues[0] : undefined;
    throw new SealedRequestError(
      issue
        ? `the sealed request is not a chat request: ${issue.path.join('.')}: ${issue.message}`
        : 'the sealed request is not UTF-8 JSON',
    );
  }
  const messages: ChatMessage[] = body.messages.map((m) => ({
    role: m.role === 'developer' ? 'system' : m.role,
    content:
      m.content === null
        ? ''
        : typeof m.content === 'string'
          ? m.content
          : m.content.map((x) => x.text).join(''),
  }));
  const promptTokenIds = tokenizer.chatPromptTokenIds(messages);
  if (promptTokenIds.length > job.maxInputTokens)
    throw new SealedRequestError(
      `the prompt is ${promptTokenIds.length} tokens; the request reserved room for ${job.maxInputTokens}`,
    );
  const temperature = body.temperature ?? 1;
  const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  const params: SamplingParams = {
    maxTokens: job.maxTokens,
    temperature,
    topP: body.top_p ?? 1,
    // Unseeded sampling draws from the job id, as the gateway does for plain jobs.
    seed:
      body.seed ??
      (temperature === 0 ? null : Number(hexToBigInt(keccak256(toBytes(job.jobId))) % 2n ** 48n)),
    stop,
  };

  const response = opened.responseKey;
  const sealed: Uint8Array[] = [];
  const seal = (final: boolean, value: unknown) => {
    const ct = sealChunk(response, sealed.length, final, new TextEncoder().encode(JSON.stringify(value)));
    p.sendChunk(sealed.length, final, Buffer.from(ct).toString('base64'));
    sealed.push(ct);
  };

  // Streaming: text deltas rendered from the ids so far, holding back an incomplete character and
  // whatever could still become a stop string.
  const ids: number[] = [];
  let shown = 0;
  let started = false;
  const longestStop = Math.max(0, ...stop.map((s) => s.length));
  const textOf = (all: readonly number[]) => {
    const t = tokenizer.detokenize(all.filter((id) => !tokenizer.isEndToken(id)));
    const at = Math.min(...stop.map((s) => t.indexOf(s)).filter((i) => i >= 0), t.length);
    return t.slice(0, at);
  };
  const emitDelta = (text: string) => {
    seal(false, {
      choices: [
        {
          index: 0,
          delta: started ? { content: text } : { role: 'assistant', content: text },
          finish_reason: null,
        },
      ],
    });
    started = true;
  };
  const result = await p.backend.generate({
    input: { messages },
    promptTokenIds,
    params,
    signal: p.signal,
    onToken: job.stream
      ? (d) => {
          ids.push(...d.tokenIds);
          let t = textOf(ids);
          if (t.endsWith(REPLACEMENT)) t = t.slice(0, t.lastIndexOf(REPLACEMENT));
          const safe = Math.max(shown, t.length - Math.max(0, longestStop - 1));
          if (safe > shown) {
            emitDelta(t.slice(shown, safe));
            shown = safe;
          }
        }
      : undefined,
  });
  const text = textOf(result.outputTokenIds);
  if (job.stream) {
    if (text.length > shown) emitDelta(text.slice(shown));
    seal(true, { choices: [{ index: 0, delta: {}, finish_reason: result.finishReason }] });
  } else {
    seal(true, {
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: text, refusal: null },
          logprobs: null,
          finish_reason: result.finishReason,
        },
      ],
    });
  }
  const inputTokens = result.promptTokenIds.length;
  const outputTokens = result.outputTokenIds.length;
  const receipt: Receipt = {
    jobId: job.jobId,
    gateway: p.gateway,
    payer: job.payer,
    worker: p.owner,
    modelId: job.modelId,
    requestHash: confidentialRequestHash(job.attestation, sealedRequestHash(enc, ciphertext)),
    outputHash: sealedOutputHash(sealed),
    inputUnits: BigInt(inputTokens),
    outputUnits: BigInt(outputTokens),
    fee: feeAtPricing(job.pricing, { inputTokens, outputTokens, confidential: true }),
    completedAt: BigInt(Math.floor(p.now() / 1000)),
    confidential: true,
    seq: BigInt(job.seq),
  };
  return { receipt, chunks: sealed.length, finishReason: result.finishReason, timings: result.timings };
}
