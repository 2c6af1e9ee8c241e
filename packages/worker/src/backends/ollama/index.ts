/**
 * Ollama's native HTTP API. What Ollama really gives (checked against its source,
 * server/routes.go and runner/ollamarunner) and what this backend makes of it:
 *
 * - Prompt ids: Ollama takes no token ids, only text, and reports none for the prompt
 *   (`/api/generate` returns `context` only when `raw` is false, and then as a re-tokenization of
 *   prompt + answer text, a deprecated field). So jobs run with `raw: true` on the model's chat
 *   template rendered here, tokenized here with the model's own tokenizer (a vocabulary-only load
 *   of the same GGUF): that tokenization must equal the gateway's `promptTokenIds`, else the job is
 *   refused (`BACKEND_PROMPT_MISMATCH`, retryable: another worker may run the ids exactly) before
 *   anything is sent; the receipt then commits to the gateway's ids. BOS: the gateway's ids start
 *   with it and Ollama adds it to a raw prompt itself (llama.cpp's `add_bos_token`), so the text is
 *   sent without one; `load()` checks that Ollama counts a raw prompt as BOS + tokens, and every
 *   job that `prompt_eval_count` equals the gateway's count.
 * - Output ids: with `logprobs: true` (Ollama ≥ 0.12.11) every streamed frame lists the sampled
 *   tokens with their bytes; each maps to exactly one id of the local vocabulary. Ollama reports
 *   no entry for the end token (done_reason "stop" → this backend appends the model's EOS id) and
 *   drops the entries of a stop string, so stop strings are enforced here, on the streamed ids,
 *   and never sent to Ollama: the request is cut as soon as one appears.
 * - Weights: `/api/show`'s modelfile names the blob (`FROM …/blobs/sha256-<hex>`): its digest must
 *   be the registered weights hash.
 * - Sampling: Ollama's own sampler (llama.cpp's or its Go sampler), not the network's canonical
 *   one: the backend advertises sampler `ollama` (signed into each receipt's `requestHash`), so
 *   greedy jobs are checked token by token and seeded ones only statistically (see README).
 */
import { computeModelId } from '@aipg/core';
import {
  createTokenizer,
  InferenceAbortedError,
  OutputText,
  sha256File,
  type Tokenizer,
} from '@aipg/inference';
import type { Logger } from 'pino';
import type { Hex } from 'viem';
import type { WorkerModelOptions } from '../../config/options.ts';
import { BackendError, BackendErrorCode } from '../errors.ts';
import { ndjson, request, requestJson, trimSlash } from '../http.ts';
import { firstDifference } from '../ids.ts';
import type { BackendModel, GenerateRequest, GenerateResult, InferenceBackend } from '../types.ts';

export type OllamaBackendOptions = {
  /** ModelRegistry name. */
  name: string;
  /** The registered sha256 of the GGUF; the model Ollama serves must be that blob. */
  weightsHash: Hex;
  /** Default http://127.0.0.1:11434. */
  url?: string | undefined;
  /** The model's tag on the Ollama server; default `name`. */
  ollamaModel?: string | undefined;
  /**
   * The same GGUF on this machine, for the tokenizer. Default: the blob path from `/api/show`,
   * readable when the worker runs beside Ollama.
   */
  gguf?: string | undefined;
  /** Ollama `keep_alive` for job requests (e.g. "30m", -1). */
  keepAlive?: string | number | undefined;
  logger?: Logger | undefined;
};

/** Ollama's first release that returns per-token logprobs. */
export const MIN_OLLAMA_VERSION = '0.12.11';

type Logprob = { token: string; logprob: number; bytes?: number[] | null };
type GenerateFrame = {
  response?: string;
  done?: boolean;
  done_reason?: string;
  logprobs?: Logprob[] | null;
  prompt_eval_count?: number;
  eval_count?: number;
  error?: string;
};
type TagsResponse = { models?: { name: string; model?: string; digest?: string }[] };
type ShowResponse = { modelfile?: string };

export type OllamaBackend = InferenceBackend & { readonly kind: 'ollama' };

/** The sampler name an Ollama backend advertises: Ollama's own RNG, not the canonical sampler. */
export const OLLAMA_SAMPLER = 'ollama';

export function createOllamaBackend(options: OllamaBackendOptions): OllamaBackend {
  const url = trimSlash(options.url ?? 'http://127.0.0.1:11434');
  const tag = withTag(options.ollamaModel ?? options.name);
  const weightsHash = options.weightsHash.toLowerCase() as Hex;
  const model: BackendModel = {
    name: options.name,
    weightsHash,
    modelId: computeModelId(options.name, weightsHash),
  };
  const what = (path: string) => `Ollama ${path}`;
  let loading: Promise<void> | undefined;
  let tokenizer: (Tokenizer & { close(): Promise<void> }) | undefined;
  let idsByBytes = new Map<string, number>();

  async function load(): Promise<void> {
    const version = await requestJson<{ version?: string }>(`${url}/api/version`, {
      what: what('/api/version'),
    });
    if (version.version && compareVersions(version.version, MIN_OLLAMA_VERSION) < 0)
      throw new BackendError('This Ollama cannot report token ids', {
        code: BackendErrorCode.noTokenIds,
        details: `Ollama ${version.version}; per-token logprobs need ${MIN_OLLAMA_VERSION} or later`,
      });

    const tags = await requestJson<TagsResponse>(`${url}/api/tags`, { what: what('/api/tags') });
    const served = tags.models?.map((m) => m.name) ?? [];
    if (!served.some((n) => withTag(n) === tag))
      throw new BackendError(`Ollama does not serve ${tag}`, {
        code: BackendErrorCode.modelNotFound,
        details: `${url} serves: ${served.join(', ') || 'no models'}; create it with \`ollama create ${tag} -f Modelfile\``,
      });

    const show = await requestJson<ShowResponse>(`${url}/api/show`, {
      body: { model: tag },
      what: what('/api/show'),
    });
    const from = /^FROM\s+(.+?)\s*$/m.exec(show.modelfile ?? '')?.[1];
    const digest = from ? /sha256[-:]([0-9a-f]{64})/.exec(from)?.[1] : undefined;
    if (!digest || `0x${digest}` !== weightsHash)
      throw new BackendError(`Ollama's ${tag} is not the registered weights`, {
        code: BackendErrorCode.weightsMismatch,
        details: `modelfile FROM ${from ?? '(none)'}; registered ${weightsHash}`,
      });

    const gguf = options.gguf ?? from!;
    if (options.gguf) {
      const local = await sha256File(options.gguf);
      if (local !== weightsHash)
        throw new BackendError('The local GGUF is not the registered weights', {
          code: BackendErrorCode.weightsMismatch,
          details: `${options.gguf}: sha256 ${local}, registered ${weightsHash}`,
        });
    }
    const t = await createTokenizer({ modelPath: gguf }).catch((cause: unknown) => {
      throw new BackendError('The Ollama backend needs the GGUF on this machine to compute token ids', {
        code: BackendErrorCode.noTokenIds,
        details: `could not open ${gguf}: give the same file with --gguf`,
        cause,
      });
    });
    const map = vocabularyByBytes(t);

    // One greedy token with logprobs: the server reports ids, and tokenizes as we do.
    const probe = 'hi';
    const frame = await requestJson<GenerateFrame>(`${url}/api/generate`, {
      body: {
        model: tag,
        prompt: probe,
        raw: true,
        stream: false,
        logprobs: true,
        options: { num_predict: 1, temperature: 0 },
      },
      what: what('/api/generate'),
    }).catch(async (error: unknown) => {
      await t.close();
      throw error;
    });
    const problem = !Array.isArray(frame.logprobs)
      ? new BackendError('This Ollama returns no per-token logprobs', {
          code: BackendErrorCode.noTokenIds,
          details: `Ollama ${MIN_OLLAMA_VERSION} or later is needed`,
        })
      : frame.prompt_eval_count !== undefined && frame.prompt_eval_count !== t.promptTokenIds(probe).length
        ? new BackendError('Ollama tokenizes prompts differently from the model file', {
            code: BackendErrorCode.protocol,
            details: `"${probe}": Ollama counted ${frame.prompt_eval_count} tokens, the GGUF tokenizer ${t.promptTokenIds(probe).length}`,
          })
        : undefined;
    if (problem) {
      await t.close();
      throw problem;
    }
    await tokenizer?.close();
    tokenizer = t;
    idsByBytes = map;
    options.logger?.info({ url, model: tag, weightsHash, version: version.version }, 'Ollama model ready');
  }

  const idOf = (lp: Logprob): number => {
    const bytes = lp.bytes ?? [...new TextEncoder().encode(lp.token)];
    const id = idsByBytes.get(bytes.join(','));
    if (id === undefined)
      throw new BackendError('Ollama reported a token that is not in the model vocabulary', {
        code: BackendErrorCode.protocol,
        details: JSON.stringify(lp),
      });
    return id;
  };

  async function generate(req: GenerateRequest): Promise<GenerateResult> {
    const t = tokenizer;
    if (!t) throw new BackendError('The Ollama backend is not loaded', { code: BackendErrorCode.notLoaded });
    const started = performance.now();
    const { params, signal, onToken } = req;
    const prompt = 'messages' in req.input ? t.chatPromptText(req.input.messages) : req.input.prompt;
    t.checkIds(req.promptTokenIds);
    const local = t.promptTokenIds(prompt);
    const differ = firstDifference(local, req.promptTokenIds);
    if (differ !== undefined)
      throw new BackendError("Ollama would not run the gateway's prompt ids", {
        code: BackendErrorCode.promptMismatch,
        details: `the rendered prompt tokenizes to ${local.length} ids here, the gateway sent ${req.promptTokenIds.length}; first difference at position ${differ}`,
        retryable: true,
      });
    const promptTokenIds = [...req.promptTokenIds];
    const controller = new AbortController();
    const forward = () => controller.abort(signal.reason);
    if (signal.aborted) throw new InferenceAbortedError(signal.reason);
    signal.addEventListener('abort', forward, { once: true });
    const out = new OutputText(t.detokenize, params.stop, true);
    let ttftMs = 0;
    let serverText = '';
    let done: GenerateFrame | undefined;
    let stopString = false;
    const opts = { what: what('/api/generate'), signal: controller.signal };
    try {
      const response = await request(`${url}/api/generate`, {
        ...opts,
        body: {
          model: tag,
          prompt,
          raw: true,
          stream: true,
          logprobs: true,
          ...(options.keepAlive === undefined ? {} : { keep_alive: options.keepAlive }),
          options: {
            num_predict: params.maxTokens,
            temperature: params.temperature,
            top_p: params.topP,
            ...(params.seed === null ? {} : { seed: params.seed }),
            // Ollama's defaults would change the distribution the job declared.
            top_k: 0,
            min_p: 0,
            repeat_penalty: 1,
            presence_penalty: 0,
            frequency_penalty: 0,
          },
        },
      });
      frames: for await (const frame of ndjson<GenerateFrame>(response, opts)) {
        if (frame.error !== undefined)
          throw new BackendError('Ollama failed during generation', {
            code: BackendErrorCode.stream,
            details: frame.error,
            retryable: true,
          });
        for (const lp of frame.logprobs ?? []) {
          if (out.ids.length === 0) ttftMs = performance.now() - started;
          if (out.ids.length >= params.maxTokens)
            throw new BackendError('Ollama generated more tokens than asked', {
              code: BackendErrorCode.protocol,
              details: `num_predict ${params.maxTokens}`,
            });
          if (out.push(idOf(lp), false)) {
            stopString = true;
            break frames;
          }
          const delta = onToken ? out.delta() : undefined;
          if (delta && delta.tokenIds.length > 0) onToken?.({ tokenIds: delta.tokenIds });
        }
        serverText += frame.response ?? '';
        if (frame.done) {
          done = frame;
          break;
        }
      }
    } catch (error) {
      if (signal.aborted) throw new InferenceAbortedError(signal.reason);
      throw error;
    } finally {
      signal.removeEventListener('abort', forward);
      controller.abort(); // ends the request when a stop string cut it short
    }

    let finishReason: GenerateResult['finishReason'] = 'stop';
    if (!stopString) {
      if (!done)
        throw new BackendError('Ollama ended the stream without a final frame', {
          code: BackendErrorCode.stream,
          retryable: true,
        });
      if (done.done_reason === 'stop') out.push(t.eosTokenId, true);
      else if (done.done_reason === 'length') finishReason = 'length';
      else
        throw new BackendError('Ollama ended generation for an unexpected reason', {
          code: BackendErrorCode.protocol,
          details: `done_reason ${done.done_reason}`,
        });
      checkCounts(done, promptTokenIds.length, out.ids.length, params.maxTokens, finishReason);
      const ours = out.text().replace(/\uFFFD+$/, '');
      if (serverText.trimStart() !== ours.trimStart())
        throw new BackendError("Ollama's text does not match its token ids", {
          code: BackendErrorCode.protocol,
          details: `server ${JSON.stringify(serverText.slice(0, 200))}, ids decode to ${JSON.stringify(ours.slice(0, 200))}`,
        });
    }
    const last = out.finalDelta();
    if (last && last.tokenIds.length > 0 && onToken) onToken({ tokenIds: last.tokenIds });
    return {
      promptTokenIds,
      outputTokenIds: [...out.ids],
      finishReason,
      timings: { ttftMs, totalMs: performance.now() - started },
    };
  }

  return {
    kind: 'ollama',
    sampler: OLLAMA_SAMPLER,
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
      const t = tokenizer;
      tokenizer = undefined;
      await t?.close();
    },
  };
}

function checkCounts(done: GenerateFrame, prompt: number, output: number, maxTokens: number, finish: string) {
  const problems: string[] = [];
  if (done.prompt_eval_count !== undefined && done.prompt_eval_count !== prompt)
    problems.push(`prompt_eval_count ${done.prompt_eval_count}, prompt ids ${prompt}`);
  if (done.eval_count !== undefined && done.eval_count !== output)
    problems.push(`eval_count ${done.eval_count}, output ids ${output}`);
  if (finish === 'length' && output !== maxTokens)
    problems.push(`length finish after ${output} of ${maxTokens} tokens`);
  if (problems.length > 0)
    throw new BackendError("Ollama's counts do not match the token ids", {
      code: BackendErrorCode.protocol,
      details: problems.join('; '),
    });
}

/**
 * bytes → id over the vocabulary. Where a byte-fallback token and a piece spell the same bytes
 * (`<0x61>` and `a`) the piece wins: SentencePiece never emits the byte token there, and a sampled
 * one cannot be told apart from Ollama's answer (a documented limit).
 */
function vocabularyByBytes(t: Tokenizer): Map<string, number> {
  const map = new Map<string, number>();
  for (let id = 0; id < t.vocabSize; id++) {
    if (id === t.eosTokenId || id === t.bosTokenId) continue;
    const key = t.tokenBytes(id).join(',');
    const existing = map.get(key);
    if (existing === undefined || (t.isByteToken(existing) && !t.isByteToken(id))) map.set(key, id);
  }
  return map;
}

/** Ollama names a model `name:tag`, `latest` when no tag is given. */
const withTag = (name: string) => (name.includes(':') ? name : `${name}:latest`);

function compareVersions(a: string, b: string): number {
  const parse = (v: string) =>
    v
      .replace(/^v/, '')
      .split(/[.-]/)
      .slice(0, 3)
      .map((x) => Number.parseInt(x, 10) || 0);
  const [x, y] = [parse(a), parse(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/** The worker runtime's entry point (backend-factory.ts). */
export function createBackend(model: WorkerModelOptions, context: { logger: Logger }): OllamaBackend {
  if (!model.weightsHash)
    throw new BackendError('The Ollama backend needs the registered weights hash', {
      code: BackendErrorCode.notLoaded,
      details: `model ${model.name}: set --weights-hash`,
    });
  return createOllamaBackend({
    name: model.name,
    weightsHash: model.weightsHash,
    url: model.url,
    ollamaModel: model.backendModel,
    gguf: model.gguf,
    logger: context.logger,
  });
}
