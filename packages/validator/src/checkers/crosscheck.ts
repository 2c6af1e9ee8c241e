/**
 * Cross-check: for a validator without a GPU. The claimed output is re-scored by another bonded
 * worker serving the same model, drawn at random by the gateway and never the audited one
 * (`POST /v1/audit/score`, the same teacher-forced pass as `engine.score`). The validator still
 * holds the model file for its tokenizer and chat template (vocabulary-only load: no weights in
 * memory), so the prompt check stays its own.
 */
import { createTokenizer, type Tokenizer } from '@aipg/inference';
import type { Logger } from 'pino';
import { ValidatorError, ValidatorErrorCode } from '../errors.ts';
import type { AuditClient } from '../gateway/client.ts';
import type { ModelFiles } from './models.ts';
import {
  type AuditModel,
  type Checker,
  type CheckRequest,
  type CheckResult,
  crosscheckTopK,
  idsInVocabulary,
} from './types.ts';

export type CrosscheckCheckerOptions = {
  models: ModelFiles;
  /** The gateway that serves the audited job (it routes the score job to another worker). */
  client: AuditClient | ((request: CheckRequest) => AuditClient);
  logger?: Logger | undefined;
};

export function createCrosscheckChecker(options: CrosscheckCheckerOptions): Checker {
  const tokenizers = new Map<string, Promise<Tokenizer & { close(): Promise<void> }>>();
  let closed = false;

  function tokenizer(model: AuditModel) {
    let t = tokenizers.get(model.modelId);
    if (!t) {
      t = options.models.locate(model).then((modelPath) => createTokenizer({ modelPath }));
      t.catch(() => tokenizers.delete(model.modelId));
      tokenizers.set(model.modelId, t);
    }
    return t;
  }

  return {
    mode: 'crosscheck',
    async check(request: CheckRequest): Promise<CheckResult> {
      if (closed) throw new ValidatorError('The checker is closed', { code: ValidatorErrorCode.scorerError });
      const tok = await tokenizer(request.model);
      const expectedPromptTokenIds =
        'messages' in request.input
          ? tok.chatPromptTokenIds(request.input.messages)
          : tok.promptTokenIds(request.input.prompt);
      const modelInfo = {
        modelId: request.model.modelId,
        vocabSize: tok.vocabSize,
        isEndToken: tok.isEndToken,
        detokenize: tok.detokenize,
      };
      const { promptTokenIds, outputTokenIds } = request;
      if (
        promptTokenIds.length === 0 ||
        !idsInVocabulary(promptTokenIds, tok.vocabSize) ||
        !idsInVocabulary(outputTokenIds, tok.vocabSize)
      )
        return { expectedPromptTokenIds, scores: null, modelInfo, scorer: 'local' };
      const client = typeof options.client === 'function' ? options.client(request) : options.client;
      const res = await client.score(
        {
          jobId: request.jobId,
          modelId: request.model.modelId,
          promptTokenIds,
          outputTokenIds,
          topK: crosscheckTopK(tok.vocabSize, outputTokenIds.length),
          excludeWorker: request.worker,
        },
        request.signal,
      );
      if (res.worker.toLowerCase() === request.worker.toLowerCase())
        throw new ValidatorError('The cross-check was scored by the audited worker itself', {
          code: ValidatorErrorCode.scorerError,
          details: `worker ${res.worker}`,
        });
      if (res.positions.length !== outputTokenIds.length)
        throw new ValidatorError('The cross-check scores do not cover the output', {
          code: ValidatorErrorCode.scorerError,
          details: `${res.positions.length} positions for ${outputTokenIds.length} tokens (worker ${res.worker})`,
        });
      res.positions.forEach((p, i) => {
        if (p.tokenId !== outputTokenIds[i])
          throw new ValidatorError('The cross-check scored other tokens than the output', {
            code: ValidatorErrorCode.scorerError,
            details: `position ${i}: ${p.tokenId} ≠ ${outputTokenIds[i]} (worker ${res.worker})`,
          });
      });
      const inconsistent = inconsistency(res.positions, tok.vocabSize);
      if (inconsistent)
        throw new ValidatorError('The cross-check scores are inconsistent', {
          code: ValidatorErrorCode.scorerError,
          details: `${inconsistent} (worker ${res.worker})`,
        });
      options.logger?.debug({ jobId: request.jobId, scorer: res.worker }, 'cross-check scores received');
      return { expectedPromptTokenIds, scores: { positions: res.positions }, modelInfo, scorer: res.worker };
    },
    async close() {
      closed = true;
      const all = [...tokenizers.values()];
      tokenizers.clear();
      await Promise.all(all.map((t) => t.then((x) => x.close()).catch(() => undefined)));
    },
  };
}

/**
 * A scorer's answer must be a distribution: top lists sorted, probabilities summing to at most 1,
 * the claimed token's probability and rank agreeing with the list. A broken or lying scorer makes
 * the validator abstain instead of attesting on garbage.
 */
export function inconsistency(
  positions: readonly {
    tokenId: number;
    probability: number;
    rank: number;
    top: readonly { tokenId: number; probability: number }[];
  }[],
  vocabSize: number,
): string | undefined {
  const tolerance = 1e-4;
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i]!;
    if (p.top.length === 0) return `position ${i}: no top tokens`;
    let sum = 0;
    const ids = new Set<number>();
    for (let j = 0; j < p.top.length; j++) {
      const t = p.top[j]!;
      if (t.tokenId >= vocabSize || ids.has(t.tokenId))
        return `position ${i}: bad or repeated token ${t.tokenId}`;
      ids.add(t.tokenId);
      if (j > 0 && t.probability > p.top[j - 1]!.probability) return `position ${i}: top tokens not sorted`;
      sum += t.probability;
    }
    if (sum > 1 + tolerance) return `position ${i}: top probabilities sum to ${sum}`;
    const listed = p.top.findIndex((t) => t.tokenId === p.tokenId);
    if (listed >= 0) {
      if (Math.abs(p.top[listed]!.probability - p.probability) > tolerance)
        return `position ${i}: token probability ${p.probability} ≠ its listed ${p.top[listed]!.probability}`;
      const ahead = p.top.filter((t) => t.probability > p.probability + tolerance).length;
      if (p.rank < ahead) return `position ${i}: rank ${p.rank} but ${ahead} likelier tokens listed`;
    } else {
      if (p.rank < p.top.length) return `position ${i}: rank ${p.rank} but the token is not listed`;
      if (p.probability > p.top[p.top.length - 1]!.probability + tolerance)
        return `position ${i}: unlisted token likelier than a listed one`;
    }
  }
  return undefined;
}
