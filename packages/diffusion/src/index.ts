export { DiffusionAbortedError, ImageModelFileError, PipelineClosedError } from './errors.ts';
export {
  defaultImageModelsDir,
  type EnsureImageModelOptions,
  type EnsureImageModelReturnType,
  ensureImageModel,
  type ImageModelFiles,
  loadImageModel,
} from './model/ensure-image-model.ts';
export {
  BOS_ID,
  EOS_ID,
  IMAGE_MODEL_FILES,
  type ImageModel,
  type ImageModelConfig,
  type ImageModelFile,
  type ImageModelPart,
  imageModelManifest,
  LATENT_CHANNELS,
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  makeImageModel,
  PAD_ID,
  TEXT_CONTEXT_LENGTH,
  VAE_SCALE,
} from './model/make-image-model.ts';
export { IMAGE_MODEL_PRESETS, type ImageModelPreset, type ImageModelPresetName } from './model/presets.ts';
export {
  type CreateDiffusionPipelineOptions,
  createDiffusionPipeline,
  DIFFUSION_CAPABILITIES,
  DIFFUSION_PIPELINE,
  type DiffusionGenerateRequest,
  type DiffusionGenerateResult,
  type DiffusionImage,
  type DiffusionPipeline,
  type DiffusionProgress,
  type DiffusionStepRequest,
  MAX_PARTIAL_IMAGES,
} from './pipeline/pipeline.ts';
export { SCHEDULERS, type Scheduler } from './pipeline/schedule.ts';
export { relativeL2 } from './relative-l2.ts';
