/**
 * The verdict on one audited text job (docs/DESIGN.md §5): a pure function of the job as the worker
 * committed to it, the validator's re-scoring of the claimed output (one teacher-forced pass of
 * the claimed model), and the re-templated prompt. FAIL only on hard evidence (a rule no honest
 * worker breaks, or breaks with a probability far below the false-slash budget); everything
 * statistical is a soft signal that never fails a job.
 */
import {
  CANONICAL_SAMPLER,
  computeOutputHash,
  computeRequestHash,
  type FinishReason,
  feeAtPricing,
  type Receipt,
  type SamplingParams,
} from '@aipg/core';
import { TerminationFault, terminationFaults } from '@aipg/inference';
import type { Hex } from 'viem';
import { ValidatorError, ValidatorErrorCode } from '../errors.ts';
import { evidenceHash } from './evidence.ts';
import {
  greedyCheck,
  logTemperedUpper,
  massBeforeLower,
  type PositionView,
  positionView,
  requiredNoise,
  type ScoredPosition,
  seededCheck,
  surprise,
  type Tolerance,
  type TopToken,
} from './position.ts';
import { DEFAULT_THRESHOLDS, type JudgeThresholds } from './thresholds.ts';

/**
 * Hard rules. Stable codes, never reused. Each is either the worker's fault (FAIL) or the
 * gateway's (abstain and report the gateway): see `REASON_FAULT`.
 */
export const HardReason = {
  /** `receipt.requestHash` ≠ computeRequestHash(prompt token ids, the job's params, its sampler) as served. */
  requestHash: 'RECEIPT_REQUEST_HASH',
  /** `receipt.outputHash` ≠ computeOutputHash(output token ids, finish reason) as served. */
  outputHash: 'RECEIPT_OUTPUT_HASH',
  /**
   * The prompt token ids are not the job's input (as served) re-templated and tokenized by the
   * validator: the gateway tokenized that input itself and accepted these ids (its fault).
   */
  promptMismatch: 'PROMPT_MISMATCH',
  /** `receipt.inputUnits` ≠ the number of prompt tokens (inflated usage). */
  inputUnits: 'USAGE_INPUT_UNITS',
  /** `receipt.outputUnits` ≠ the number of output tokens (inflated usage). */
  outputUnits: 'USAGE_OUTPUT_UNITS',
  /** Reported usage (when the gateway reports one) ≠ the token counts. */
  usage: 'USAGE_MISMATCH',
  /** `receipt.fee` ≠ the fee of the receipt's own units at the job's pricing as served. */
  fee: 'FEE_MISMATCH',
  /** An output token id the model's vocabulary does not have. */
  invalidToken: 'INVALID_TOKEN',
  /** A prompt token id the model's vocabulary does not have (no engine ran that prompt). */
  invalidPromptToken: 'INVALID_PROMPT_TOKEN',
  // How the output ends (`terminationFaults` of @aipg/inference: the gateway refuses the same before billing).
  tooLong: TerminationFault.tooLong,
  lengthEarly: TerminationFault.lengthEarly,
  stopWithoutEnd: TerminationFault.stopWithoutEnd,
  afterEnd: TerminationFault.afterEnd,
  afterStop: TerminationFault.afterStop,
  /** Greedy job: a token that is not the argmax, by more than the margin. */
  greedyMismatch: 'GREEDY_MISMATCH',
  /** Seeded job of the canonical sampler: replayed with the job's seed, it picks another token. */
  seededMismatch: 'SEEDED_MISMATCH',
  /** Sampled job: a token outside the declared top-p nucleus (with slack). */
  outsideTopP: 'OUTSIDE_TOP_P',
  /** Sampled job: at least `floorMinCount` tokens below the probability floor. */
  belowFloor: 'BELOW_FLOOR',
  /**
   * Greedy or seeded job of the canonical sampler: at least `repeatMinCount` tokens (and
   * `repeatMinShare` of them) that each need more than `repeatNoise` nats of logit noise to be the
   * sampler's pick (a near copy of the model: each token may be within the per-token budget, the
   * count is not).
   */
  repeatedMismatch: 'REPEATED_MISMATCH',
} as const;
export type HardReasonCode = (typeof HardReason)[keyof typeof HardReason];

/**
 * Whose fault a hard reason is (README "Whose fault is it"). The worker signed the receipt, and
 * nothing else: the gateway's evidence (params, input, pricing, usage, the token ids) is only as
 * good as its hashes. A reason that compares the evidence with the receipt, or leans on evidence
 * the receipt does not commit to, proves only that the gateway served something the worker did not
 * sign: `gateway` (abstain, report the gateway). A reason that holds between the receipt and
 * evidence that hashes to it (plus the registered model) is the worker's: `worker` (FAIL).
 */
export type Fault = 'worker' | 'gateway';
export const REASON_FAULT: Readonly<Record<HardReasonCode, Fault>> = {
  RECEIPT_REQUEST_HASH: 'gateway',
  RECEIPT_OUTPUT_HASH: 'gateway',
  // The input is not in the receipt, but the prompt ids are the gateway's own: it tokenizes every
  // request itself (the model's registered tokenizer and chat template), sends those ids in the job
  // frame and accepts only a receipt whose prompt ids equal them. So signed ids that the served input
  // does not tokenize to mean the gateway served an altered input (or settled a receipt it should
  // have refused), never that the worker lied: abstain and report the gateway. A worker that ran
  // another prompt than the ids it committed is still caught: its output is scored after the
  // committed ids (GREEDY_MISMATCH, SEEDED_MISMATCH, …); one that billed other units, by USAGE_*_UNITS.
  PROMPT_MISMATCH: 'gateway',
  USAGE_MISMATCH: 'gateway',
  // The pricing is not in the receipt, and the gateway checks the fee against its rate card
  // before it accepts one; inflated units are USAGE_*_UNITS.
  FEE_MISMATCH: 'gateway',
  USAGE_INPUT_UNITS: 'worker',
  USAGE_OUTPUT_UNITS: 'worker',
  INVALID_TOKEN: 'worker',
  INVALID_PROMPT_TOKEN: 'worker',
  OUTPUT_TOO_LONG: 'worker',
  LENGTH_BEFORE_MAX: 'worker',
  STOP_WITHOUT_END: 'worker',
  TOKEN_AFTER_END: 'worker',
  TOKEN_AFTER_STOP: 'worker',
  GREEDY_MISMATCH: 'worker',
  SEEDED_MISMATCH: 'worker',
  OUTSIDE_TOP_P: 'worker',
  BELOW_FLOOR: 'worker',
  REPEATED_MISMATCH: 'worker',
};

/** Soft signals: reported (reputation, audit rate), never a FAIL. */
export const SoftSignal = {
  /** A greedy token that is not the argmax, within the noise budget. */
  greedyNearTie: 'GREEDY_NEAR_TIE',
  /** A seeded token that is not the replayed pick, within the noise budget. */
  replayNearMiss: 'REPLAY_NEAR_MISS',
  /** The scorer listed too few tokens to bound the tail tightly: the seeded check leans to the worker. */
  partialDistribution: 'PARTIAL_DISTRIBUTION',
  samplerNotReplayed: 'SAMPLER_NOT_REPLAYED',
  unlikelyRank: 'UNLIKELY_RANK',
  singleBelowFloor: 'SINGLE_BELOW_FLOOR',
  logprobDrift: 'LOGPROB_DRIFT',
  endAvoided: 'END_AVOIDED',
} as const;
export type SoftSignalCode = (typeof SoftSignal)[keyof typeof SoftSignal];

export type Reason = { code: HardReasonCode; position?: number; detail: string };
export type Soft = { code: SoftSignalCode; position?: number; detail: string };

/** The audited job as the worker committed to it (from the gateway's audit API). */
export type JudgeJob = {
  /** The job's sampling params as the gateway recorded them (what the user asked for). */
  params: SamplingParams;
  /**
   * The sampler the worker ran, as signed into `requestHash` (so a gateway cannot serve another).
   * Each job is judged by what its own sampler allows: `CANONICAL_SAMPLER` (`aipg-sampler-v1`, the
   * llama-cpp backend) replays seeded jobs exactly and matches stop strings on the output decoded
   * alone (OutputText); any other name is an engine's own sampler (`ollama`, `vllm`: their own
   * RNG), whose seeded jobs are checked like unseeded ones (SAMPLER_NOT_REPLAYED) and whose first
   * token may be decoded either way (see `checkTermination`).
   */
  sampler: string;
  promptTokenIds: readonly number[];
  outputTokenIds: readonly number[];
  finishReason: FinishReason;
  receipt: Receipt;
  /** Usage as reported for the job, when known. */
  usage?: { promptTokens: number; completionTokens: number } | undefined;
  /** The job's pricing (for the fee check), when known. */
  pricing?: { inputPerMTokens: string; outputPerMTokens: string; confidentialPremiumBps: number } | undefined;
};

export type JudgeScores = {
  /** One per output token: the claimed model's distribution that predicted it. */
  positions: readonly ScoredPosition[];
};

export type JudgeModelInfo = {
  /** The model the scores came from: must be the receipt's. */
  modelId: Hex;
  vocabSize: number;
  isEndToken(id: number): boolean;
  detokenize(ids: readonly number[]): string;
};

export type JudgeInput = {
  job: JudgeJob;
  /** null when the output could not be scored (invalid token ids): only the structural rules run. */
  scores: JudgeScores | null;
  /** The job's input re-templated and tokenized by the validator. */
  expectedPromptTokenIds: readonly number[];
  modelInfo: JudgeModelInfo;
  thresholds?: Partial<JudgeThresholds> | undefined;
};

export type Sampling = 'greedy' | 'seeded' | 'sampled';

/** Per-job statistics of every threshold, for calibration and for the record. */
export type JudgeStats = {
  positions: number;
  /**
   * Greedy / seeded: the largest logit noise (nats) any passing token needed to be the sampler's
   * pick (0 when every token is the pick); null when none applies. Compare with `logitNoise`.
   */
  maxRequiredNoise: number | null;
  /** Tokens that failed the greedy / seeded rule. */
  mismatches: number;
  /**
   * Greedy / seeded (canonical sampler): the largest logit noises (nats) a token needed to be the
   * sampler's pick, descending, at most `NOISE_PROFILE_LENGTH` of them, capped at
   * `NOISE_PROFILE_MAX` (0s left out): REPEATED_MISMATCH fails a job when entry
   * `repeatFailCount(positions) − 1` exceeds `repeatNoise`.
   */
  noiseProfile: number[];
  /** Greedy / seeded (canonical sampler): tokens that need more than `repeatNoise` nats. */
  overRepeatNoise: number;
  /** Seeded positions judged on a partial distribution. */
  partialPositions: number;
  /** Sampled with top-p < 1: max share of tempered mass surely ranked before a token (under the noise budget). */
  maxMassBefore: number | null;
  /** Sampled: min over tokens of ln(pick probability upper bound) + ln V, in nats. */
  minFloorExcess: number | null;
  belowFloor: number;
  /** Sampled, complete distributions: mean (surprise − entropy), nats per token. */
  meanDrift: number | null;
};

export type Verdict = {
  /**
   * `fail`: at least one worker-fault reason (provable from the signed receipt and evidence that
   * hashes to it). `abstain`: none, but the gateway's evidence is at fault: no vote, report the
   * gateway. `pass`: neither.
   */
  verdict: 'pass' | 'fail' | 'abstain';
  /** The worker's faults: what a FAIL rests on. */
  reasons: Reason[];
  /** The gateway's faults: its evidence does not reproduce what the worker signed. */
  gatewayFaults: Reason[];
  soft: Soft[];
  /** keccak256 of the canonical JSON of `reasons` (what the attestation carries). */
  evidenceHash: Hex;
  evidence: { sampling: Sampling; stats: JudgeStats; thresholds: JudgeThresholds };
};

/** Per code, at most this many positions are listed; the rest are counted in one more reason. */
export const MAX_POSITIONS_PER_CODE = 8;
/** Entries of `JudgeStats.noiseProfile`, and the noise (nats) they are capped at. */
export const NOISE_PROFILE_LENGTH = 16;
export const NOISE_PROFILE_MAX = 4;

/**
 * Whether the served token ids, params, sampler and finish reason hash to what the worker signed
 * (RECEIPT_REQUEST_HASH, RECEIPT_OUTPUT_HASH; both the gateway's fault). Cheap: the node runs it
 * before scoring, and every other rule needs it to hold.
 */
export function commitmentFaults(job: JudgeJob): Reason[] {
  const { receipt } = job;
  const faults: Reason[] = [];
  const requestHash = computeRequestHash(job.promptTokenIds, job.params, job.sampler);
  if (requestHash !== receipt.requestHash.toLowerCase())
    faults.push({
      code: HardReason.requestHash,
      detail: `receipt requestHash ${receipt.requestHash} ≠ ${requestHash} of the prompt ids, params and sampler`,
    });
  const outputHash = computeOutputHash(job.outputTokenIds, job.finishReason);
  if (outputHash !== receipt.outputHash.toLowerCase())
    faults.push({
      code: HardReason.outputHash,
      detail: `receipt outputHash ${receipt.outputHash} ≠ ${outputHash} of the output ids and finish`,
    });
  return faults;
}

export function judge(input: JudgeInput): Verdict {
  const { job, scores, expectedPromptTokenIds, modelInfo } = input;
  const t: JudgeThresholds = { ...DEFAULT_THRESHOLDS, ...input.thresholds };
  const { params, receipt } = job;
  const prompt = job.promptTokenIds;
  const output = job.outputTokenIds;
  const reasons: Reason[] = [];
  const soft: Soft[] = [];
  const hard = (code: HardReasonCode, detail: string, position?: number) =>
    reasons.push(position === undefined ? { code, detail } : { code, position, detail });

  if (modelInfo.modelId.toLowerCase() !== receipt.modelId.toLowerCase())
    throw new ValidatorError('The scores are from another model than the receipt names', {
      code: ValidatorErrorCode.judgeInput,
      details: `receipt ${receipt.modelId}, scored with ${modelInfo.modelId}`,
    });

  // ── commitments ──────────────────────────────────────────────────────────────────────────
  // Evidence that does not hash to the receipt is not the worker's: whatever the other rules
  // would find in it proves nothing about the worker. Abstain, and report the gateway.
  const unbound = commitmentFaults(job);
  if (unbound.length > 0) {
    return {
      verdict: 'abstain',
      reasons: [],
      gatewayFaults: unbound,
      soft: [],
      evidenceHash: evidenceHash([]),
      evidence: { sampling: samplingOf(job), stats: emptyStats(output.length), thresholds: t },
    };
  }
  const firstDiff = firstDifference(prompt, expectedPromptTokenIds);
  if (firstDiff >= 0)
    hard(
      HardReason.promptMismatch,
      `prompt ids differ from the re-templated prompt at index ${firstDiff} (${prompt.length} vs ${expectedPromptTokenIds.length} ids)`,
    );

  // ── usage ────────────────────────────────────────────────────────────────────────────────
  if (receipt.inputUnits !== BigInt(prompt.length))
    hard(HardReason.inputUnits, `inputUnits ${receipt.inputUnits} ≠ ${prompt.length} prompt tokens`);
  if (receipt.outputUnits !== BigInt(output.length))
    hard(HardReason.outputUnits, `outputUnits ${receipt.outputUnits} ≠ ${output.length} output tokens`);
  if (job.usage && (job.usage.promptTokens !== prompt.length || job.usage.completionTokens !== output.length))
    hard(
      HardReason.usage,
      `usage ${job.usage.promptTokens}/${job.usage.completionTokens} ≠ ${prompt.length}/${output.length} tokens`,
    );
  const inputUnits = Number(receipt.inputUnits);
  const outputUnits = Number(receipt.outputUnits);
  // At the receipt's own units: inflated units are already USAGE_*_UNITS (the worker's), and
  // what is left of a mismatch is between the fee and the served pricing (the gateway's). Units
  // past 2^53 are inflated anyway.
  if (job.pricing && Number.isSafeInteger(inputUnits) && Number.isSafeInteger(outputUnits)) {
    const fee = feeAtPricing(job.pricing, {
      inputTokens: inputUnits,
      outputTokens: outputUnits,
      confidential: receipt.confidential,
    });
    if (fee !== receipt.fee)
      hard(HardReason.fee, `fee ${receipt.fee} ≠ ${fee} for the receipt's units at the served pricing`);
  }

  // ── termination ──────────────────────────────────────────────────────────────────────────
  const invalidPrompt = prompt.findIndex(
    (id) => !Number.isInteger(id) || id < 0 || id >= modelInfo.vocabSize,
  );
  if (invalidPrompt >= 0)
    hard(
      HardReason.invalidPromptToken,
      `prompt token id ${prompt[invalidPrompt]} at index ${invalidPrompt} is outside the vocabulary (${modelInfo.vocabSize})`,
    );
  const invalid = output.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= modelInfo.vocabSize);
  if (invalid >= 0)
    hard(
      HardReason.invalidToken,
      `token id ${output[invalid]} is outside the vocabulary (${modelInfo.vocabSize})`,
      invalid,
    );
  else checkTermination(job, modelInfo, hard);

  // ── the model's distribution at every output position ────────────────────────────────────
  const sampling = samplingOf(job);
  const stats = emptyStats(output.length);
  if (scores === null) {
    if (reasons.length === 0)
      throw new ValidatorError('Scores are needed unless the job already fails on its token ids', {
        code: ValidatorErrorCode.judgeInput,
      });
  } else {
    if (scores.positions.length !== output.length)
      throw new ValidatorError('The scores do not cover the output', {
        code: ValidatorErrorCode.judgeInput,
        details: `${scores.positions.length} scored positions for ${output.length} output tokens`,
      });
    scores.positions.forEach((p, i) => {
      if (p.tokenId !== output[i])
        throw new ValidatorError('The scores are for other tokens than the output', {
          code: ValidatorErrorCode.judgeInput,
          details: `position ${i}: scored ${p.tokenId}, output ${output[i]}`,
        });
    });
    if (params.temperature > 0 && params.seed !== null && job.sampler !== CANONICAL_SAMPLER)
      soft.push({
        code: SoftSignal.samplerNotReplayed,
        detail: `seeded job sampled by ${job.sampler}, which cannot be replayed: checked as unseeded`,
      });
    checkPositions(job, scores.positions, modelInfo, t, sampling, stats, hard, soft);
  }

  const worker = capPositions(reasons.filter((r) => REASON_FAULT[r.code] === 'worker'));
  const gatewayFaults = reasons.filter((r) => REASON_FAULT[r.code] === 'gateway');
  return {
    // The hashes bind the ids and params: a worker's fault found in them stands even when the
    // gateway's other evidence (input, pricing, usage) is also wrong.
    verdict: worker.length > 0 ? 'fail' : gatewayFaults.length > 0 ? 'abstain' : 'pass',
    reasons: worker,
    gatewayFaults,
    soft: capPositions(soft),
    evidenceHash: evidenceHash(worker),
    evidence: { sampling, stats, thresholds: t },
  };
}

/** Greedy for temperature 0; seeded replay only for a seeded job of the canonical sampler. */
function samplingOf(job: JudgeJob): Sampling {
  if (job.params.temperature === 0) return 'greedy';
  return job.params.seed !== null && job.sampler === CANONICAL_SAMPLER ? 'seeded' : 'sampled';
}

function emptyStats(positions: number): JudgeStats {
  return {
    positions,
    maxRequiredNoise: null,
    mismatches: 0,
    noiseProfile: [],
    overRepeatNoise: 0,
    partialPositions: 0,
    maxMassBefore: null,
    minFloorExcess: null,
    belowFloor: 0,
    meanDrift: null,
  };
}

function checkTermination(
  job: JudgeJob,
  model: JudgeModelInfo,
  hard: (code: HardReasonCode, detail: string, position?: number) => void,
): void {
  const findings = terminationFaults(
    {
      outputTokenIds: job.outputTokenIds,
      finishReason: job.finishReason,
      params: job.params,
      promptTokenIds: job.promptTokenIds,
      canonical: job.sampler === CANONICAL_SAMPLER,
    },
    model,
  );
  for (const f of findings) hard(f.code, f.detail, f.position);
}

function checkPositions(
  job: JudgeJob,
  positions: readonly ScoredPosition[],
  model: JudgeModelInfo,
  t: JudgeThresholds,
  sampling: Sampling,
  stats: JudgeStats,
  hard: (code: HardReasonCode, detail: string, position?: number) => void,
  soft: Soft[],
): void {
  const { params } = job;
  const V = model.vocabSize;
  const floor = -(Math.log(V) + t.floorExcessNats);
  const below: number[] = [];
  let driftSum = 0;
  let driftCount = 0;
  const fmt = (x: number) => (Number.isFinite(x) ? x.toPrecision(4) : String(x));

  const tol: Tolerance = { logitNoise: t.logitNoise, topPSlack: t.topPSlack };
  /** Greedy / seeded: (position, noise it needs to be the pick) for every token that is not the pick. */
  const needs: { position: number; noise: number }[] = [];
  positions.forEach((p, i) => {
    const v = positionView(p, V);
    if (sampling === 'greedy') {
      const g = greedyCheck(v);
      if (g.expectedTokenId !== p.tokenId && g.requiredNoise > 0)
        needs.push({ position: i, noise: Math.min(NOISE_PROFILE_MAX, g.requiredNoise) });
      if (g.expectedTokenId !== p.tokenId && g.requiredNoise > t.logitNoise) {
        stats.mismatches++;
        hard(
          HardReason.greedyMismatch,
          `token ${p.tokenId} (p=${fmt(p.probability)}), argmax ${g.expectedTokenId} (p=${fmt(p.probability + g.gap)}): needs ${fmt(g.requiredNoise)} nats of noise`,
          i,
        );
      } else {
        stats.maxRequiredNoise = Math.max(stats.maxRequiredNoise ?? 0, g.requiredNoise);
        if (g.expectedTokenId !== p.tokenId)
          soft.push({
            code: SoftSignal.greedyNearTie,
            position: i,
            detail: `token ${p.tokenId} is not the argmax ${g.expectedTokenId} (${fmt(g.requiredNoise)} nats of noise)`,
          });
      }
    } else if (sampling === 'seeded') {
      const seed = params.seed!;
      const r = seededCheck(v, { temperature: params.temperature, topP: params.topP, seed }, i, tol);
      if (r.partial) {
        stats.partialPositions++;
        soft.push({
          code: SoftSignal.partialDistribution,
          position: i,
          detail: 'the listed top tokens leave a tail that matters: the replay leans to the worker',
        });
      }
      // The least noise that makes the token the pick (the per-token rule asks only whether it is
      // within the budget; REPEATED_MISMATCH counts how many need more than repeatNoise).
      const needed =
        r.expectedTokenId === p.tokenId
          ? 0
          : requiredNoise(
              (noise) => seededCheck(v, { ...params, seed }, i, { ...tol, logitNoise: noise }).distance === 0,
              NOISE_PROFILE_MAX,
            );
      if (needed > 0) needs.push({ position: i, noise: needed });
      if (r.distance > 0) {
        stats.mismatches++;
        hard(
          HardReason.seededMismatch,
          r.distance >= 1
            ? `token ${p.tokenId} (rank ${p.rank}) cannot be in the top-p ${params.topP} nucleus; the sampler with seed ${seed} picks ${r.expectedTokenId}`
            : `token ${p.tokenId}, the sampler with seed ${seed} picks ${r.expectedTokenId} (u is ${fmt(r.distance)} outside the token's widest interval)`,
          i,
        );
      } else {
        stats.maxRequiredNoise = Math.max(stats.maxRequiredNoise ?? 0, needed);
        if (needed > 0)
          soft.push({
            code: SoftSignal.replayNearMiss,
            position: i,
            detail: `token ${p.tokenId} is not the replayed pick ${r.expectedTokenId} (${fmt(needed)} nats of noise)`,
          });
      }
    }
    if (sampling === 'greedy') return;

    // Sampled (seeded too): the token must be inside the top-p nucleus and not absurdly unlikely.
    if (params.topP + t.topPSlack < 1) {
      // Tempering before or after the top-p cut (engines differ): outside only if outside both.
      const before = Math.min(
        massBeforeLower(v, params.temperature, t.logitNoise),
        massBeforeLower(v, 1, t.logitNoise),
      );
      stats.maxMassBefore = Math.max(stats.maxMassBefore ?? 0, before);
      if (before >= params.topP + t.topPSlack)
        hard(
          HardReason.outsideTopP,
          `token ${p.tokenId} (rank ${p.rank}): ${fmt(before)} of the mass ranks before it, top_p ${params.topP}`,
          i,
        );
    }
    const logPick = logPickUpper(v, params.temperature);
    const excess = logPick + Math.log(V);
    stats.minFloorExcess = Math.min(stats.minFloorExcess ?? Number.POSITIVE_INFINITY, excess);
    if (logPick < floor) below.push(i);
    if (p.rank >= t.softRank)
      soft.push({
        code: SoftSignal.unlikelyRank,
        position: i,
        detail: `token ${p.tokenId} at rank ${p.rank}`,
      });
    const s = surprise(v, params.temperature, params.topP);
    if (s) {
      driftSum += s.surprise - s.entropy;
      driftCount++;
    }
    const end = endAvoided(v, model, t.softEndAvoidedRatio);
    if (end)
      soft.push({
        code: SoftSignal.endAvoided,
        position: i,
        detail: `end token ${end.tokenId} (p=${fmt(end.probability)}) ≥ ${t.softEndAvoidedRatio}× token ${p.tokenId}`,
      });
  });

  // The count of tokens over repeatNoise is calibrated on the canonical engine's numerics (F32
  // attention on every CPU build: README "Calibration"); another engine's kernels (F16 attention
  // accumulation) drift further on long contexts, so its greedy jobs keep the per-token rule only.
  if (sampling === 'seeded' || (sampling === 'greedy' && job.sampler === CANONICAL_SAMPLER)) {
    needs.sort((a, b) => b.noise - a.noise || a.position - b.position);
    stats.noiseProfile = needs.slice(0, NOISE_PROFILE_LENGTH).map((n) => n.noise);
    const over = needs.filter((n) => n.noise > t.repeatNoise);
    stats.overRepeatNoise = over.length;
    const failAt = repeatFailCount(positions.length, t);
    if (over.length >= failAt)
      hard(
        HardReason.repeatedMismatch,
        `${over.length} tokens each need more than ${t.repeatNoise} nats of logit noise to be the ${sampling} pick (${failAt} fail a job of ${positions.length}): ${over
          .slice(0, MAX_POSITIONS_PER_CODE)
          .map(
            (n) =>
              `position ${n.position} needs ${n.noise >= NOISE_PROFILE_MAX ? `≥ ${NOISE_PROFILE_MAX}` : fmt(n.noise)}`,
          )
          .join(', ')}${over.length > MAX_POSITIONS_PER_CODE ? ', …' : ''}`,
      );
  }

  stats.belowFloor = below.length;
  if (below.length >= t.floorMinCount)
    for (const i of below) {
      const p = positions[i]!;
      hard(
        HardReason.belowFloor,
        `token ${p.tokenId} (p=${fmt(p.probability)}, rank ${p.rank}) is below the floor e^${fmt(floor)} at temperature ${params.temperature}`,
        i,
      );
    }
  else
    for (const i of below)
      soft.push({
        code: SoftSignal.singleBelowFloor,
        position: i,
        detail: `token ${positions[i]!.tokenId} is below the floor (${below.length} < ${t.floorMinCount} such tokens)`,
      });
  if (driftCount > 0) {
    stats.meanDrift = driftSum / driftCount;
    if (driftCount >= t.softDriftMinPositions && stats.meanDrift > t.softDriftNats)
      soft.push({
        code: SoftSignal.logprobDrift,
        detail: `mean surprise exceeds entropy by ${fmt(stats.meanDrift)} nats over ${driftCount} tokens`,
      });
  }
}

/**
 * How many tokens over `repeatNoise` fail a greedy or seeded job of `positions` tokens:
 * `repeatMinCount`, and at least `repeatMinShare` of them in a long one (honest tokens over
 * `repeatNoise` are rare events: their count must not grow into the threshold with the length).
 */
export function repeatFailCount(
  positions: number,
  t: Pick<JudgeThresholds, 'repeatMinCount' | 'repeatMinShare'>,
) {
  return Math.max(t.repeatMinCount, Math.ceil(t.repeatMinShare * positions));
}

/**
 * ln of an upper bound of the probability any top-p/top-k sampler at this temperature picks the
 * claimed token: q / Σ q over the shortest canonical prefix that contains it (a nucleus always
 * holds every token ranked above its members), and never above the full tempered bound.
 */
function logPickUpper(v: PositionView, temperature: number): number {
  const full = logTemperedUpper(v, temperature);
  if (v.claimed < 0) return full;
  const inv = 1 / temperature;
  let prefix = 0;
  for (let i = 0; i <= v.claimed; i++) prefix += v.top[i]!.probability ** inv;
  const q = v.probability ** inv;
  if (q <= 0) return Number.NEGATIVE_INFINITY;
  return Math.max(full, Math.log(Math.min(1, q / prefix)));
}

function endAvoided(v: PositionView, model: JudgeModelInfo, ratio: number): TopToken | undefined {
  if (model.isEndToken(v.tokenId)) return undefined;
  return v.top.find((t) => model.isEndToken(t.tokenId) && t.probability >= ratio * v.probability);
}

function firstDifference(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** At most MAX_POSITIONS_PER_CODE positioned entries per code, then one that counts the rest. */
function capPositions<T extends { code: string; position?: number; detail: string }>(items: T[]): T[] {
  const seen = new Map<string, number>();
  const out: T[] = [];
  const extra = new Map<string, number>();
  for (const item of items) {
    if (item.position === undefined) {
      out.push(item);
      continue;
    }
    const n = seen.get(item.code) ?? 0;
    seen.set(item.code, n + 1);
    if (n < MAX_POSITIONS_PER_CODE) out.push(item);
    else extra.set(item.code, (extra.get(item.code) ?? 0) + 1);
  }
  for (const [code, count] of extra) out.push({ code, detail: `${count} more positions` } as T);
  return out;
}
