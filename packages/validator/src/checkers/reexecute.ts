/**
 * Re-execute: the validator holds the weights (sha256 = the registered hash) and re-scores the
 * claimed output itself, one teacher-forced pass of `engine.score` over prompt + output.
 */
import { createLlamaEngine, type LlamaEngine } from '@aipg/inference';
import type { Logger } from 'pino';
import { ValidatorError, ValidatorErrorCode } from '../errors.ts';
import type { ModelFiles } from './models.ts';
import {
  type AuditModel,
  type Checker,
  type CheckRequest,
  type CheckResult,
  idsInVocabulary,
  scoringTopK,
} from './types.ts';

export type ReexecuteCheckerOptions = {
  models: ModelFiles;
  /** CPU threads (required: node-llama-cpp's default oversubscribes small machines). */
  threads: number;
  /** Layers offloaded to a GPU ('auto' or a count); default 0. */
  gpuLayers?: 'auto' | number | undefined;
  /** Context size of a loaded model; a longer job reloads it with a larger context. Default 4096. */
  contextSize?: number | undefined;
  logger?: Logger | undefined;
};

type Loaded = { modelId: string; engine: LlamaEngine };

export function createReexecuteChecker(options: ReexecuteCheckerOptions): Checker {
  const baseContext = options.contextSize ?? 4096;
  // One model in memory at a time: a validator auditing several models swaps them (weights are
  // large; audits are rare and not latency-bound).
  let loaded: Promise<Loaded> | undefined;
  let closed = false;

  async function load(model: AuditModel, tokens: number): Promise<LlamaEngine> {
    const current = await loaded?.catch(() => undefined);
    if (current && current.modelId === model.modelId && current.engine.contextSize >= tokens)
      return current.engine;
    loaded = (async () => {
      await current?.engine.close();
      const path = await options.models.locate(model);
      const contextSize = Math.max(baseContext, 2 ** Math.ceil(Math.log2(tokens + 1)));
      try {
        const engine = await createLlamaEngine({
          modelPath: path,
          threads: options.threads,
          gpuLayers: options.gpuLayers,
          contextSize,
          onLog: options.logger
            ? (level, message) => options.logger?.[level]({ llama: message.trim() })
            : undefined,
        });
        options.logger?.info({ model: model.name, path, contextSize }, 'model loaded for re-execution');
        return { modelId: model.modelId, engine };
      } catch (cause) {
        throw new ValidatorError(`Could not load ${model.name} for re-execution`, {
          code: ValidatorErrorCode.modelUnavailable,
          details: path,
          cause,
        });
      }
    })();
    return (await loaded).engine;
  }

  // Checks run one at a time: a check may swap the loaded model under another one.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(run: () => Promise<T>): Promise<T> => {
    const next = queue.then(run, run);
    queue = next.catch(() => undefined);
    return next;
  };

  return {
    mode: 'reexecute',
    check: (request) => serial(() => check(request)),
    async close() {
      closed = true;
      await queue;
      const current = await loaded?.catch(() => undefined);
      loaded = undefined;
      await current?.engine.close();
    },
  };

  async function check(request: CheckRequest): Promise<CheckResult> {
    if (closed) throw new ValidatorError('The checker is closed', { code: ValidatorErrorCode.scorerError });
    const { promptTokenIds, outputTokenIds } = request;
    const engine = await load(request.model, promptTokenIds.length + outputTokenIds.length);
    const expectedPromptTokenIds =
      'messages' in request.input
        ? engine.chatPromptTokenIds(request.input.messages)
        : engine.promptTokenIds(request.input.prompt);
    const modelInfo = {
      modelId: request.model.modelId,
      vocabSize: engine.vocabSize,
      isEndToken: engine.isEndToken,
      detokenize: engine.detokenize,
    };
    if (
      promptTokenIds.length === 0 ||
      !idsInVocabulary(promptTokenIds, engine.vocabSize) ||
      !idsInVocabulary(outputTokenIds, engine.vocabSize)
    )
      return { expectedPromptTokenIds, scores: null, modelInfo, scorer: 'local' };
    const s = await engine.score({
      promptTokenIds,
      outputTokenIds,
      topK: scoringTopK(engine.vocabSize),
      signal: request.signal,
    });
    return {
      expectedPromptTokenIds,
      scores: {
        positions: s.positions.map((p) => ({
          tokenId: p.tokenId,
          probability: p.probability,
          rank: p.rank,
          top: p.top,
        })),
      },
      modelInfo,
      scorer: 'local',
    };
  }
}
