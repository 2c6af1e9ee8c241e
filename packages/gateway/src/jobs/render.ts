import type { Hex } from 'viem';
import { aipg } from '../billing/index.ts';
import { type JobRecord, type StoredReceipt, sealedChunksOf, sealedOf } from '../storage/index.ts';

/** The `grid` object on every response: who ran the job, what it cost, how fast, the receipt signature. */
export type GridInfo = {
  job_id: Hex;
  model_id: Hex;
  worker: string | null;
  fee: string;
  fee_wei: string;
  ttft_ms: number | null;
  tokens_per_second: number | null;
  receipt_signature: Hex | null;
};

export type Usage = { prompt_tokens: number; completion_tokens: number; total_tokens: number };

export function gridInfo(job: JobRecord, receipt: StoredReceipt | undefined): GridInfo {
  const fee = job.fee ?? 0n;
  return {
    job_id: job.id,
    model_id: job.modelId,
    worker: job.worker,
    fee: aipg(fee),
    fee_wei: fee.toString(),
    ttft_ms: job.ttftMs === null ? null : Math.round(job.ttftMs),
    tokens_per_second: job.tokensPerSecond === null ? null : Math.round(job.tokensPerSecond * 100) / 100,
    receipt_signature: receipt?.signature ?? null,
  };
}

export function usageOf(job: JobRecord): Usage {
  const p = job.promptTokenIds?.length ?? 0;
  const c = job.outputTokenIds?.length ?? 0;
  return { prompt_tokens: p, completion_tokens: c, total_tokens: p + c };
}

/** OpenAI ids: `chatcmpl-…` / `cmpl-…` followed by the job id's hex. */
export function responseId(job: Pick<JobRecord, 'id' | 'kind'>): string {
  return `${job.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${job.id.slice(2)}`;
}

export const SYSTEM_FINGERPRINT = 'aipg-grid';

/** A confidential job's usage: the token counts its worker signed (the gateway never saw the tokens). */
export function sealedUsage(receipt: StoredReceipt | undefined): Usage {
  const p = Number(receipt?.receipt.inputUnits ?? 0n);
  const c = Number(receipt?.receipt.outputUnits ?? 0n);
  return { prompt_tokens: p, completion_tokens: c, total_tokens: p + c };
}

/**
 * A finished confidential job: `choices` empty, the answer sealed to the client (docs/confidential.md):
 * `encrypted` when it is one chunk (a non-streamed job), `encrypted_chunks` when it was streamed.
 */
export function renderSealedCompletion(job: JobRecord, receipt: StoredReceipt | undefined) {
  const chunks = sealedChunksOf(job).map((ciphertext, seq, all) => ({
    seq,
    final: seq === all.length - 1,
    ciphertext,
  }));
  return {
    id: responseId(job),
    object: 'chat.completion' as const,
    created: job.request.created,
    model: job.request.model,
    choices: [] as never[],
    ...(chunks.length === 1 ? { encrypted: chunks[0] } : { encrypted_chunks: chunks }),
    usage: sealedUsage(receipt),
    system_fingerprint: SYSTEM_FINGERPRINT,
    grid: { ...gridInfo(job, receipt), confidential: true },
  };
}

/** A finished job as OpenAI's `chat.completion` or `text_completion` object, plus `grid`. */
export function renderCompletion(job: JobRecord, receipt: StoredReceipt | undefined) {
  if (sealedOf(job)) return renderSealedCompletion(job, receipt);
  const head = { id: responseId(job), created: job.request.created, model: job.request.model };
  const tail = { usage: usageOf(job), system_fingerprint: SYSTEM_FINGERPRINT, grid: gridInfo(job, receipt) };
  const finish_reason = job.finishReason ?? 'stop';
  if (job.kind === 'chat') {
    return {
      id: head.id,
      object: 'chat.completion' as const,
      created: head.created,
      model: head.model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant' as const, content: job.outputText ?? '', refusal: null },
          logprobs: null,
          finish_reason,
        },
      ],
      ...tail,
    };
  }
  return {
    id: head.id,
    object: 'text_completion' as const,
    created: head.created,
    model: head.model,
    choices: [{ index: 0, text: job.outputText ?? '', logprobs: null, finish_reason }],
    ...tail,
  };
}

/** Streaming chunks, in OpenAI's `chat.completion.chunk` / `text_completion` shapes. */
export function createChunker(job: Pick<JobRecord, 'id' | 'kind' | 'request'>) {
  const id = responseId(job);
  const created = job.request.created;
  const model = job.request.model;
  const chat = job.kind === 'chat';
  const includeUsage = job.request.includeUsage;
  const common = () => ({
    id,
    object: chat ? ('chat.completion.chunk' as const) : ('text_completion' as const),
    created,
    model,
    system_fingerprint: SYSTEM_FINGERPRINT,
    ...(includeUsage ? { usage: null } : {}),
  });
  return {
    /** The first chat chunk announces the role. Completions have none. */
    start() {
      return chat
        ? {
            ...common(),
            choices: [
              { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
            ],
          }
        : null;
    },
    delta(text: string) {
      return chat
        ? {
            ...common(),
            choices: [{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }],
          }
        : { ...common(), choices: [{ index: 0, text, logprobs: null, finish_reason: null }] };
    },
    /**
     * The chunk with the finish reason. Without `include_usage` it also carries `usage` and `grid`
     * (the only chunk the client is sure to read last); with it, the usage chunk follows.
     */
    finish(finishReason: string, usage: Usage, grid: GridInfo) {
      const extra = includeUsage ? {} : { usage, grid };
      return chat
        ? {
            ...common(),
            choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason }],
            ...extra,
          }
        : {
            ...common(),
            choices: [{ index: 0, text: '', logprobs: null, finish_reason: finishReason }],
            ...extra,
          };
    },
    /** With `stream_options.include_usage`: `choices: []`, the usage, and `grid`. */
    usage(usage: Usage, grid: GridInfo) {
      return includeUsage ? { ...common(), choices: [], usage, grid } : null;
    },
  };
}

/**
 * A finished image job as an `ImagesResponse` whose images are links (`origin` + the content-addressed
 * path; a path alone without `origin`), plus `grid`: what async jobs and their webhooks carry.
 */
export function renderImageLinks(job: JobRecord, receipt: StoredReceipt | undefined, origin = '') {
  const image = job.image!;
  const p = image.params;
  const text = job.promptTokenIds?.length ?? 0;
  return {
    created: job.request.created,
    data: (image.outputs ?? []).map((o) => ({ url: `${origin}/v1/images/files/${o.hash}.${o.format}` })),
    output_format: p.format,
    size: `${p.width}x${p.height}`,
    usage: {
      input_tokens: text,
      input_tokens_details: { text_tokens: text, image_tokens: 0 },
      output_tokens: 0,
      total_tokens: text,
    },
    grid: {
      ...gridInfo(job, receipt),
      seed: p.seed,
      steps: p.steps,
      scheduler: p.scheduler,
      guidance: p.guidance,
      pipeline: job.sampler,
      pixel_steps: (BigInt(p.width) * BigInt(p.height) * BigInt(p.steps) * BigInt(p.n)).toString(),
      images: (image.outputs ?? []).map((i) => ({ hash: i.hash, trajectory_root: i.trajectoryRoot })),
    },
  };
}

const JOB_TYPES = { chat: 'chat.completion', completion: 'completion', image: 'image.generation' } as const;

/** A job as `GET /v1/jobs/:id` and webhooks show it (image links relative to the gateway without `origin`). */
export function renderJob(
  job: JobRecord,
  receipt: StoredReceipt | undefined,
  extra: {
    origin?: string;
    progress?: { image: number; step: number; steps: number; images: number } | undefined;
  } = {},
) {
  const done = job.status === 'succeeded';
  return {
    id: job.id,
    object: 'job' as const,
    type: JOB_TYPES[job.kind],
    status: job.status,
    model: job.request.model,
    created_at: Math.floor(job.createdAt.getTime() / 1000),
    completed_at: job.completedAt ? Math.floor(job.completedAt.getTime() / 1000) : null,
    attempts: job.attempts,
    ...(job.image && job.status === 'running' ? { progress: extra.progress ?? null } : {}),
    result: !done
      ? null
      : job.image
        ? renderImageLinks(job, receipt, extra.origin)
        : renderCompletion(job, receipt),
    error: job.error
      ? { message: job.error.message, type: 'job_error', param: null, code: job.error.code }
      : null,
    webhook: job.webhookUrl
      ? { url: job.webhookUrl, status: job.webhookStatus, attempts: job.webhookAttempts }
      : null,
  };
}

/** One sealed chunk as a `chat.completion.chunk` event (docs/confidential.md). */
export function sealedChunkEvent(job: JobRecord, chunk: { seq: number; final: boolean; ciphertext: string }) {
  return { ...sealedEnvelope(job), encrypted: chunk };
}

/** What every event of a confidential stream carries: a `chat.completion.chunk` without choices. */
function sealedEnvelope(job: JobRecord) {
  return {
    id: responseId(job),
    object: 'chat.completion.chunk' as const,
    created: job.request.created,
    model: job.request.model,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: [],
  };
}

/** The plain last event of a confidential stream: the signed counts and the `grid` object. */
export function sealedTailEvent(job: JobRecord, receipt: StoredReceipt | undefined) {
  return {
    ...sealedEnvelope(job),
    usage: sealedUsage(receipt),
    grid: { ...gridInfo(job, receipt), confidential: true },
  };
}
