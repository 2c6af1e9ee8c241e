import { type ChatMessage, MAX_SCORE_ENTRIES, MAX_SCORE_TOP_K, type ScoreAttestation } from '@aipg/core';
import type { Address, Hex } from 'viem';
import type { JudgeModelInfo, JudgeScores } from '../judge/judge.ts';

/** How the validator gets the claimed model's distributions: on its own hardware, or from a peer. */
export type CheckerMode = 'reexecute' | 'crosscheck';
export const CHECKER_MODES = ['reexecute', 'crosscheck'] as const satisfies readonly CheckerMode[];

/** The model a receipt names, as registered on chain. */
export type AuditModel = { modelId: Hex; name: string; weightsHash: Hex };

export type CheckRequest = {
  jobId: Hex;
  model: AuditModel;
  kind: 'chat' | 'completion';
  input: { messages: ChatMessage[] } | { prompt: string };
  /** What the worker claims ran (the receipt commits to them). */
  promptTokenIds: readonly number[];
  outputTokenIds: readonly number[];
  /** The audited worker (bond owner): a cross-check never asks it to score its own job. */
  worker: Address;
  /**
   * The audited worker's operator keys (the receipt's signer, its bond's operator now): a cross-check
   * never draws a scorer listed with one of them.
   */
  workerOperators?: readonly Address[] | undefined;
  /** The gateway that served the job (a cross-check goes through it). */
  gateway?: Address | undefined;
  /**
   * Cross-check: the seed of this audit's scorer draw (`scorerDrawSeed` of ./draw.ts, from the batch's
   * on-chain randomness). Required there: without it no scorer is drawn.
   */
  scorerSeed?: Hex | undefined;
  /** Cross-check: bond owners already asked for this audit; the draw goes on after them. */
  skipScorers?: readonly Address[] | undefined;
  signal?: AbortSignal | undefined;
};

/** A cross-check worker's scores as it signed them: what the validator judged with, kept as evidence. */
export type SignedScore = {
  /** The scorer's bond owner (drawn) and the operator key its signature recovers to (its bond's, checked on chain). */
  worker: Address;
  operator: Address;
  signature: Hex;
  /** What it signed (`scoreTypedData(attestation, chainId, grid)`). */
  attestation: ScoreAttestation;
  /** The scores, exactly as signed (`positionsHash` is their hash). */
  positions: JudgeScores['positions'];
  /** Its place in this audit's draw order (0: the first candidate). */
  drawIndex: number;
};

export type CheckResult = {
  /** The job's input re-templated and tokenized with the model's own tokenizer. */
  expectedPromptTokenIds: number[];
  /** null when the output holds ids outside the vocabulary (nothing to score). */
  scores: JudgeScores | null;
  modelInfo: JudgeModelInfo;
  /** Who computed the scores: this validator, or the bond owner of the cross-check worker. */
  scorer: 'local' | Address;
  /** Cross-check: the scorer's signed answer. */
  score?: SignedScore | undefined;
  /** Cross-check: every bond owner asked, in draw order (the one that answered last). */
  tried?: Address[] | undefined;
};

/** Re-execute and cross-check behind one interface (`--mode reexecute|crosscheck`). */
export interface Checker {
  readonly mode: CheckerMode;
  check(request: CheckRequest): Promise<CheckResult>;
  close(): Promise<void>;
}

/**
 * Top-k per position a local re-execution reads: the whole vocabulary when it is small enough
 * (every rule is then exact), else this many (the judge bounds the unseen tail, leaning to the
 * worker).
 */
export const FULL_DISTRIBUTION_MAX_VOCAB = 4096;
export const PARTIAL_TOP_K = 256;

export function scoringTopK(vocabSize: number): number {
  return vocabSize <= FULL_DISTRIBUTION_MAX_VOCAB ? vocabSize : PARTIAL_TOP_K;
}

/**
 * Top-k a cross-check asks of a scoring worker: as many as a `score` frame carries
 * (`MAX_SCORE_TOP_K`, and `outputs × (topK + 1) ≤ MAX_SCORE_ENTRIES`), at most the vocabulary.
 */
export function crosscheckTopK(vocabSize: number, outputTokens: number): number {
  const byEntries = Math.floor(MAX_SCORE_ENTRIES / Math.max(1, outputTokens + 1)) - 1;
  return Math.max(1, Math.min(vocabSize, MAX_SCORE_TOP_K, byEntries));
}

/** True when every id is a token of a `vocabSize` vocabulary. */
export function idsInVocabulary(ids: readonly number[], vocabSize: number): boolean {
  return ids.every((id) => Number.isInteger(id) && id >= 0 && id < vocabSize);
}
