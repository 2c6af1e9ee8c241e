export { applyChatTemplate, CHAT_TEMPLATE } from './chat-template.ts';
export {
  createLlamaEngine,
  type GenerateOptions,
  type Generation,
  type LlamaEngine,
  type LlamaEngineOptions,
  type PositionScore,
  type ScoreOptions,
  type ScoreResult,
  type TopToken,
} from './engine.ts';
export {
  ContextOverflowError,
  EngineClosedError,
  InferenceAbortedError,
  InvalidTokenError,
  ModelFileError,
} from './errors.ts';
export {
  type EnsureModelParameters,
  type EnsureModelReturnType,
  ensureModel,
  sha256File,
  sha256Hex,
} from './gguf/ensure-model.ts';
export {
  type GgufConfig,
  type GgufFileType,
  type GgufModel,
  makeGguf,
  requantizeBlocks,
} from './gguf/make-gguf.ts';
export { MODEL_PRESETS, type ModelPreset, type ModelPresetName } from './gguf/presets.ts';
export { extractTokenizerFile } from './gguf/tokenizer-file.ts';
export type { LlamaLogSink } from './llama.ts';
export {
  type Distribution,
  type ReplayCheck,
  replayCheck,
  SAMPLER_VERSION,
  type SamplerParams,
  type SamplingSupport,
  samplerUniform,
  sampleToken,
  samplingSupport,
} from './sampler.ts';
export {
  TerminationFault,
  type TerminationFaultCode,
  type TerminationFinding,
  type TerminationInput,
  type TerminationTokenizer,
  terminationFaults,
} from './termination.ts';
export { OutputText, type TokenDelta } from './text-stream.ts';
export { type CreateTokenizerOptions, createTokenizer, type Tokenizer } from './tokenizer.ts';
