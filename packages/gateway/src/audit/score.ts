import { randomInt } from 'node:crypto';
import {
  JobErrorCode,
  MAX_SCORE_ENTRIES,
  MAX_SCORE_TOKENS,
  MAX_SCORE_TOP_K,
  type ScoreMessage,
  type ScoreResultMessage,
} from '@aipg/core';
import { type Address, getAddress, type Hex } from 'viem';
import { z } from 'zod';
import type { Common } from '../common.ts';
import { GatewayError } from '../errors.ts';
import type { Hub, WorkerSession } from '../hub/index.ts';
import { newJobId } from '../jobs/id.ts';
import type { Reputation } from '../routing/index.ts';
import type { Storage } from '../storage/index.ts';

const hex32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'expected 32-byte hex');
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'expected an address');
const tokenIds = z.array(z.number().int().min(0).max(0xffffffff));

/** `GET /v1/audit/scorers` query. */
export const scorersQuerySchema = z.object({ model_id: hex32 });

/** `POST /v1/audit/score` body. */
export const scoreRequestSchema = z
  .object({
    /** The audited job: its worker never scores it (whatever `exclude_worker` says). */
    job_id: hex32,
    model_id: hex32,
    prompt_token_ids: tokenIds.min(1).max(MAX_SCORE_TOKENS),
    output_token_ids: tokenIds.max(MAX_SCORE_TOKENS),
    top_k: z.number().int().min(0).max(MAX_SCORE_TOP_K),
    /** The audited worker (bond owner or operator key). */
    exclude_worker: address,
    /**
     * The scorer the validator drew (bond owner): only it scores, or the request fails; the gateway
     * never substitutes another. Without it the gateway draws one itself (validators before signed
     * scores).
     */
    worker: address.optional(),
  })
  .refine((b) => b.output_token_ids.length * (b.top_k + 1) <= MAX_SCORE_ENTRIES, {
    message: `output_token_ids.length × (top_k + 1) must be at most ${MAX_SCORE_ENTRIES}: use a smaller top_k`,
    path: ['output_token_ids'],
  });
export type ScoreRequest = z.infer<typeof scoreRequestSchema>;

export type ScoreResponse = {
  /** Bond owner of the worker that scored. */
  worker: Address;
  /** Its operator key, as it logged in: the key that signed the scores. */
  operator: Address;
  /** The score job's id (the `scoreJobId` signed into the scores). */
  score_job_id: Hex;
  /** The scorer's EIP-712 signature of `scoreAttestation(…)` (`@aipg/core`), passed through as it came. */
  signature: Hex;
  positions: {
    token_id: number;
    probability: number;
    rank: number;
    top: { token_id: number; probability: number }[];
  }[];
};

type Attempt =
  | { ok: true; frame: ScoreResultMessage }
  | { ok: false; code: string; message: string; retryable: boolean };

/** `GET /v1/audit/scorers` answer: the online workers a validator may draw a scorer from. */
export type ScorersResponse = {
  object: 'list';
  model_id: Hex;
  data: { worker: Address; operator: Address }[];
};

export type Scorer = ReturnType<typeof createScorer>;

/**
 * Cross-checks for validators without a GPU: a claimed output is re-scored (one teacher-forced pass)
 * by another bonded worker serving the same model, never the audited worker (named by the validator,
 * and the job's own worker when this gateway ran it). The validator draws the scorer itself from
 * on-chain randomness among the workers `scorers` lists and names it (`worker`): the score job goes
 * to that bond owner's connections only, or the request fails — the gateway never picks for it.
 * Without `worker`, the gateway draws one uniformly at random among those with a free slot. Workers
 * whose backend cannot score (`JobErrorCode.scoreUnsupported`) are remembered for their connection and skipped.
 * A failing connection hands the score job to another candidate (at most `audit.scoreMaxAttempts`),
 * all within `audit.scoreTimeoutMs`. The worker's signature of its scores is passed through as it
 * came: the validator checks it against the scorer's bond on chain.
 */
export function createScorer({
  common,
  storage,
  hub,
  reputation,
}: {
  common: Common;
  storage: Pick<Storage, 'jobs'>;
  hub: Pick<Hub, 'workers' | 'dispatchScore' | 'waitForCapacity'>;
  reputation?: Reputation | undefined;
}) {
  const { options, logger, metrics } = common;
  const cannotScore = new Set<string>();
  const inFlight = new Map<Address, number>();
  const scores = metrics.counter(
    'aipg_gateway_audit_scores_total',
    'Cross-check score requests of validators, by outcome.',
  );

  /**
   * Connections that may score for this request: serving the model, not excluded, able to score, and
   * the named worker's only when the validator named one.
   */
  function candidates(
    modelId: Hex,
    excluded: ReadonlySet<string>,
    tried: ReadonlySet<string>,
    named: string | undefined,
  ): WorkerSession[] {
    const all = hub
      .workers()
      .filter(
        (w) =>
          w.models.has(modelId) &&
          (named === undefined || w.owner.toLowerCase() === named) &&
          !excluded.has(w.owner.toLowerCase()) &&
          !excluded.has(w.operator.toLowerCase()) &&
          !cannotScore.has(w.id) &&
          !tried.has(w.id),
      );
    // The validator's draw stands as it is: routing preferences never replace its scorer.
    if (named !== undefined) return all;
    // A worker routing avoids (a recent FAIL) does not vouch for another one's work either.
    const trusted = reputation ? all.filter((w) => reputation.factor(w.owner) > 0) : all;
    return trusted.length > 0 ? trusted : all;
  }

  /**
   * The workers online here that can score `modelId` (one entry per bond owner and operator key). The
   * audited worker is in it too: the validator excludes it (and every worker sharing its operator key)
   * before it draws.
   */
  function scorers(modelId: Hex): ScorersResponse {
    const id = modelId.toLowerCase() as Hex;
    const seen = new Set<string>();
    const data: ScorersResponse['data'] = [];
    for (const w of hub.workers()) {
      if (!w.models.has(id) || cannotScore.has(w.id)) continue;
      const key = `${w.owner.toLowerCase()}:${w.operator.toLowerCase()}`;
      if (seen.has(key)) continue;
      seen.add(key);
      data.push({ worker: getAddress(w.owner), operator: getAddress(w.operator) });
    }
    data.sort((a, b) => (a.worker.toLowerCase() < b.worker.toLowerCase() ? -1 : 1));
    return { object: 'list', model_id: id, data };
  }

  function attempt(
    worker: WorkerSession,
    frame: ScoreMessage,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<Attempt> {
    return new Promise<Attempt>((resolve) => {
      let done = false;
      const finish = (a: Attempt) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(a);
      };
      const handle = hub.dispatchScore(worker, frame, {
        onScore: (f) => finish({ ok: true, frame: f }),
        onError: (e) =>
          finish({ ok: false, code: e.code, message: e.message, retryable: e.retryable ?? true }),
      });
      const timer = setTimeout(
        () => {
          handle.cancel('score timeout');
          finish({
            ok: false,
            code: 'timeout',
            message: 'the worker did not answer in time',
            retryable: false,
          });
        },
        Math.max(0, deadline - Date.now()),
      );
      const onAbort = () => {
        handle.cancel('validator went away');
        finish({ ok: false, code: 'cancelled', message: 'the request was cancelled', retryable: false });
      };
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The scores must be of exactly the claimed tokens, in order. */
  function mismatch(frame: ScoreResultMessage, output: readonly number[], topK: number): string | undefined {
    if (frame.positions.length !== output.length)
      return `${frame.positions.length} positions for ${output.length} output tokens`;
    for (let i = 0; i < output.length; i++) {
      const p = frame.positions[i];
      if (!p || p.tokenId !== output[i]) return `position ${i} scores token ${p?.tokenId}, not ${output[i]}`;
      if (p.top.length > topK) return `position ${i} lists ${p.top.length} tokens, more than top_k ${topK}`;
    }
    return undefined;
  }

  async function score(
    req: ScoreRequest,
    ctx: { validator: Address; signal?: AbortSignal | undefined },
  ): Promise<ScoreResponse> {
    const modelId = req.model_id.toLowerCase() as Hex;
    const named = req.worker?.toLowerCase();
    const excluded = new Set([req.exclude_worker.toLowerCase()]);
    const job = await storage.jobs.get(req.job_id.toLowerCase());
    if (job?.worker) excluded.add(job.worker.toLowerCase());
    if (job?.operator) excluded.add(job.operator.toLowerCase());
    if (named !== undefined && excluded.has(named))
      throw new GatewayError(
        'invalid_request',
        `worker ${req.worker} is the audited worker: it never scores its own job`,
        {
          param: 'worker',
        },
      );
    const who = named === undefined ? 'other worker' : `connection of worker ${req.worker}`;

    const running = inFlight.get(ctx.validator) ?? 0;
    if (running >= options.audit.maxScoresPerValidator) {
      scores.inc({ outcome: 'rate_limited' });
      throw new GatewayError(
        'rate_limit_exceeded',
        `at most ${options.audit.maxScoresPerValidator} score requests of one validator run at once`,
        { headers: { 'retry-after': '1' } },
      );
    }
    inFlight.set(ctx.validator, running + 1);
    const log = logger.child({ validator: ctx.validator, audited_job: req.job_id, model_id: modelId });
    try {
      const deadline = Date.now() + options.audit.scoreTimeoutMs;
      const tried = new Set<string>();
      const freeOf = (pool: WorkerSession[]) =>
        pool.filter((w) => {
          const m = w.models.get(modelId);
          return m !== undefined && m.inFlight < m.maxConcurrency;
        });
      let failures = 0;
      let last: { code: string; message: string } | undefined;
      while (failures < options.audit.scoreMaxAttempts && Date.now() < deadline) {
        let pool = candidates(modelId, excluded, tried, named);
        let free = freeOf(pool);
        while (pool.length > 0 && free.length === 0 && Date.now() < deadline && !ctx.signal?.aborted) {
          await hub.waitForCapacity(Math.min(1_000, Math.max(0, deadline - Date.now())), ctx.signal);
          pool = candidates(modelId, excluded, tried, named);
          free = freeOf(pool);
        }
        if (ctx.signal?.aborted) throw new GatewayError('request_cancelled', 'the validator went away');
        if (pool.length === 0) break;
        if (free.length === 0) {
          scores.inc({ outcome: 'busy' });
          throw new GatewayError(
            'no_worker_available',
            `every ${who} serving ${modelId} stayed busy for ${options.audit.scoreTimeoutMs} ms; retry later`,
            { param: named === undefined ? 'model_id' : 'worker', retryable: true },
          );
        }
        const worker = free[randomInt(free.length)] as WorkerSession;
        tried.add(worker.id);
        const frame: ScoreMessage = {
          type: 'score',
          jobId: newJobId(),
          auditedJobId: req.job_id as Hex,
          modelId,
          promptTokenIds: req.prompt_token_ids,
          outputTokenIds: req.output_token_ids,
          topK: req.top_k,
        };
        const started = Date.now();
        const a = await attempt(worker, frame, deadline, ctx.signal);
        if (a.ok) {
          const wrong = mismatch(a.frame, req.output_token_ids, req.top_k);
          if (!wrong) {
            scores.inc({ outcome: 'ok' });
            log.info({
              msg: 'cross-check scored',
              scorer: worker.owner,
              drawn_by: named === undefined ? 'gateway' : 'validator',
              score_job: frame.jobId,
              output_tokens: req.output_token_ids.length,
              ms: Date.now() - started,
            });
            return {
              worker: getAddress(worker.owner),
              operator: getAddress(worker.operator),
              score_job_id: frame.jobId,
              signature: a.frame.signature,
              positions: a.frame.positions.map((p) => ({
                token_id: p.tokenId,
                probability: p.probability,
                rank: p.rank,
                top: p.top.map((t) => ({ token_id: t.tokenId, probability: t.probability })),
              })),
            };
          }
          log.warn({ msg: 'scorer answered other positions than asked', scorer: worker.owner, error: wrong });
          failures += 1;
          last = { code: 'invalid_scores', message: wrong };
          continue;
        }
        if (a.code === 'cancelled') throw new GatewayError('request_cancelled', 'the validator went away');
        if (a.code === JobErrorCode.scoreUnsupported) {
          // Not a failure: this worker's backend cannot score (remembered for its connection).
          cannotScore.add(worker.id);
          continue;
        }
        if (a.code === JobErrorCode.scoreInvalid) {
          scores.inc({ outcome: 'invalid' });
          throw new GatewayError('invalid_request', `the model cannot score these ids: ${a.message}`, {
            param: 'output_token_ids',
          });
        }
        log.info({ msg: 'scorer failed', scorer: worker.owner, code: a.code, error: a.message });
        failures += 1;
        last = { code: a.code, message: a.message };
        if (!a.retryable) break;
      }
      if (!last) {
        scores.inc({ outcome: 'no_worker' });
        throw new GatewayError(
          'no_worker_available',
          named === undefined
            ? `no worker other than the audited one serves model ${modelId} and can score it`
            : `worker ${req.worker} is not connected to this gateway, does not serve model ${modelId} or cannot score it`,
          { param: named === undefined ? 'model_id' : 'worker', retryable: true },
        );
      }
      scores.inc({ outcome: 'failed' });
      throw new GatewayError(
        'worker_failed',
        last.code === 'timeout'
          ? `the cross-check got no score within ${options.audit.scoreTimeoutMs} ms`
          : `the cross-check failed: ${last.code}: ${last.message}`,
        { retryable: true },
      );
    } finally {
      const left = (inFlight.get(ctx.validator) ?? 1) - 1;
      if (left > 0) inFlight.set(ctx.validator, left);
      else inFlight.delete(ctx.validator);
    }
  }

  return { score, scorers };
}
