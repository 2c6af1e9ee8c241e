export {
  createImageAdversaryBackend,
  IMAGE_ADVERSARY_KINDS,
  type ImageAdversaryKind,
  isImageAdversary,
} from './adversary/image.ts';
export {
  ADVERSARY_KINDS,
  type AdversaryBackend,
  AdversaryError,
  AdversaryErrorCode,
  type AdversaryEvent,
  type AdversaryKind,
  type AdversaryTokenizer,
  type CreateAdversaryBackendOptions,
  createAdversaryBackend,
  INJECTED_TEXT,
  isSubstitute,
  OVERBILL_FACTOR,
  twinBits,
} from './adversary/index.ts';
export type { CreateBackend } from './backend-factory.ts';
export { createDiffusionBackend, type DiffusionBackendOptions } from './backends/diffusion/index.ts';
export {
  createLlamaCppBackend,
  type LlamaCppBackend,
  type LlamaCppBackendOptions,
} from './backends/llama-cpp/index.ts';
export type {
  BackendModel,
  GeneratedImage,
  GenerateInput,
  GenerateRequest,
  GenerateResult,
  ImageBackend,
  ImageRequest,
  ImageResult,
  InferenceBackend,
  JobFrame,
  ScoredToken,
  ScoreRequest,
  ScoreResult,
  TokenDelta,
} from './backends/types.ts';
export { type RunWorkerStartDependencies, runWorkerStart } from './cli.ts';
export {
  BACKEND_KINDS,
  type BackendKind,
  createWorkerOptions,
  GATEWAY_WORKER_PATH,
  NETWORKS,
  type NetworkKind,
  normalizeGatewayUrl,
  WORKER_DEFAULTS,
  WORKER_ENV,
  type WorkerEnv,
  type WorkerFlags,
  type WorkerModelOptions,
  type WorkerOptions,
} from './config/options.ts';
export {
  BondRequirementError,
  ChainMismatchError,
  HardwareRequirementError,
  ModelRegistryError,
  WorkerConfigError,
  WorkerErrorCode,
} from './errors.ts';
export {
  type DetectHardwareOptions,
  detectHardware,
  parseNvidiaSmi,
  parseRocmSmi,
} from './hardware/detect.ts';
export {
  checkHardwareRule,
  type HardwareVerdict,
  MIN_VRAM_MB,
  RECOMMENDED_VRAM_MB,
} from './hardware/policy.ts';
export { backoffDelay } from './hub/backoff.ts';
export { buildTextReceipt, signReceipt } from './jobs/receipt.ts';
export type { WorkerMetrics } from './metrics/registry.ts';
export {
  checkServedModels,
  checkWorkerBond,
  type RegisteredModel,
  type WorkerBond,
} from './preflight/chain.ts';
export { createSimulatedWorkerTee, type WorkerTee } from './tee/index.ts';
export { WORKER_VERSION } from './version.ts';
export {
  type CreateWorkerParameters,
  createWorker,
  createWorkerCommon,
  type ProvidedBackend,
  type StartWorkerDependencies,
  type StopOptions,
  startWorker,
  type Worker,
  type WorkerCommon,
  type WorkerState,
  type WorkerStatus,
} from './worker.ts';
