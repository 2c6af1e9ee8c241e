import type {
  ChatMessage,
  FinishReason,
  Hardware,
  ImageCapabilities,
  ImageCheckOp,
  ImageParams,
  SamplingParams,
  WorkerToGateway,
} from '@aipg/core';
import type { Tokenizer } from '@aipg/inference';
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

/**
 * Generated ids, in order. Frames carry ids only (protocol v3): the gateway renders the text from
 * them with the model's registered tokenizer.
 */
export type TokenDelta = { tokenIds: number[] };

export type GenerateRequest = {
  /** The job's input, for backends whose server takes text (Ollama: to render the raw prompt). */
  input: GenerateInput;
  /**
   * The prompt as the gateway tokenized it (BOS, the model's chat template, its registered
   * tokenizer): what the backend must run, and what the receipt commits to.
   */
  promptTokenIds: readonly number[];
  params: SamplingParams;
  /** Aborted when the client goes away or the worker shuts down hard. */
  signal: AbortSignal;
  /** Called for each chunk of generated tokens, in order (only when the job streams). */
  onToken?: ((delta: TokenDelta) => void) | undefined;
};

export type GenerateResult = {
  /** The prompt exactly as the model saw it: the request's `promptTokenIds` for an honest backend. */
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
  /**
   * The sampler the engine draws tokens with, advertised per model in `hello` and signed into every
   * receipt's `requestHash`: `CANONICAL_SAMPLER` (@aipg/core) where @aipg/inference's sampler runs
   * (llama-cpp), else the engine's own name (`ollama`, `vllm`).
   */
  readonly sampler: string;
  /** Loads weights / checks the server is reachable and serves the model. Idempotent. */
  load(): Promise<void>;
  generate(request: GenerateRequest): Promise<GenerateResult>;
  /**
   * The model's tokenizer in this process (its chat template included), after `load()`: a confidential
   * job is tokenized inside the worker's TEE. Absent for remote servers (they tokenize themselves).
   */
  tokenizer?(): Tokenizer;
  /**
   * Scores a claimed output with the model (gateway `score` frames). Absent when the backend cannot
   * read the model's distribution (remote servers): the worker answers `SCORE_UNSUPPORTED`.
   */
  score?(request: ScoreRequest): Promise<ScoreResult>;
  /**
   * Devnet adversaries only (adversary/index.ts): rewrites each `token` and `result` frame of a job
   * just before it is sent (after the receipt is signed). Honest backends leave it undefined.
   */
  rewriteFrame?<F extends JobFrame>(frame: F): F;
  close(): Promise<void>;
}

/** The frames a job streams to the gateway. */
export type JobFrame = Extract<WorkerToGateway, { type: 'token' | 'result' }>;

export type { Hardware };

/** One image job as a backend runs it (the gateway fixed every parameter; the receipt commits to them). */
export type ImageRequest = {
  /** The prompt as UTF-8 bytes (`imagePromptTokenIds` of @aipg/core); `imagePromptText` decodes it. */
  promptTokenIds: readonly number[];
  negativeTokenIds: readonly number[];
  params: ImageParams;
  /** Previews wanted while it runs (OpenAI's `partial_images`, 0–3): pass `preview` that many times. */
  partialImages: number;
  signal: AbortSignal;
  /** After each denoising step of each image (`step` of `steps` done, 1-based), in order. */
  onProgress?:
    | ((p: { image: number; step: number; steps: number; preview?: Uint8Array }) => void)
    | undefined;
};

export type GeneratedImage = {
  /** The image encoded as `params.format`: exactly the bytes the user receives. */
  bytes: Uint8Array;
  /** `trajectoryTree(latents).root` (@aipg/core), or `ZERO_TRAJECTORY` when the engine hides its latents. */
  trajectoryRoot: Hex;
  /** The `steps + 1` latents the root commits to (noise first), when the engine exposes them. */
  latents?: readonly Float32Array[] | undefined;
};

export type ImageResult = { images: GeneratedImage[]; timings: { totalMs: number } };

export type ImageCheckRequest = {
  op: ImageCheckOp;
  promptTokenIds: readonly number[];
  negativeTokenIds: readonly number[];
  params: ImageParams;
  image: number;
  step: number;
  /** The latent to start from (`step`, `decode`). */
  latent?: Float32Array | undefined;
  signal: AbortSignal;
};

/**
 * One image model on one engine: the embedded ONNX pipeline (`@aipg/diffusion`), ComfyUI, or
 * Automatic1111/Forge. Implementations live in `backends/<name>/`.
 */
export interface ImageBackend {
  readonly kind: 'diffusion' | 'comfyui' | 'a1111';
  readonly model: BackendModel;
  /** The pipeline's name, advertised as the model's `sampler` and signed into every receipt's `requestHash`. */
  readonly pipeline: string;
  /** Sizes, step range, count and schedulers it accepts (known after `load`). */
  readonly capabilities: ImageCapabilities;
  /** Loads the pipeline / checks the server serves the model (a smoke run before advertising it). Idempotent. */
  load(): Promise<void>;
  /** Generates `params.n` images; aborting `signal` stops the engine (ComfyUI `/interrupt`, A1111 `/sdapi/v1/interrupt`). */
  generate(request: ImageRequest): Promise<ImageResult>;
  /**
   * A validator's cross-check of another worker's image job (`image-check`): the seed's noise, one
   * denoising step from a committed latent, or the decode of the final latent, computed exactly as
   * `generate` would. Absent when the engine hides its latents: the worker answers it cannot check.
   */
  check?(request: ImageCheckRequest): Promise<{ latent?: Float32Array; bytes?: Uint8Array }>;
  close(): Promise<void>;
}
