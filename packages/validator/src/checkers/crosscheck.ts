/**
 * Cross-check: for a validator without a GPU. The claimed output is re-scored by another bonded
 * worker serving the same model (`POST /v1/audit/score`, the same teacher-forced pass as
 * `engine.score`). The validator, not the gateway, picks that worker: it draws it from on-chain
 * randomness (./draw.ts) among the workers the gateway lists online for the model, never the audited
 * one nor one sharing its operator key, and names it; the gateway routes to it or fails. The worker
 * signs its scores (`scoreAttestation` of @aipg/core) and the validator uses them only if the
 * signature recovers to the operator key of the drawn worker's active bond, on chain: anything else
 * (another worker, another key, other ids, not a distribution) is rejected, never judged with, and
 * the next worker in the draw is asked. The validator still holds the model file for its tokenizer and
 * chat template (vocabulary-only load: no weights in memory), so the prompt check stays its own.
 *
 * One scorer's word never fails a worker alone: the node asks the next independent worker of the draw
 * (`skipScorers`) when the first one's scores make the judge FAIL the job (README "Two ways to check").
 */
import { type ScoreAttestation, scoreAttestation, scoreTypedData } from '@aipg/core';
import { createTokenizer, type Tokenizer } from '@aipg/inference';
import type { Logger } from 'pino';
import { type Address, recoverTypedDataAddress } from 'viem';
import { ValidatorError, ValidatorErrorCode } from '../errors.ts';
import type { AuditClient, ScoreResponse } from '../gateway/client.ts';
import { drawScorers, type ScorerCandidate } from './draw.ts';
import type { ModelFiles } from './models.ts';
import {
  type AuditModel,
  type Checker,
  type CheckRequest,
  type CheckResult,
  crosscheckTopK,
  idsInVocabulary,
  type SignedScore,
} from './types.ts';

/** The chain reads that decide whose scores an answer holds (the node's `ValidatorChain` has them). */
export type ScorerBonds = {
  /** A worker bond: its operator key now, and whether it is at least the minimum. */
  workerBond(owner: Address): Promise<{ operator: Address; active: boolean }>;
};

/**
 * Why an answer was rejected (never judged with). Stable codes, the `reason` label of
 * `aipg_validator_scores_rejected_total`.
 */
export const ScoreRejection = {
  /** The gateway answered with another worker's scores than the one drawn and named. */
  wrongWorker: 'SCORE_WRONG_WORKER',
  /** The signature is not the named operator's over exactly these ids, this job and these scores. */
  signature: 'SCORE_SIGNATURE',
  /** The signer is not the operator key of the drawn worker's active bond (on chain). */
  notOperator: 'SCORE_NOT_BOND_OPERATOR',
  /** Signed by one of the audited worker's own keys. */
  auditedKey: 'SCORE_AUDITED_KEY',
  /** Other tokens, or another count, than the output. */
  positions: 'SCORE_POSITIONS',
  /** Not a distribution (see `inconsistency`). */
  inconsistent: 'SCORE_INCONSISTENT',
} as const;
export type ScoreRejection = (typeof ScoreRejection)[keyof typeof ScoreRejection];

export type CrosscheckCheckerOptions = {
  models: ModelFiles;
  /** The gateway that serves the audited job (it lists the scorers and routes the score job). */
  client: AuditClient | ((request: CheckRequest) => AuditClient);
  /** On-chain bonds: a score counts only if signed by the drawn worker's operator key. */
  bonds: ScorerBonds;
  /** The receipts' EIP-712 domain, which scores are signed under. */
  chainId: number;
  grid: Address;
  /** Drawn workers asked per check before it gives up (each failure moves on in the draw). Default 3. */
  maxScorerAttempts?: number | undefined;
  logger?: Logger | undefined;
  /** Each rejected answer (metrics). */
  onRejected?: ((e: { worker: Address; reason: ScoreRejection; detail: string }) => void) | undefined;
};

export const DEFAULT_MAX_SCORER_ATTEMPTS = 3;

export function createCrosscheckChecker(options: CrosscheckCheckerOptions): Checker {
  const tokenizers = new Map<string, Promise<Tokenizer & { close(): Promise<void> }>>();
  const maxAttempts = options.maxScorerAttempts ?? DEFAULT_MAX_SCORER_ATTEMPTS;
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

  /** Why `res` cannot be used as the drawn worker's scores of `request` (undefined: it can). */
  async function rejection(
    request: CheckRequest,
    drawn: ScorerCandidate,
    topK: number,
    vocabSize: number,
    res: ScoreResponse,
  ): Promise<
    { reason: ScoreRejection; detail: string } | { signer: Address; attestation: ScoreAttestation }
  > {
    const { outputTokenIds } = request;
    if (res.worker.toLowerCase() !== drawn.worker.toLowerCase())
      return {
        reason: ScoreRejection.wrongWorker,
        detail: `drew ${drawn.worker}, the gateway answered with ${res.worker}`,
      };
    if (res.positions.length !== outputTokenIds.length)
      return {
        reason: ScoreRejection.positions,
        detail: `${res.positions.length} positions for ${outputTokenIds.length} tokens`,
      };
    const other = res.positions.findIndex((p, i) => p.tokenId !== outputTokenIds[i]);
    if (other >= 0)
      return {
        reason: ScoreRejection.positions,
        detail: `position ${other}: ${res.positions[other]?.tokenId} ≠ ${outputTokenIds[other]}`,
      };
    let signer: Address | undefined;
    let attestation: ScoreAttestation | undefined;
    try {
      // Built from this validator's own request: the gateway supplies only the score job id and the scores.
      attestation = scoreAttestation({
        scoreJobId: res.scoreJobId,
        auditedJobId: request.jobId,
        worker: drawn.worker,
        modelId: request.model.modelId,
        promptTokenIds: request.promptTokenIds,
        outputTokenIds,
        topK,
        positions: res.positions,
      });
      signer = await recoverTypedDataAddress({
        ...scoreTypedData(attestation, options.chainId, options.grid),
        signature: res.signature,
      });
    } catch {}
    if (!signer || !attestation || signer.toLowerCase() !== res.operator.toLowerCase())
      return {
        reason: ScoreRejection.signature,
        detail: `the signature recovers to ${signer ?? 'nobody'}, not the operator ${res.operator}`,
      };
    if (
      [request.worker, ...(request.workerOperators ?? [])].some(
        (k) => k.toLowerCase() === signer.toLowerCase(),
      )
    )
      return {
        reason: ScoreRejection.auditedKey,
        detail: `signed by ${signer}, a key of the audited worker`,
      };
    const bond = await options.bonds.workerBond(drawn.worker);
    if (!bond.active || bond.operator.toLowerCase() !== signer.toLowerCase())
      return {
        reason: ScoreRejection.notOperator,
        detail: `signed by ${signer}; the bond of ${drawn.worker} is ${bond.active ? 'active' : 'not active'} with operator ${bond.operator}`,
      };
    const inconsistent = inconsistency(res.positions, vocabSize);
    if (inconsistent) return { reason: ScoreRejection.inconsistent, detail: inconsistent };
    return { signer, attestation };
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
      if (!request.scorerSeed)
        throw new ValidatorError('A cross-check needs the seed of its scorer draw', {
          code: ValidatorErrorCode.scorerError,
          details: 'scorerSeed: the audited batch has no randomness yet',
        });
      const client = typeof options.client === 'function' ? options.client(request) : options.client;
      const listed = await client.listScorers(request.model.modelId, request.signal);
      const order = drawScorers(request.scorerSeed, listed, {
        workers: [request.worker],
        operators: request.workerOperators ?? [],
      });
      const skip = new Set((request.skipScorers ?? []).map((w) => w.toLowerCase()));
      const queue = order
        .map((c, drawIndex) => ({ ...c, drawIndex }))
        .filter((c) => !skip.has(c.worker.toLowerCase()));
      if (queue.length === 0)
        throw new ValidatorError('No independent scorer to draw for the cross-check', {
          code: ValidatorErrorCode.scorerError,
          details: `${listed.length} workers listed for ${request.model.modelId}, none other than the audited one${skip.size ? ' and those already asked' : ''}`,
          retryable: false,
        });
      const topK = crosscheckTopK(tok.vocabSize, outputTokenIds.length);
      const tried: Address[] = [];
      const failures: string[] = [];
      for (const drawn of queue.slice(0, maxAttempts)) {
        tried.push(drawn.worker);
        let res: ScoreResponse;
        try {
          res = await client.score(
            {
              jobId: request.jobId,
              modelId: request.model.modelId,
              promptTokenIds,
              outputTokenIds,
              topK,
              excludeWorker: request.worker,
              worker: drawn.worker,
            },
            request.signal,
          );
        } catch (error) {
          if (request.signal?.aborted) throw error;
          const e = error as ValidatorError;
          failures.push(
            `${drawn.worker}: ${e.shortMessage ?? e.message}${e.details ? ` (${e.details})` : ''}`,
          );
          options.logger?.info(
            { jobId: request.jobId, scorer: drawn.worker, drawIndex: drawn.drawIndex, err: e.message },
            'drawn scorer unavailable: asking the next one',
          );
          continue;
        }
        const r = await rejection(request, drawn, topK, tok.vocabSize, res);
        if ('reason' in r) {
          failures.push(`${drawn.worker}: ${r.reason}: ${r.detail}`);
          options.onRejected?.({ worker: drawn.worker, reason: r.reason, detail: r.detail });
          options.logger?.warn(
            { jobId: request.jobId, scorer: drawn.worker, reason: r.reason, detail: r.detail },
            'cross-check answer rejected (gateway fault or scorer error): never used',
          );
          continue;
        }
        const score: SignedScore = {
          worker: drawn.worker,
          operator: r.signer,
          signature: res.signature,
          attestation: r.attestation,
          positions: res.positions,
          drawIndex: drawn.drawIndex,
        };
        options.logger?.debug(
          { jobId: request.jobId, scorer: drawn.worker, drawIndex: drawn.drawIndex },
          'signed cross-check scores received',
        );
        return {
          expectedPromptTokenIds,
          scores: { positions: res.positions },
          modelInfo,
          scorer: drawn.worker,
          score,
          tried,
        };
      }
      throw new ValidatorError('No drawn scorer gave usable scores', {
        code: ValidatorErrorCode.scorerError,
        details: failures.join('; ').slice(0, 2_000),
        retryable: true,
      });
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
