/**
 * The gateway ↔ worker wire protocol: JSON text frames over one WebSocket per worker, many jobs
 * multiplexed by `jobId`. Every frame is validated with these schemas on arrival.
 *
 *   gateway                                worker
 *      ── challenge {nonce,…} ───────────────▶
 *      ◀────────────── hello {operator, signature(loginMessage), models, hardware}
 *      ── welcome {workerId, heartbeatMs} ──▶      (or `error` + close: bond missing, bad signature…)
 *      ── job {jobId, seq, modelId, input, promptTokenIds, params, pricing} ─▶
 *      ── job-seq {jobId, seq} ─▶      (a job sent before its number: the number, once reserved)
 *      ◀──────────── token {jobId, tokenIds}  (zero or more, when streaming)
 *      ◀──────────── result {jobId, token ids, usage, receipt, signature}
 *      ── cancel {jobId} ───────────────────▶      (client went away)
 *      ── score {jobId, auditedJobId, modelId, promptTokenIds, outputTokenIds, topK} ─▶   (a validator's cross-check)
 *      ◀──────────── score-result {jobId, positions[{tokenId, probability, rank, top}], signature}
 *                    (or job-error: SCORE_UNSUPPORTED when the backend cannot score, busy, …)
 *      ── ping {t} ─▶  ◀─ pong {t}
 *      ── sealed-job {jobId, seq, attestation, enc, ciphertext, maxTokens} ─▶   (confidential: a worker in a TEE)
 *      ◀──────────── sealed-chunk {jobId, seq, final, ciphertext}  (one or more)
 *      ◀──────────── sealed-result {jobId, chunks, receipt, signature}
 *      ── attest {requestId, nonce} ─▶  ◀─ attestation {requestId, evidence}
 *
 * A `score` is a teacher-forced pass (`engine.score` of @aipg/inference) over prompt + claimed output
 * of a job another worker ran: the model's distribution at every output position. It takes one of
 * the model's concurrency slots like a job; its `jobId` is fresh (never the audited job's id) and a
 * `cancel` with it stops it. The worker signs its answer (`ScoreAttestation` of ./score.ts), so the
 * validator judging with it holds the scorer to it.
 *
 * Bigints travel as decimal strings. Addresses and hashes as 0x-hex.
 */
import type { Address, Hex } from 'viem';
import { z } from 'zod';
import { base64String, MAX_SEALED_REQUEST_BYTES, teeEvidenceSchema } from './confidential.ts';
import { IMAGE_CHECK_OPS, IMAGE_FORMATS } from './image.ts';
import { type Receipt, SAMPLER_NAME } from './receipt.ts';

/**
 * 3: the gateway tokenizes every request itself and sends the prompt as token ids (`job.promptTokenIds`),
 * the worker runs exactly those and streams token ids only (the gateway renders the text from them
 * with the model's registered tokenizer), and each advertised model names its sampler, which the
 * receipt's `requestHash` commits to.
 *
 * 4: a text job may leave before its receipt number is reserved (`job` without `seq`): the worker
 * starts generating at once and signs only once the number arrives in a `job-seq` frame.
 */
export const PROTOCOL_VERSION = 4;

/** Where a worker connects to its gateway (WebSocket upgrade on the gateway's HTTP port). */
export const WORKER_CONNECT_PATH = '/v1/workers/connect';

/** How the gateway closes a worker's connection (4xxx: application codes of RFC 6455). */
export const closeCodes = {
  protocol_error: 4400,
  bad_signature: 4401,
  not_bonded: 4403,
  bond_inactive: 4403,
  unknown_model: 4404,
  hello_timeout: 4408,
  heartbeat_timeout: 4408,
  replaced: 4409,
  chain_unavailable: 4503,
  shutting_down: 1001,
} as const;

/**
 * The codes of `job-error` frames (worker → gateway). Stable, never reused for another meaning. Only
 * the worker's own faults count against it: capacity (`busy`), a drain, a client's sealed request the
 * worker could not open, and a model this worker cannot score are not.
 */
export const JobErrorCode = {
  /** At capacity for the model (it may serve other gateways): tried elsewhere, never its fault. */
  busy: 'WORKER_BUSY',
  /** Shutting down: takes no new jobs. Not its fault. */
  draining: 'WORKER_DRAINING',
  modelNotServed: 'WORKER_MODEL_NOT_SERVED',
  backendFailed: 'WORKER_BACKEND_FAILED',
  jobCancelled: 'WORKER_JOB_CANCELLED',
  disconnected: 'WORKER_DISCONNECTED',
  /**
   * The job's receipt number (`seq`) was already accepted or signed for this gateway: signing it again
   * would let one number be settled for two jobs. A protocol error of the gateway; never retried.
   */
  seqReused: 'WORKER_SEQ_REUSED',
  /**
   * The job's `promptTokenIds` fall outside the model's vocabulary: no worker of the model can run
   * them (a gateway bug). Never retried; no receipt.
   */
  promptInvalid: 'PROMPT_TOKENS_INVALID',
  /**
   * This worker's backend cannot run the job's `promptTokenIds` exactly (Ollama tokenizes the
   * rendered prompt itself, and its ids differ): retryable, another worker may. No receipt.
   */
  promptMismatch: 'PROMPT_TOKENS_MISMATCH',
  /** A confidential job for a worker (or a backend) that runs in no TEE / has no tokenizer in the enclave. */
  teeUnavailable: 'WORKER_TEE_UNAVAILABLE',
  /**
   * A confidential job's sealed request does not open here or is not a valid chat request: the client's
   * doing (the gateway cannot read it), answered as a 400 and never counted against the worker.
   */
  sealedRequestInvalid: 'SEALED_REQUEST_INVALID',
  /** The model's backend cannot score (not the embedded llama.cpp one): another worker may. */
  scoreUnsupported: 'SCORE_UNSUPPORTED',
  /** The ids cannot be scored with this model (outside its vocabulary): no worker of it can. */
  scoreInvalid: 'WORKER_SCORE_INVALID',
} as const;
export type JobErrorCode = (typeof JobErrorCode)[keyof typeof JobErrorCode];

const hex32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'expected 32-byte hex') as unknown as z.ZodType<Hex>;
const hexBytes = z.string().regex(/^0x([0-9a-fA-F]{2})*$/, 'expected hex bytes') as unknown as z.ZodType<Hex>;
const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, 'expected an address') as unknown as z.ZodType<Address>;
const uintString = z.string().regex(/^\d{1,78}$/, 'expected a decimal integer string');
/** zod runs a refinement even after the regex failed: it must not throw on what is not digits. */
const uint64String = uintString.refine(
  (s) => /^\d{1,20}$/.test(s) && BigInt(s) < 2n ** 64n,
  'expected a uint64',
);
const tokenId = z.number().int().min(0).max(0xffffffff);

/**
 * Largest `topK` of a `score` frame. Large enough that a cross-checking validator sees the whole
 * distribution of a small vocabulary (and so judges as strictly as re-execution); the response size
 * is bounded separately by `MAX_SCORE_ENTRIES`.
 */
export const MAX_SCORE_TOP_K = 1_024;
/** Largest prompt, and largest output, of a `score` frame (token ids). */
export const MAX_SCORE_TOKENS = 65_536;
/** Largest prompt of a `job` frame (token ids). */
export const MAX_PROMPT_TOKENS = 65_536;
/**
 * Largest `outputTokenIds.length × (topK + 1)` of a `score` frame: bounds the `score-result` (about 60
 * bytes of JSON per entry, so at most ~16 MB, well within the gateway's default frame limit). With `topK` 64 that
 * is 4,032 output tokens, with 1,024 it is 255; score a longer output with a smaller `topK`.
 */
export const MAX_SCORE_ENTRIES = 262_144;
/** Probabilities are float32 sums on the worker: allow rounding just above 1. */
const probability = z
  .number()
  .min(0)
  .max(1 + 1e-4);

export const samplingParamsSchema = z.object({
  maxTokens: z.number().int().min(1).max(1_000_000),
  temperature: z.number().min(0).max(2),
  topP: z.number().gt(0).max(1),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable(),
  stop: z.array(z.string().min(1).max(256)).max(4),
});

export const chatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string(),
});
export type ChatMessage = z.infer<typeof chatMessageSchema>;

export const receiptJsonSchema = z.object({
  jobId: hex32,
  gateway: address,
  payer: address,
  worker: address,
  modelId: hex32,
  requestHash: hex32,
  outputHash: hex32,
  inputUnits: uintString,
  outputUnits: uintString,
  fee: uintString,
  completedAt: uintString,
  confidential: z.boolean(),
  seq: uint64String,
});
export type ReceiptJson = z.infer<typeof receiptJsonSchema>;

export function receiptToJson(r: Receipt): ReceiptJson {
  return {
    ...r,
    inputUnits: r.inputUnits.toString(),
    outputUnits: r.outputUnits.toString(),
    fee: r.fee.toString(),
    completedAt: r.completedAt.toString(),
    seq: r.seq.toString(),
  };
}

export function receiptFromJson(r: ReceiptJson): Receipt {
  return {
    ...r,
    inputUnits: BigInt(r.inputUnits),
    outputUnits: BigInt(r.outputUnits),
    fee: BigInt(r.fee),
    completedAt: BigInt(r.completedAt),
    seq: BigInt(r.seq),
  };
}

export const hardwareSchema = z.object({
  gpus: z.array(z.object({ name: z.string().max(200), vramMb: z.number().int().min(0) })).max(64),
  cpuCores: z.number().int().min(1),
  memoryMb: z.number().int().min(0),
});
export type Hardware = z.infer<typeof hardwareSchema>;

export const advertisedModelSchema = z.object({
  modelId: hex32,
  name: z.string().min(1).max(200),
  weightsHash: hex32,
  /** Jobs of this model the worker runs at once. */
  maxConcurrency: z.number().int().min(1).max(1024),
  /**
   * The sampler this worker's engine draws tokens with (`CANONICAL_SAMPLER` or an engine's own name,
   * e.g. `ollama`, `vllm`): signed into every receipt's `requestHash`, so seeded jobs are replayed
   * only where the canonical sampler ran them.
   */
  sampler: z.string().regex(SAMPLER_NAME, 'expected a sampler name (a-z, 0-9, ".", "_", "-")'),
  /**
   * Image models only: what the worker's pipeline accepts. For an image model `sampler` names the
   * pipeline (signed into the receipt's `requestHash` like a text sampler).
   */
  image: z
    .object({
      sizes: z
        .array(z.tuple([z.number().int().min(8).max(8192), z.number().int().min(8).max(8192)]))
        .min(1)
        .max(32),
      minSteps: z.number().int().min(1).max(1000),
      maxSteps: z.number().int().min(1).max(1000),
      maxN: z.number().int().min(1).max(10),
      schedulers: z.array(z.string().regex(SAMPLER_NAME)).min(1).max(16),
      /** Whether its receipts commit to per-step latents (a validator can re-run one step). */
      trajectory: z.boolean(),
    })
    .optional(),
});
export type AdvertisedModel = z.infer<typeof advertisedModelSchema>;
export type ImageCapabilities = NonNullable<AdvertisedModel['image']>;

/** Largest prompt (and negative prompt) of an image job, in token ids (UTF-8 bytes: `imagePromptTokenIds`). */
export const MAX_IMAGE_PROMPT_TOKENS = 4_096;

export const imageParamsSchema = z.object({
  width: z.number().int().min(8).max(8192),
  height: z.number().int().min(8).max(8192),
  steps: z.number().int().min(1).max(1000),
  guidance: z.number().min(0).max(50),
  seed: z.number().int().min(0).max(0xffffffff),
  n: z.number().int().min(1).max(10),
  scheduler: z.string().regex(SAMPLER_NAME),
  format: z.enum(IMAGE_FORMATS),
});

// ── gateway → worker ────────────────────────────────────────────────────────────────────────
export const challengeMessage = z.object({
  type: z.literal('challenge'),
  nonce: hex32,
  gateway: address,
  chainId: z.number().int().positive(),
  grid: address,
  protocolVersion: z.number().int(),
});
export const welcomeMessage = z.object({
  type: z.literal('welcome'),
  workerId: z.string(),
  heartbeatMs: z.number().int().positive(),
});
export const jobMessage = z.object({
  type: z.literal('job'),
  jobId: hex32,
  modelId: hex32,
  payer: address,
  kind: z.enum(['chat', 'completion']),
  /** `messages` for chat, `prompt` for completions. */
  input: z.union([
    z.object({ messages: z.array(chatMessageSchema).min(1) }),
    z.object({ prompt: z.string() }),
  ]),
  /**
   * The prompt as the gateway tokenized it (BOS, the model's chat template, its registered
   * tokenizer): the worker runs exactly these ids and its receipt must commit to them.
   */
  promptTokenIds: z.array(tokenId).min(1).max(MAX_PROMPT_TOKENS),
  params: samplingParamsSchema,
  pricing: z.object({
    inputPerMTokens: uintString,
    outputPerMTokens: uintString,
    confidentialPremiumBps: z.number().int().min(0).max(10_000),
  }),
  confidential: z.boolean(),
  stream: z.boolean(),
  /**
   * `first`: the client reads the answer whole (it did not ask for a stream). The worker sends one
   * `token` frame at the first tokens (the gateway's sign of life and its time to first token), then
   * none until the result, which holds every id: a long answer costs both ends two frames, not one per
   * read of the backend. Absent: every read's tokens as they come. A worker older than this field
   * ignores it and streams them all.
   */
  tokens: z.literal('first').optional(),
  /**
   * The gateway's receipt number for this dispatch (decimal uint64): the worker signs it into the
   * receipt and refuses a number it has already accepted from this gateway. Absent when the job left
   * while its number was being reserved: it follows in a `job-seq` frame, and the worker signs nothing
   * before it arrives.
   */
  seq: uint64String.optional(),
});
/**
 * The receipt number of a job sent without one (`job` with no `seq`), sent once the gateway has
 * reserved it: the worker checks it as it would have on the `job` frame, then signs with it.
 */
export const jobSeqMessage = z.object({ type: z.literal('job-seq'), jobId: hex32, seq: uint64String });
/**
 * An image job: the prompt and negative prompt as token ids (`imagePromptTokenIds`: the UTF-8 bytes;
 * a pipeline's text encoder reads them, a server-side backend decodes them back to text), every
 * parameter, the price, and the receipt number. Answered by `progress` frames and one `image-result`.
 */
export const imageJobMessage = z.object({
  type: z.literal('image-job'),
  jobId: hex32,
  modelId: hex32,
  payer: address,
  promptTokenIds: z.array(z.number().int().min(0).max(255)).min(1).max(MAX_IMAGE_PROMPT_TOKENS),
  negativeTokenIds: z.array(z.number().int().min(0).max(255)).max(MAX_IMAGE_PROMPT_TOKENS),
  params: imageParamsSchema,
  pricing: z.object({
    perMegapixelStep: uintString,
    confidentialPremiumBps: z.number().int().min(0).max(10_000),
  }),
  confidential: z.boolean(),
  /** Previews to send while it runs (OpenAI's `partial_images`, 0–3), as `progress.preview`. */
  partialImages: z.number().int().min(0).max(3),
  seq: uint64String,
});
export type ImageJobMessage = z.infer<typeof imageJobMessage>;
/**
 * An image cross-check (a validator without the weights): the audited job's prompt and parameters,
 * and what to compute (`IMAGE_CHECK_OPS`) from which latent. It takes one of the model's slots like a
 * job; a `cancel` with its `jobId` stops it. Answered by one `image-check-result` (or `job-error`).
 */
export const imageCheckMessage = z.object({
  type: z.literal('image-check'),
  /** A fresh id for this check (not the audited job's). */
  jobId: hex32,
  auditedJobId: hex32,
  modelId: hex32,
  promptTokenIds: z.array(z.number().int().min(0).max(255)).min(1).max(MAX_IMAGE_PROMPT_TOKENS),
  negativeTokenIds: z.array(z.number().int().min(0).max(255)).max(MAX_IMAGE_PROMPT_TOKENS),
  params: imageParamsSchema,
  op: z.enum(IMAGE_CHECK_OPS),
  image: z.number().int().min(0).max(9),
  step: z.number().int().min(0).max(1000),
  /** The committed latent to start from (float32 LE, base64): for `step` and `decode`. */
  latent: z.string().optional(),
});
export type ImageCheckMessage = z.infer<typeof imageCheckMessage>;
/**
 * A confidential chat job (docs/confidential.md): the request sealed by the client to the worker's attested
 * HPKE key, which only the worker's enclave opens. The gateway knows the model, the output cap and the
 * price, never the prompt. Answered by `sealed-chunk` frames and one `sealed-result` (or `job-error`).
 */
export const sealedJobMessage = z.object({
  type: z.literal('sealed-job'),
  jobId: hex32,
  modelId: hex32,
  /** The `model` string the client sealed under (part of the envelope's AAD). */
  model: z.string().min(1).max(200),
  payer: address,
  /** The evidence digest the client verified and encrypted to (the HPKE `info`). */
  attestation: hex32,
  /** HPKE encapsulated key and ciphertext, base64. */
  enc: base64String(32),
  ciphertext: base64String(MAX_SEALED_REQUEST_BYTES),
  stream: z.boolean(),
  /** Largest output (tokens): the reservation's bound, and the signed output count's. */
  maxTokens: z.number().int().min(1).max(MAX_PROMPT_TOKENS),
  /** Largest prompt (tokens) the reservation covers: the signed input count's bound. */
  maxInputTokens: z.number().int().min(1).max(MAX_PROMPT_TOKENS),
  pricing: z.object({
    inputPerMTokens: uintString,
    outputPerMTokens: uintString,
    confidentialPremiumBps: z.number().int().min(0).max(10_000),
  }),
  seq: uint64String,
});
export type SealedJobMessage = z.infer<typeof sealedJobMessage>;
/** Asks a worker in a TEE for evidence made for `nonce` (the gateway's re-check, or a client's challenge). */
export const attestMessage = z.object({
  type: z.literal('attest'),
  requestId: z.string().max(64),
  nonce: hex32,
});
export const cancelMessage = z.object({ type: z.literal('cancel'), jobId: hex32, reason: z.string() });
export const pingMessage = z.object({ type: z.literal('ping'), t: z.number() });
export const scoreMessage = z
  .object({
    type: z.literal('score'),
    /** A fresh id for this score job (not the audited job's id). */
    jobId: hex32,
    /** The audited job whose output is scored: signed into the answer (`ScoreAttestation`). */
    auditedJobId: hex32,
    modelId: hex32,
    /** The prompt exactly as the audited worker's model saw it (after its chat template). */
    promptTokenIds: z.array(tokenId).min(1).max(MAX_SCORE_TOKENS),
    /** The claimed output, scored position by position (teacher-forced). */
    outputTokenIds: z.array(tokenId).max(MAX_SCORE_TOKENS),
    /** Most probable tokens reported per position. */
    topK: z.number().int().min(0).max(MAX_SCORE_TOP_K),
  })
  .refine((m) => m.outputTokenIds.length * (m.topK + 1) <= MAX_SCORE_ENTRIES, {
    message: `outputTokenIds.length × (topK + 1) must be at most ${MAX_SCORE_ENTRIES}`,
    path: ['outputTokenIds'],
  });
export const fatalMessage = z.object({ type: z.literal('error'), code: z.string(), message: z.string() });

export const gatewayToWorker = z.discriminatedUnion('type', [
  challengeMessage,
  welcomeMessage,
  jobMessage,
  jobSeqMessage,
  imageJobMessage,
  imageCheckMessage,
  sealedJobMessage,
  attestMessage,
  cancelMessage,
  scoreMessage,
  pingMessage,
  fatalMessage,
]);
export type GatewayToWorker = z.infer<typeof gatewayToWorker>;
export type JobMessage = z.infer<typeof jobMessage>;
export type JobSeqMessage = z.infer<typeof jobSeqMessage>;
export type ScoreMessage = z.infer<typeof scoreMessage>;

// ── worker → gateway ────────────────────────────────────────────────────────────────────────
export const helloMessage = z.object({
  type: z.literal('hello'),
  protocolVersion: z.number().int(),
  /** The operator key that signed `loginMessage(challenge)`; the gateway resolves its owner on chain. */
  operator: address,
  signature: hexBytes,
  models: z.array(advertisedModelSchema).min(1).max(64),
  hardware: hardwareSchema,
  version: z.string().max(64),
  /** A worker in a TEE: its evidence, made for the challenge's nonce (docs/confidential.md). */
  tee: teeEvidenceSchema.optional(),
});
/** Token ids only: the gateway renders text from the ids itself, so what the user reads is what is signed. */
export const tokenMessage = z.object({
  type: z.literal('token'),
  jobId: hex32,
  tokenIds: z.array(tokenId).min(1),
});
export const resultMessage = z.object({
  type: z.literal('result'),
  jobId: hex32,
  promptTokenIds: z.array(tokenId).min(1),
  outputTokenIds: z.array(tokenId),
  finishReason: z.enum(['stop', 'length']),
  timings: z.object({ ttftMs: z.number().min(0), totalMs: z.number().min(0) }),
  receipt: receiptJsonSchema,
  /** EIP-712 signature of `receipt` by the operator key. */
  signature: hexBytes,
});
/** Base64 (standard alphabet, padded). */
const base64 = z
  .string()
  // One character class and a length check: linear and ~20× cheaper on a frame's megabytes of image data.
  .refine((s) => s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s), 'expected base64');

/** An image job's progress: step `step` of `steps` of image `image` done; a preview when one was asked. */
export const progressMessage = z.object({
  type: z.literal('progress'),
  jobId: hex32,
  image: z.number().int().min(0).max(9),
  step: z.number().int().min(0).max(1000),
  steps: z.number().int().min(1).max(1000),
  /** A partial image (the requested format), base64. */
  preview: base64.optional(),
});
export const imageResultMessage = z.object({
  type: z.literal('image-result'),
  jobId: hex32,
  images: z
    .array(
      z.object({
        /** The image's bytes as delivered (the job's format), base64. */
        data: base64,
        /** `keccak256(bytes)`. */
        imageHash: hex32,
        /** Merkle root of the image's per-step latents (`trajectoryTree`), or `ZERO_TRAJECTORY`. */
        trajectoryRoot: hex32,
        /**
         * The latents the root commits to (`steps + 1` of them, float32 little-endian, concatenated),
         * base64: kept by the gateway for the audit window, so a validator can re-run any step. Required
         * with a non-zero root.
         */
        latents: base64.optional(),
      }),
    )
    .min(1)
    .max(10),
  timings: z.object({ totalMs: z.number().min(0) }),
  receipt: receiptJsonSchema,
  signature: hexBytes,
});
/** A worker's answer to an `image-check`: the latent (`noise`, `step`) or the image hash (`decode`), signed. */
export const imageCheckResultMessage = z.object({
  type: z.literal('image-check-result'),
  jobId: hex32,
  latent: base64.optional(),
  imageHash: hex32.optional(),
  /** EIP-712 signature of `ImageCheck` (`imageCheckTypedData`) by the operator key. */
  signature: hexBytes,
});
export type ImageCheckResultMessage = z.infer<typeof imageCheckResultMessage>;
export type ProgressMessage = z.infer<typeof progressMessage>;
export type ImageResultMessage = z.infer<typeof imageResultMessage>;
export const jobErrorMessage = z.object({
  type: z.literal('job-error'),
  jobId: hex32,
  code: z.string(),
  message: z.string(),
  /** True when nothing was streamed yet and another worker may run the job. */
  retryable: z.boolean(),
});
export const pongMessage = z.object({ type: z.literal('pong'), t: z.number() });
/** One sealed response chunk of a confidential job, in order from `seq` 0; the last has `final`. */
export const sealedChunkMessage = z.object({
  type: z.literal('sealed-chunk'),
  jobId: hex32,
  seq: z.number().int().min(0).max(1_000_000),
  final: z.boolean(),
  ciphertext: base64String(MAX_SEALED_REQUEST_BYTES),
});
/**
 * The end of a confidential job: the signed receipt (`confidential`, `requestHash` and `outputHash` over the
 * sealed request and chunks) and the chunk count. Token counts are the worker's, signed.
 */
export const sealedResultMessage = z.object({
  type: z.literal('sealed-result'),
  jobId: hex32,
  chunks: z.number().int().min(1).max(1_000_001),
  finishReason: z.enum(['stop', 'length']),
  timings: z.object({ ttftMs: z.number().min(0), totalMs: z.number().min(0) }),
  receipt: receiptJsonSchema,
  signature: hexBytes,
});
/** A worker's answer to `attest`: evidence made for the asked nonce. */
export const attestationMessage = z.object({
  type: z.literal('attestation'),
  requestId: z.string().max(64),
  evidence: teeEvidenceSchema,
});
export type SealedChunkMessage = z.infer<typeof sealedChunkMessage>;
export type SealedResultMessage = z.infer<typeof sealedResultMessage>;
export type AttestMessage = z.infer<typeof attestMessage>;
export type AttestationMessage = z.infer<typeof attestationMessage>;
export const scorePositionSchema = z.object({
  /** The output token at this position. */
  tokenId,
  /** Its probability under the model's raw (temperature 1) distribution. */
  probability,
  /** 0 = the most probable token. */
  rank: z.number().int().min(0).max(0xffffffff),
  /** The `topK` most probable tokens, most probable first. */
  top: z.array(z.object({ tokenId, probability })).max(MAX_SCORE_TOP_K),
});
export type ScorePosition = z.infer<typeof scorePositionSchema>;
export const scoreResultMessage = z.object({
  type: z.literal('score-result'),
  jobId: hex32,
  /** One entry per output token, in order. */
  positions: z.array(scorePositionSchema).max(MAX_SCORE_TOKENS),
  /**
   * EIP-712 signature by the operator key of `scoreAttestation({ scoreJobId: jobId, auditedJobId,
   * worker: bond owner, modelId, prompt and output ids, topK, positions })` (`scoreTypedData`, the
   * receipts' domain): the scorer answers for its scores with its bond.
   */
  signature: hexBytes,
});

export const workerToGateway = z.discriminatedUnion('type', [
  helloMessage,
  tokenMessage,
  resultMessage,
  progressMessage,
  imageResultMessage,
  imageCheckResultMessage,
  jobErrorMessage,
  scoreResultMessage,
  sealedChunkMessage,
  sealedResultMessage,
  attestationMessage,
  pongMessage,
]);
export type WorkerToGateway = z.infer<typeof workerToGateway>;
export type ResultMessage = z.infer<typeof resultMessage>;
export type ScoreResultMessage = z.infer<typeof scoreResultMessage>;

/** The EIP-191 message a worker's operator key signs to log in to a gateway. */
export function loginMessage(c: { nonce: Hex; gateway: Address; chainId: number; grid: Address }): string {
  return [
    'AIPG worker login',
    `gateway: ${c.gateway}`,
    `chain: ${c.chainId}`,
    `grid: ${c.grid}`,
    `nonce: ${c.nonce}`,
  ].join('\n');
}
