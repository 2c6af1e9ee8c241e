import { base64String, IMAGE_FORMATS, MAX_SEALED_REQUEST_BYTES, parseAipg, SAMPLER_NAME } from '@aipg/core';
import { type Address, getAddress, type Hex, isAddress } from 'viem';
import { z } from 'zod';
import type { ConfidentialSpec, ImageSpec, JobSpec } from '../jobs/index.ts';

/** Request bodies, validated at the boundary. Unknown fields are ignored; fields we cannot honour are refused. */

const address = z
  .string()
  .refine((v) => isAddress(v, { strict: false }), 'expected an address')
  .transform((v) => getAddress(v) as Address);

const aipgAmount = z.union([z.string(), z.number().nonnegative()]).transform((v, ctx) => {
  try {
    return parseAipg(typeof v === 'number' ? v.toFixed(18).replace(/\.?0+$/, '') : v);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected an AIPG amount such as "0.5"' });
    return z.NEVER;
  }
});

export const gridExtension = z
  .object({
    /** Pin the job to these workers (bond owners or operator keys). */
    workers: z.array(address).min(1).max(64).optional(),
    /** Refuse to pay more than this, in AIPG per million tokens. */
    max_price: z.object({ input_per_m: aipgAmount, output_per_m: aipgAmount }).strict().optional(),
    confidential: z
      .literal(false, {
        message:
          'a confidential request is sent encrypted, with "confidential": true and "encrypted" at the top level (docs/confidential.md; the @aipg/confidential client helper does it)',
      })
      .optional(),
  })
  .strict();

const unsupported = (what: string) =>
  z
    .unknown()
    .refine((v) => v === undefined || v === null, `${what} is not supported`)
    .optional();
const zeroOnly = (name: string) =>
  z
    .number()
    .refine((v) => v === 0, `${name} is not supported (only 0)`)
    .nullable()
    .optional();

/**
 * Text the gateway tokenizes and stores: no NUL character (PostgreSQL text cannot hold one) and no
 * unpaired UTF-16 surrogate (it has no UTF-8 form, so no tokenizer can read it). Either is the
 * client's mistake: a 400 naming the field, before anything else looks at the text.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const text = () =>
  z
    .string()
    .refine(
      (v) => !v.includes('\u0000') && !LONE_SURROGATE.test(v),
      'must not contain NUL characters or unpaired UTF-16 surrogates',
    );

const textPart = z.object({
  type: z.literal('text', { message: 'only text content parts are supported' }),
  text: text(),
});

const chatMessage = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant'], {
    message: 'role must be system, developer, user or assistant',
  }),
  content: z.union([text(), z.array(textPart).min(1)]).nullable(),
  name: text().max(256).optional(),
});

const stop = z
  .union([text().min(1).max(256), z.array(text().min(1).max(256)).max(4)])
  .nullable()
  .optional();

const sampling = {
  model: text().min(1).max(256),
  max_tokens: z.number().int().min(1).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
  stop,
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  n: z.literal(1, { message: 'n other than 1 is not supported' }).nullable().optional(),
  frequency_penalty: zeroOnly('frequency_penalty'),
  presence_penalty: zeroOnly('presence_penalty'),
  logit_bias: unsupported('logit_bias'),
  user: text().max(512).optional(),
  grid: gridExtension.optional(),
};

export const chatCompletionRequest = z.object({
  ...sampling,
  messages: z.array(chatMessage).min(1).max(2048),
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
  logprobs: z.literal(false, { message: 'logprobs are not supported' }).nullable().optional(),
  top_logprobs: unsupported('top_logprobs'),
  tools: unsupported('tools'),
  tool_choice: unsupported('tool_choice'),
  functions: unsupported('functions'),
  function_call: unsupported('function_call'),
  audio: unsupported('audio'),
  modalities: z.array(z.literal('text', { message: 'only the text modality is supported' })).optional(),
  response_format: z
    .object({ type: z.literal('text', { message: 'only response_format {"type":"text"} is supported' }) })
    .nullable()
    .optional(),
});

/**
 * A confidential chat request (docs/confidential.md): the content sealed to one attested worker, only the
 * routing and pricing fields in clear. Plain-text content next to `confidential: true` is refused: the
 * gateway must never hold it.
 */
export const confidentialChatRequest = z
  .object({
    model: text().min(1).max(256),
    stream: z.boolean().nullable().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
    max_tokens: z.number().int().min(1).nullable().optional(),
    max_completion_tokens: z.number().int().min(1).nullable().optional(),
    confidential: z.literal(true),
    encrypted: z
      .object({
        worker: address,
        attestation: z
          .string()
          .regex(/^0x[0-9a-fA-F]{64}$/, 'expected the 32-byte evidence digest')
          .transform((v) => v.toLowerCase() as Hex),
        enc: base64String(32).refine((v) => v.length === 44, 'expected a 32-byte HPKE encapsulated key'),
        ciphertext: base64String(MAX_SEALED_REQUEST_BYTES).refine((v) => v.length > 0, 'must not be empty'),
      })
      .strict(),
    grid: z
      .object({
        max_price: z.object({ input_per_m: aipgAmount, output_per_m: aipgAmount }).strict().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** Whether a body asks for the confidential tier (then it must be a valid `confidentialChatRequest`). */
export function isConfidentialBody(body: unknown): boolean {
  return (
    typeof body === 'object' &&
    body !== null &&
    ((body as { confidential?: unknown }).confidential === true || 'encrypted' in body)
  );
}

export function confidentialSpec(
  r: z.infer<typeof confidentialChatRequest>,
): ConfidentialSpec & { stream: boolean } {
  return {
    model: r.model,
    maxTokens: r.max_completion_tokens ?? r.max_tokens ?? undefined,
    includeUsage: r.stream_options?.include_usage === true,
    sealed: r.encrypted,
    maxPrice: r.grid?.max_price
      ? { inputPerM: r.grid.max_price.input_per_m, outputPerM: r.grid.max_price.output_per_m }
      : null,
    stream: r.stream === true,
  };
}

export const completionRequest = z.object({
  ...sampling,
  prompt: z.union([text(), z.array(text()).length(1, 'only one prompt per request is supported')]),
  best_of: z.literal(1, { message: 'best_of other than 1 is not supported' }).nullable().optional(),
  echo: z.literal(false, { message: 'echo is not supported' }).nullable().optional(),
  suffix: unsupported('suffix'),
  logprobs: unsupported('logprobs'),
});

/**
 * `POST /v1/images/generations`: OpenAI's Images API, plus the grid's `seed`, `steps`,
 * `negative_prompt`, `guidance` and `scheduler` (each bounded by what the workers online accept).
 */
export const imageGenerationRequest = z.object({
  model: text().min(1).max(256),
  prompt: text().min(1).max(32_000),
  n: z.number().int().min(1).max(10).nullable().optional(),
  size: z
    .string()
    .regex(/^(auto|\d{1,5}x\d{1,5})$/, 'size must be "auto" or WIDTHxHEIGHT, such as "512x512"')
    .nullable()
    .optional(),
  response_format: z.enum(['url', 'b64_json']).nullable().optional(),
  output_format: z.enum(IMAGE_FORMATS).nullable().optional(),
  quality: z.enum(['auto', 'low', 'medium', 'high', 'standard', 'hd']).nullable().optional(),
  background: z
    .enum(['auto', 'opaque'], { message: 'only an opaque background is supported' })
    .nullable()
    .optional(),
  output_compression: unsupported('output_compression'),
  moderation: z.enum(['auto', 'low']).nullable().optional(),
  style: z.enum(['vivid', 'natural']).nullable().optional(),
  stream: z.boolean().nullable().optional(),
  partial_images: z.number().int().min(0).max(3).nullable().optional(),
  user: text().max(512).optional(),
  seed: z.number().int().min(0).max(0xffffffff).optional(),
  steps: z.number().int().min(1).max(1000).optional(),
  negative_prompt: text().max(32_000).optional(),
  guidance: z.number().min(0).max(50).optional(),
  scheduler: z.string().regex(SAMPLER_NAME, 'scheduler must be a scheduler name such as "ddim"').optional(),
  grid: z
    .object({ workers: z.array(address).min(1).max(64).optional() })
    .strict()
    .optional(),
});
export type ImageGenerationRequest = z.infer<typeof imageGenerationRequest>;

export function imageSpec(r: ImageGenerationRequest): ImageSpec & { stream: boolean } {
  const size = r.size && r.size !== 'auto' ? r.size.split('x').map(Number) : undefined;
  return {
    model: r.model,
    prompt: r.prompt,
    negativePrompt: r.negative_prompt ?? '',
    width: size?.[0],
    height: size?.[1],
    steps: r.steps,
    guidance: r.guidance ?? 7.5,
    seed: r.seed,
    n: r.n ?? 1,
    scheduler: r.scheduler,
    format: r.output_format ?? 'png',
    responseFormat: r.response_format ?? 'b64_json',
    partialImages: r.stream ? (r.partial_images ?? 0) : 0,
    pin: r.grid?.workers ?? null,
    stream: r.stream === true,
  };
}

export const jobSubmitRequest = z.object({
  type: z.enum(['chat.completion', 'completion', 'image.generation']),
  request: z.record(z.string(), z.unknown()),
  webhook_url: z
    .url({ protocol: /^https?$/, message: 'webhook_url must be an http(s) URL' })
    .max(2048)
    .optional(),
});

export const createKeyRequest = z.object({
  payer: address,
  message: z.string().min(1).max(2048),
  signature: z
    .string()
    .regex(/^0x[0-9a-fA-F]+$/, 'expected a 0x hex signature')
    .max(4096)
    .transform((v) => v as Hex),
});

type ChatRequest = z.infer<typeof chatCompletionRequest>;
type CompletionRequest = z.infer<typeof completionRequest>;

function messageText(content: ChatRequest['messages'][number]['content']): string {
  if (content === null) return '';
  if (typeof content === 'string') return content;
  return content.map((p) => p.text).join('');
}

function common(r: ChatRequest | CompletionRequest) {
  const stopList = r.stop == null ? [] : typeof r.stop === 'string' ? [r.stop] : r.stop;
  return {
    model: r.model,
    temperature: r.temperature ?? 1,
    topP: r.top_p ?? 1,
    seed: r.seed ?? null,
    stop: stopList,
    includeUsage: r.stream_options?.include_usage === true,
    pin: r.grid?.workers ?? null,
    maxPrice: r.grid?.max_price
      ? { inputPerM: r.grid.max_price.input_per_m, outputPerM: r.grid.max_price.output_per_m }
      : null,
  };
}

export function chatSpec(r: ChatRequest): JobSpec {
  return {
    kind: 'chat',
    ...common(r),
    maxTokens: r.max_completion_tokens ?? r.max_tokens ?? undefined,
    input: {
      messages: r.messages.map((m) => ({
        role: m.role === 'developer' ? 'system' : m.role,
        content: messageText(m.content),
      })),
    },
  };
}

export function completionSpec(r: CompletionRequest): JobSpec {
  return {
    kind: 'completion',
    ...common(r),
    maxTokens: r.max_tokens ?? undefined,
    input: { prompt: typeof r.prompt === 'string' ? r.prompt : (r.prompt[0] ?? '') },
  };
}
