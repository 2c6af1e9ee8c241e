import { computeModelId, type ImageCapabilities } from '@aipg/core';
import {
  createDiffusionPipeline,
  DIFFUSION_CAPABILITIES,
  DIFFUSION_PIPELINE,
  type DiffusionPipeline,
} from '@aipg/diffusion';
import type { Hex } from 'viem';
import { BackendError, BackendErrorCode } from '../errors.ts';
import type { BackendModel, ImageBackend } from '../types.ts';

export type DiffusionBackendOptions = {
  /** A directory `ensureImageModel` wrote (its manifest binds the files; the weights hash is the manifest's). */
  modelDir: string;
  /** onnxruntime intra-op threads (outputs are bitwise the same for any count). */
  threads?: number | undefined;
};

/**
 * The embedded image flavour: `@aipg/diffusion`'s pipeline in this process, on a model directory the
 * project generated (or an operator's export in the same layout). Its receipts commit to per-step
 * latents (`capabilities.trajectory`), so a validator can re-run any one step.
 */
export function createDiffusionBackend(options: DiffusionBackendOptions): ImageBackend {
  let pipeline: DiffusionPipeline | undefined;
  let model: BackendModel | undefined;
  const loaded = () => {
    if (!pipeline)
      throw new BackendError('the diffusion backend is not loaded', { code: BackendErrorCode.notLoaded });
    return pipeline;
  };
  return {
    kind: 'diffusion',
    pipeline: DIFFUSION_PIPELINE,
    capabilities: DIFFUSION_CAPABILITIES as unknown as ImageCapabilities,
    get model(): BackendModel {
      if (!model)
        throw new BackendError('the diffusion backend is not loaded', { code: BackendErrorCode.notLoaded });
      return model;
    },
    async load() {
      if (pipeline) return;
      pipeline = await createDiffusionPipeline({ modelDir: options.modelDir, threads: options.threads ?? 1 });
      const weightsHash = pipeline.model.weightsHash as Hex;
      model = {
        name: pipeline.model.name,
        weightsHash,
        modelId: computeModelId(pipeline.model.name, weightsHash),
      };
    },
    async generate(request) {
      const result = await loaded().generate({
        promptTokenIds: request.promptTokenIds,
        negativeTokenIds: request.negativeTokenIds,
        params: request.params,
        signal: request.signal,
        partialImages: request.partialImages,
        onProgress: request.onProgress,
      });
      return {
        images: result.images.map((i) => ({
          bytes: i.bytes,
          trajectoryRoot: i.trajectoryRoot,
          latents: i.latents,
        })),
        timings: { totalMs: result.totalMs },
      };
    },
    async check(r) {
      const p = loaded();
      if (r.op === 'noise') return { latent: p.initialLatent(r.params, r.image) };
      if (!r.latent)
        throw new BackendError(`a ${r.op} check needs its latent`, { code: BackendErrorCode.protocol });
      if (r.op === 'step')
        return {
          latent: await p.step({
            promptTokenIds: r.promptTokenIds,
            negativeTokenIds: r.negativeTokenIds,
            params: r.params,
            image: r.image,
            from: r.step,
            latent: r.latent,
          }),
        };
      return {
        bytes: await p.decode(r.latent, r.params.format, { width: r.params.width, height: r.params.height }),
      };
    },
    async close() {
      await pipeline?.close();
      pipeline = undefined;
    },
  };
}
