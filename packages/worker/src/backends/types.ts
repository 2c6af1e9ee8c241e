import type { ChatMessage, FinishReason, Hardware, SamplingParams } from '@aipg/core';
import type { Hex } from 'viem';

/** What a backend serves: the on-chain identity of the weights it runs. */
export type BackendModel = {
  /** Registry name, e.g. "aipg-tiny-llama". */
  name: string;
  /** sha256 of the weights file (0x-hex, 32 bytes): must match the ModelRegistry entry. */
  weightsHash: Hex;
  /** `computeModelId(name, weightsHash)`. */
  modelId: Hex;
};

export type GenerateInput = { messages: ChatMessage[] } | { prompt: string };

export type TokenDelta = { text: string; tokenIds: number[] };

export type GenerateRequest = {
  input: GenerateInput;
  params: SamplingParams;
  /** Aborted when the client goes away or the worker shuts down hard. */
  signal: AbortSignal;
  /** Called for each chunk of generated tokens, in order (only when the job streams). */
  onToken?: ((delta: TokenDelta) => void) | undefined;
};

export type GenerateResult = {
  text: string;
  /** The prompt exactly as the model saw it, after the chat template, as token ids. */
  promptTokenIds: number[];
  outputTokenIds: number[];
  finishReason: FinishReason;
  timings: { ttftMs: number; totalMs: number };
};

/** A teacher-forced pass over `promptTokenIds` + `outputTokenIds` (a validator's cross-check). */
export type ScoreRequest = {
  promptTokenIds: readonly number[];
  outputTokenIds: readonly number[];
  /** Most probable tokens reported per position. */
  topK: number;
  signal: AbortSignal;
};

export type ScoredToken = { tokenId: number; probability: number };

export type ScoreResult = {
  /** One entry per output token: the distribution that predicted it (raw, temperature 1). */
  positions: { tokenId: number; probability: number; rank: number; top: ScoredToken[] }[];
};

/**
 * One model on one inference engine. A worker process holds several (one per model it serves),
 * each with its own concurrency limit. Implementations live in `backends/<name>/`.
 */
export interface InferenceBackend {
  readonly kind: 'llama-cpp' | 'ollama' | 'openai';
  readonly model: BackendModel;
  /** Loads weights / checks the server is reachable and serves the model. Idempotent. */
  load(): Promise<void>;
  generate(request: GenerateRequest): Promise<GenerateResult>;
  /**
   * Scores a claimed output with the model (gateway `score` frames). Absent when the backend cannot
   * read the model's distribution (remote servers): the worker answers `SCORE_UNSUPPORTED`.
   */
  score?(request: ScoreRequest): Promise<ScoreResult>;
  close(): Promise<void>;
}

export type { Hardware };
