/**
 * The gateway ↔ worker wire protocol: JSON text frames over one WebSocket per worker, many jobs
 * multiplexed by `jobId`. Every frame is validated with these schemas on arrival.
 *
 *   gateway                                worker
 *      ── challenge {nonce,…} ───────────────▶
 *      ◀────────────── hello {operator, signature(loginMessage), models, hardware}
 *      ── welcome {workerId, heartbeatMs} ──▶      (or `error` + close: bond missing, bad signature…)
 *      ── job {jobId, modelId, input, params, pricing} ─▶
 *      ◀──────────── token {jobId, text, tokenIds}  (zero or more, when streaming)
 *      ◀──────────── result {jobId, token ids, usage, receipt, signature}
 *      ── cancel {jobId} ───────────────────▶      (client went away)
 *      ── ping {t} ─▶  ◀─ pong {t}
 *
 * Bigints travel as decimal strings. Addresses and hashes as 0x-hex.
 */
import type { Address, Hex } from 'viem';
import { z } from 'zod';
import type { Receipt } from './receipt.ts';

export const PROTOCOL_VERSION = 1;

const hex32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'expected 32-byte hex') as unknown as z.ZodType<Hex>;
const hexBytes = z.string().regex(/^0x([0-9a-fA-F]{2})*$/, 'expected hex bytes') as unknown as z.ZodType<Hex>;
const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, 'expected an address') as unknown as z.ZodType<Address>;
const uintString = z.string().regex(/^\d{1,78}$/, 'expected a decimal integer string');
const tokenId = z.number().int().min(0).max(0xffffffff);

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
});
export type ReceiptJson = z.infer<typeof receiptJsonSchema>;

export function receiptToJson(r: Receipt): ReceiptJson {
  return {
    ...r,
    inputUnits: r.inputUnits.toString(),
    outputUnits: r.outputUnits.toString(),
    fee: r.fee.toString(),
    completedAt: r.completedAt.toString(),
  };
}

export function receiptFromJson(r: ReceiptJson): Receipt {
  return {
    ...r,
    inputUnits: BigInt(r.inputUnits),
    outputUnits: BigInt(r.outputUnits),
    fee: BigInt(r.fee),
    completedAt: BigInt(r.completedAt),
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
});
export type AdvertisedModel = z.infer<typeof advertisedModelSchema>;

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
  params: samplingParamsSchema,
  pricing: z.object({
    inputPerMTokens: uintString,
    outputPerMTokens: uintString,
    confidentialPremiumBps: z.number().int().min(0).max(10_000),
  }),
  confidential: z.boolean(),
  stream: z.boolean(),
});
export const cancelMessage = z.object({ type: z.literal('cancel'), jobId: hex32, reason: z.string() });
export const pingMessage = z.object({ type: z.literal('ping'), t: z.number() });
export const fatalMessage = z.object({ type: z.literal('error'), code: z.string(), message: z.string() });

export const gatewayToWorker = z.discriminatedUnion('type', [
  challengeMessage,
  welcomeMessage,
  jobMessage,
  cancelMessage,
  pingMessage,
  fatalMessage,
]);
export type GatewayToWorker = z.infer<typeof gatewayToWorker>;
export type JobMessage = z.infer<typeof jobMessage>;

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
});
export const tokenMessage = z.object({
  type: z.literal('token'),
  jobId: hex32,
  text: z.string(),
  tokenIds: z.array(tokenId).min(1),
});
export const resultMessage = z.object({
  type: z.literal('result'),
  jobId: hex32,
  text: z.string(),
  promptTokenIds: z.array(tokenId).min(1),
  outputTokenIds: z.array(tokenId),
  finishReason: z.enum(['stop', 'length']),
  timings: z.object({ ttftMs: z.number().min(0), totalMs: z.number().min(0) }),
  receipt: receiptJsonSchema,
  /** EIP-712 signature of `receipt` by the operator key. */
  signature: hexBytes,
});
export const jobErrorMessage = z.object({
  type: z.literal('job-error'),
  jobId: hex32,
  code: z.string(),
  message: z.string(),
  /** True when nothing was streamed yet and another worker may run the job. */
  retryable: z.boolean(),
});
export const pongMessage = z.object({ type: z.literal('pong'), t: z.number() });

export const workerToGateway = z.discriminatedUnion('type', [
  helloMessage,
  tokenMessage,
  resultMessage,
  jobErrorMessage,
  pongMessage,
]);
export type WorkerToGateway = z.infer<typeof workerToGateway>;
export type ResultMessage = z.infer<typeof resultMessage>;

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
