import { expect, test } from 'vitest';
import * as diffusion from '../src/index.ts';

test('public exports (an API change is a visible diff)', () => {
  expect(Object.keys(diffusion).sort()).toMatchInlineSnapshot(`
    [
      "BOS_ID",
      "DIFFUSION_CAPABILITIES",
      "DIFFUSION_PIPELINE",
      "DiffusionAbortedError",
      "EOS_ID",
      "IMAGE_MODEL_FILES",
      "IMAGE_MODEL_PRESETS",
      "ImageModelFileError",
      "LATENT_CHANNELS",
      "MANIFEST_FILE",
      "MANIFEST_FORMAT",
      "MAX_PARTIAL_IMAGES",
      "PAD_ID",
      "PipelineClosedError",
      "SCHEDULERS",
      "TEXT_CONTEXT_LENGTH",
      "VAE_SCALE",
      "createDiffusionPipeline",
      "defaultImageModelsDir",
      "ensureImageModel",
      "imageModelManifest",
      "loadImageModel",
      "makeImageModel",
      "relativeL2",
    ]
  `);
});
