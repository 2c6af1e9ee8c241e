import type { Logger } from 'pino';
import type { InferenceBackend } from './backends/types.ts';
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
const modules: Record<BackendKind, () => Promise<{ createBackend: CreateBackend }>> = {
  'llama-cpp': () => import('./backends/llama-cpp/index.ts'),
  ollama: () => import('./backends/ollama/index.ts'),
  openai: () => import('./backends/openai/index.ts'),
};

/** Creates (does not load) the backend for one configured model. */
export async function createBackend(model: WorkerModelOptions, logger: Logger): Promise<InferenceBackend> {
  const { createBackend: create } = await modules[model.backend]();
  return create(model, { logger: logger.child({ backend: model.backend, model: model.name }) });
}
