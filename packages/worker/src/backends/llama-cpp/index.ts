/**
 * The embedded backend: llama.cpp in-process through @aipg/inference. It owns the whole pipeline,
 * so it commits to exactly what ran: the gateway's prompt ids, evaluated as given (BOS included:
 * the gateway's ids start with it and the engine adds none), every sampled id (end token and
 * stop-string tokens included) and the network's canonical sampler (`CANONICAL_SAMPLER`: greedy /
 * seeded runs replay exactly in a validator's teacher-forced pass). Ids outside the vocabulary are
 * refused before anything runs (`INVALID_TOKEN` from the engine).
 */
import { availableParallelism } from 'node:os';
import { CANONICAL_SAMPLER, computeModelId } from '@aipg/core';
import { createLlamaEngine, type LlamaEngine, sha256File } from '@aipg/inference';
import type { Logger } from 'pino';
import type { Hex } from 'viem';
import type { WorkerModelOptions } from '../../config/options.ts';
import { BackendError, BackendErrorCode } from '../errors.ts';
import type {
  BackendModel,
  GenerateRequest,
  GenerateResult,
  InferenceBackend,
  ScoreRequest,
  ScoreResult,
} from '../types.ts';

export type LlamaCppBackendOptions = {
  /** ModelRegistry name. */
  name: string;
  /** Path of the GGUF file. */
  gguf: string;
  /** The registered sha256; when given, load() refuses a file with another hash. */
  weightsHash?: Hex | undefined;
  /** CPU threads; default half the cores (never node-llama-cpp's oversubscribing default). */
  threads?: number | undefined;
  contextSize?: number | undefined;
  /** Context sequences: jobs evaluated at once. Default 1. */
  maxConcurrency?: number | undefined;
  gpuLayers?: 'auto' | number | undefined;
  logger?: Logger | undefined;
};

export type LlamaCppBackend = InferenceBackend & {
  readonly kind: 'llama-cpp';
  /** The loaded engine (for scoring jobs); throws before load(). */
  readonly engine: LlamaEngine;
  score(request: ScoreRequest): Promise<ScoreResult>;
};

export function createLlamaCppBackend(options: LlamaCppBackendOptions): LlamaCppBackend {
  let loading: Promise<void> | undefined;
  let engine: LlamaEngine | undefined;
  let model: BackendModel | undefined;

  const loaded = () => {
    if (!engine || !model)
      throw new BackendError('The llama-cpp backend is not loaded', { code: BackendErrorCode.notLoaded });
    return { engine, model };
  };

  async function load(): Promise<void> {
    const weightsHash = await sha256File(options.gguf);
    if (options.weightsHash && options.weightsHash.toLowerCase() !== weightsHash)
      throw new BackendError('The GGUF file is not the registered weights', {
        code: BackendErrorCode.weightsMismatch,
        details: `${options.gguf}: sha256 ${weightsHash}, registered ${options.weightsHash}`,
      });
    const threads = options.threads ?? Math.max(1, Math.floor(availableParallelism() / 2));
    engine = await createLlamaEngine({
      modelPath: options.gguf,
      threads,
      contextSize: options.contextSize,
      maxConcurrency: options.maxConcurrency,
      gpuLayers: options.gpuLayers,
      onLog: options.logger
        ? (level, message) => options.logger?.[level]({ llama: message.trim() })
        : undefined,
    });
    model = { name: options.name, weightsHash, modelId: computeModelId(options.name, weightsHash) };
    options.logger?.info({ weightsHash, threads, contextSize: engine.contextSize }, 'llama.cpp model loaded');
  }

  return {
    kind: 'llama-cpp',
    sampler: CANONICAL_SAMPLER,
    get model() {
      if (!model)
        throw new BackendError('The llama-cpp backend is not loaded', { code: BackendErrorCode.notLoaded });
      return model;
    },
    get engine() {
      return loaded().engine;
    },
    tokenizer() {
      return loaded().engine;
    },
    load() {
      loading ??= load().catch((error: unknown) => {
        loading = undefined;
        throw error;
      });
      return loading;
    },
    async generate(request: GenerateRequest): Promise<GenerateResult> {
      const { engine } = loaded();
      const promptTokenIds = [...request.promptTokenIds];
      const { onToken } = request;
      const g = await engine.generate({
        promptTokenIds,
        params: request.params,
        signal: request.signal,
        onToken: onToken
          ? (d) => {
              if (d.tokenIds.length > 0) onToken({ tokenIds: d.tokenIds });
            }
          : undefined,
      });
      return {
        promptTokenIds,
        outputTokenIds: g.outputTokenIds,
        finishReason: g.finishReason,
        timings: { ttftMs: g.ttftMs, totalMs: g.totalMs },
      };
    },
    async score(request: ScoreRequest): Promise<ScoreResult> {
      const { engine } = loaded();
      const r = await engine.score({
        promptTokenIds: request.promptTokenIds,
        outputTokenIds: request.outputTokenIds,
        topK: request.topK,
        signal: request.signal,
      });
      return {
        positions: r.positions.map((p) => ({
          tokenId: p.tokenId,
          probability: p.probability,
          rank: p.rank,
          top: p.top.map((t) => ({ tokenId: t.tokenId, probability: t.probability })),
        })),
      };
    },
    async close() {
      await loading?.catch(() => undefined);
      loading = undefined;
      const e = engine;
      engine = undefined;
      await e?.close();
    },
  };
}

/** The worker runtime's entry point (backend-factory.ts). */
export function createBackend(model: WorkerModelOptions, context: { logger: Logger }): LlamaCppBackend {
  if (!model.gguf)
    throw new BackendError('The llama-cpp backend needs a GGUF file', {
      code: BackendErrorCode.notLoaded,
      details: `model ${model.name}: set --gguf <path>`,
    });
  return createLlamaCppBackend({
    name: model.name,
    gguf: model.gguf,
    weightsHash: model.weightsHash,
    threads: model.threads,
    contextSize: model.contextSize,
    maxConcurrency: model.maxConcurrency,
    gpuLayers: model.gpuLayers,
    logger: context.logger,
  });
}
