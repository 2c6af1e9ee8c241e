/**
 * Any OpenAI-compatible server that reports token ids (vLLM), through `/v1/models` and
 * `/v1/completions`, streamed as server-sent events.
 *
 * Prompt: the gateway's `promptTokenIds` themselves, sent as the completion's `prompt` (vLLM takes
 * a list of token ids there and runs it as given: no chat template, no tokenization, no BOS added,
 * so the gateway's leading BOS is the only one). Chat jobs too go to `/v1/completions`: the
 * gateway already rendered the model's chat template into the ids; the server's own template is
 * never used. The prompt ids the server reports back must be the ids sent, else the job is refused
 * (`BACKEND_PROMPT_MISMATCH`).
 *
 * Receipts commit to token ids, which the OpenAI API does not carry. The backend uses the one
 * mechanism that reports the ids the engine really ran: vLLM's `return_token_ids` (vLLM ≥ 0.10.2),
 * which adds `prompt_token_ids` and the sampled `token_ids` (end token and stop-string tokens
 * included; the text stops before the stop string) to every answer, streamed per chunk. `load()`
 * probes for it, with a token-id prompt, and fails with BACKEND_NO_TOKEN_IDS when the server
 * ignores either: llama.cpp server and LM Studio expose ids only on other endpoints (`/tokenize`,
 * `/completion` with `return_tokens`), not supported here yet.
 *
 * Sampling: vLLM's own sampler (advertised as `vllm`, signed into each receipt's `requestHash`):
 * greedy jobs are checked token by token, seeded ones only statistically.
 */
import { computeModelId, type FinishReason } from '@aipg/core';
import { InferenceAbortedError } from '@aipg/inference';
import type { Logger } from 'pino';
import type { Hex } from 'viem';
import type { WorkerModelOptions } from '../../config/options.ts';
import { BackendError, BackendErrorCode } from '../errors.ts';
import { parseFrame, type RequestOptions, readBody, request, requestJson, sse, trimSlash } from '../http.ts';
import { firstDifference } from '../ids.ts';
import type { BackendModel, GenerateRequest, GenerateResult, InferenceBackend } from '../types.ts';

export type OpenAiBackendOptions = {
  /** ModelRegistry name. */
  name: string;
  /** The registered sha256 of the weights (an OpenAI server cannot prove which weights it runs). */
  weightsHash: Hex;
  /** Base URL including `/v1`; default http://127.0.0.1:8000/v1. */
  url?: string | undefined;
  /** The model id on the server; default `name`. */
  servedModel?: string | undefined;
  apiKey?: string | undefined;
  logger?: Logger | undefined;
};

type Usage = { prompt_tokens?: number; completion_tokens?: number };
type Choice = {
  finish_reason?: string | null;
  token_ids?: number[] | null;
  prompt_token_ids?: number[] | null;
};
type Answer = {
  choices?: Choice[];
  usage?: Usage | null;
  prompt_token_ids?: number[] | null;
  error?: { message?: string } | string;
  object?: string;
  message?: string;
};

export type OpenAiBackend = InferenceBackend & { readonly kind: 'openai' };

/** The sampler name an OpenAI-compatible backend advertises: vLLM's own RNG. */
export const VLLM_SAMPLER = 'vllm';

/**
 * The load probe's prompt: one token id. Id 0 is in every vocabulary; a server that takes it as
 * ids echoes `[0]` as the prompt ids (one that tokenized `"0"` or ignored it would not).
 */
const PROBE_PROMPT = [0];

export function createOpenAiBackend(options: OpenAiBackendOptions): OpenAiBackend {
  const url = trimSlash(options.url ?? 'http://127.0.0.1:8000/v1');
  const served = options.servedModel ?? options.name;
  const weightsHash = options.weightsHash.toLowerCase() as Hex;
  const model: BackendModel = {
    name: options.name,
    weightsHash,
    modelId: computeModelId(options.name, weightsHash),
  };
  const headers: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  let loading: Promise<void> | undefined;
  let ready = false;

  async function load(): Promise<void> {
    const models = await requestJson<{ data?: { id: string }[] }>(`${url}/models`, {
      headers,
      what: 'OpenAI /models',
    });
    const ids = models.data?.map((m) => m.id) ?? [];
    if (!ids.includes(served))
      throw new BackendError(`The server does not serve ${served}`, {
        code: BackendErrorCode.modelNotFound,
        details: `${url} serves: ${ids.join(', ') || 'no models'}`,
      });
    const probe = await requestJson<Answer>(`${url}/completions`, {
      headers,
      body: { model: served, prompt: PROBE_PROMPT, max_tokens: 1, temperature: 0, return_token_ids: true },
      what: 'OpenAI /completions',
    });
    const choice = probe.choices?.[0];
    const echoed = choice?.prompt_token_ids ?? probe.prompt_token_ids;
    if (!Array.isArray(choice?.token_ids) || !Array.isArray(echoed))
      throw new BackendError('This server does not report token ids', {
        code: BackendErrorCode.noTokenIds,
        details:
          'receipts commit to token ids: serve the model with vLLM ≥ 0.10.2 (return_token_ids); llama.cpp server and LM Studio are not supported by this backend yet',
      });
    if (firstDifference(echoed, PROBE_PROMPT) !== undefined)
      throw new BackendError('This server does not run token-id prompts as given', {
        code: BackendErrorCode.noTokenIds,
        details: `prompt ${JSON.stringify(PROBE_PROMPT)} came back as prompt_token_ids ${JSON.stringify(echoed.slice(0, 16))}: the gateway's ids must run exactly (vLLM takes a list of ids as the prompt)`,
      });
    ready = true;
    options.logger?.info({ url, model: served, weightsHash }, 'OpenAI-compatible model ready');
    options.logger?.warn(
      { model: served },
      'an OpenAI-compatible server cannot prove which weights it runs: validators check the outputs',
    );
  }

  async function generate(req: GenerateRequest): Promise<GenerateResult> {
    if (!ready)
      throw new BackendError('The OpenAI backend is not loaded', { code: BackendErrorCode.notLoaded });
    const started = performance.now();
    const { params, signal, onToken } = req;
    if (signal.aborted) throw new InferenceAbortedError(signal.reason);
    const path = '/completions';
    const opts: RequestOptions = { what: `OpenAI ${path}`, headers, signal };
    const stream = onToken !== undefined;
    const sent = [...req.promptTokenIds];
    const body = {
      model: served,
      prompt: sent,
      max_tokens: params.maxTokens,
      temperature: params.temperature,
      top_p: params.topP,
      ...(params.seed === null ? {} : { seed: params.seed }),
      ...(params.stop.length > 0 ? { stop: params.stop } : {}),
      return_token_ids: true,
      stream,
      ...(stream ? { stream_options: { include_usage: true } } : {}),
    };

    let promptTokenIds: number[] | undefined;
    const outputTokenIds: number[] = [];
    let finish: string | null | undefined;
    let usage: Usage | null | undefined;
    let ttftMs = 0;
    const take = (answer: Answer): number[] => {
      if (answer.error !== undefined || answer.object === 'error')
        throw new BackendError('The server failed during generation', {
          code: BackendErrorCode.stream,
          details:
            typeof answer.error === 'string' ? answer.error : (answer.error?.message ?? answer.message),
          retryable: true,
        });
      usage = answer.usage ?? usage;
      const choice = answer.choices?.[0];
      const reported = answer.prompt_token_ids ?? choice?.prompt_token_ids;
      if (!promptTokenIds && reported) {
        // Checked as soon as the server reports them (its first chunk), before any token streams.
        const differ = firstDifference(reported, sent);
        if (differ !== undefined)
          throw new BackendError("The server did not run the gateway's prompt ids", {
            code: BackendErrorCode.promptMismatch,
            details: `sent ${sent.length} ids, the server reports ${reported.length}; first difference at position ${differ}`,
            retryable: true,
          });
        promptTokenIds = reported;
      }
      if (!choice) return [];
      const ids = choice.token_ids ?? [];
      if (ids.length > 0 && outputTokenIds.length === 0) ttftMs = performance.now() - started;
      outputTokenIds.push(...ids);
      finish = choice.finish_reason ?? finish;
      return ids;
    };

    try {
      const response = await request(`${url}${path}`, { ...opts, body });
      if (stream) {
        for await (const payload of sse(response, opts)) {
          const ids = take(parseFrame<Answer>(payload, opts));
          if (ids.length > 0) onToken?.({ tokenIds: ids });
        }
      } else {
        take(parseFrame<Answer>(await readBody(response, opts), opts));
      }
    } catch (error) {
      if (signal.aborted) throw new InferenceAbortedError(signal.reason);
      throw error;
    }

    if (!promptTokenIds)
      throw new BackendError('The server returned no prompt token ids', {
        code: BackendErrorCode.noTokenIds,
      });
    if (finish !== 'stop' && finish !== 'length')
      throw new BackendError(
        finish == null ? 'The stream ended without a finish reason' : 'Unexpected finish reason',
        {
          code: finish == null ? BackendErrorCode.stream : BackendErrorCode.protocol,
          details: String(finish),
          retryable: finish == null,
        },
      );
    const finishReason: FinishReason = finish;
    const problems: string[] = [];
    if (usage?.prompt_tokens !== undefined && usage.prompt_tokens !== promptTokenIds.length)
      problems.push(`usage.prompt_tokens ${usage.prompt_tokens}, prompt ids ${promptTokenIds.length}`);
    if (usage?.completion_tokens !== undefined && usage.completion_tokens !== outputTokenIds.length)
      problems.push(
        `usage.completion_tokens ${usage.completion_tokens}, output ids ${outputTokenIds.length}`,
      );
    if (finishReason === 'length' && outputTokenIds.length !== params.maxTokens)
      problems.push(`length finish after ${outputTokenIds.length} of ${params.maxTokens} tokens`);
    if (outputTokenIds.length > params.maxTokens)
      problems.push(`${outputTokenIds.length} tokens > max ${params.maxTokens}`);
    if (problems.length > 0)
      throw new BackendError("The server's counts do not match its token ids", {
        code: BackendErrorCode.protocol,
        details: problems.join('; '),
      });
    return {
      promptTokenIds,
      outputTokenIds,
      finishReason,
      timings: { ttftMs, totalMs: performance.now() - started },
    };
  }

  return {
    kind: 'openai',
    sampler: VLLM_SAMPLER,
    model,
    load() {
      loading ??= load().catch((error: unknown) => {
        loading = undefined;
        throw error;
      });
      return loading;
    },
    generate,
    async close() {
      await loading?.catch(() => undefined);
      loading = undefined;
      ready = false;
    },
  };
}

/** The worker runtime's entry point (backend-factory.ts). */
export function createBackend(model: WorkerModelOptions, context: { logger: Logger }): OpenAiBackend {
  if (!model.weightsHash)
    throw new BackendError('The OpenAI backend needs the registered weights hash', {
      code: BackendErrorCode.notLoaded,
      details: `model ${model.name}: set --weights-hash`,
    });
  return createOpenAiBackend({
    name: model.name,
    weightsHash: model.weightsHash,
    url: model.url,
    servedModel: model.backendModel,
    apiKey: model.apiKey,
    logger: context.logger,
  });
}
