import type { Logger } from 'pino';
import type { ImageBackend, InferenceBackend } from './backends/types.ts';
import type { BackendKind, WorkerModelOptions } from './config/options.ts';

/**
 * The contract between the worker runtime and `backends/<kind>/index.ts`: each backend module
 * exports `createBackend(model, { logger })`, returning an unloaded `InferenceBackend` whose
 * `model` (name, weightsHash, modelId) is known once `load()` has resolved.
 */
export type CreateBackend = (
  model: WorkerModelOptions,
  context: { logger: Logger },
) => InferenceBackend | Promise<InferenceBackend>;

/**
 * Imported on demand, so a worker serving only Ollama never loads llama.cpp's native addon. The
 * type annotation checks each module's `createBackend` against the contract.
 */
const modules: Record<
  Exclude<BackendKind, 'diffusion' | 'comfyui' | 'a1111'>,
  () => Promise<{ createBackend: CreateBackend }>
> = {
  'llama-cpp': () => import('./backends/llama-cpp/index.ts'),
  ollama: () => import('./backends/ollama/index.ts'),
  openai: () => import('./backends/openai/index.ts'),
};

/** Creates (does not load) the backend for one configured text model. */
export async function createBackend(model: WorkerModelOptions, logger: Logger): Promise<InferenceBackend> {
  if (model.backend === 'diffusion' || model.backend === 'comfyui' || model.backend === 'a1111')
    throw new TypeError(`${model.name}: the ${model.backend} backend makes images`);
  const { createBackend: create } = await modules[model.backend]();
  return create(model, { logger: logger.child({ backend: model.backend, model: model.name }) });
}

/** Creates (does not load) the backend of one configured model, text or image, with its concurrency. */
export async function createProvidedBackend(
  model: WorkerModelOptions,
  logger: Logger,
): Promise<
  { backend: InferenceBackend; maxConcurrency: number } | { image: ImageBackend; maxConcurrency: number }
> {
  const log = logger.child({ backend: model.backend, model: model.name });
  if (model.backend === 'diffusion') {
    const { createDiffusionBackend } = await import('./backends/diffusion/index.ts');
    return {
      image: createDiffusionBackend({ modelDir: model.modelDir!, threads: model.threads }),
      maxConcurrency: model.maxConcurrency,
    };
  }
  // ComfyUI / Automatic1111: the checkpoint is `backendModel` (default: the registry name).
  const server = {
    name: model.name,
    weightsHash: model.weightsHash!,
    checkpoint: model.backendModel ?? model.name,
    url: model.url,
    logger: log,
  };
  if (model.backend === 'comfyui') {
    const { createComfyUiBackend } = await import('./backends/comfyui/index.ts');
    return { image: createComfyUiBackend(server), maxConcurrency: model.maxConcurrency };
  }
  if (model.backend === 'a1111') {
    const { createA1111Backend } = await import('./backends/a1111/index.ts');
    return { image: createA1111Backend(server), maxConcurrency: model.maxConcurrency };
  }
  return { backend: await createBackend(model, logger), maxConcurrency: model.maxConcurrency };
}
