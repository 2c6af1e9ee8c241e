import type { Hex } from 'viem';
import type { ImageModelConfig, ImageModelPart } from './make-image-model.ts';

export type ImageModelPreset = {
  config: ImageModelConfig;
  parameterCount: number;
  /**
   * sha256 of each generated file, pinned: a generator change that alters a byte must be a visible
   * diff here (the devnet registers `computeModelId(name, weightsHash)` on chain).
   */
  files: Record<ImageModelPart, Hex>;
  /** sha256 of the canonical manifest binding the three files (`imageModelManifest`): the weights hash. */
  weightsHash: Hex;
};

/**
 * `tiny` (`aipg-tiny-ldm`): 206k parameters, 0.83 MB of ONNX: a 256² image in ~35 ms at 8 steps on
 * one thread, a 512² one in ~120 ms (figures in the package README).
 */
export const IMAGE_MODEL_PRESETS = {
  tiny: {
    config: {
      name: 'aipg-tiny-ldm',
      seed: 0x1d1f,
      textWidth: 64,
      textHidden: 128,
      condWidth: 64,
      unetChannels: 32,
      decoderChannels: [32, 16, 8],
    },
    parameterCount: 205_815,
    files: {
      textEncoder: '0x3c316b96db190073ac40ed0b73f4f0c26ba0f0974cc06f070b099aa9c0345c5a',
      unet: '0xbae0d2ff229a2dd86ca6717ea2af7a7bc8f121800a14310d23a697bda4bba503',
      vaeDecoder: '0xde1d7012ef07611a160ab0974d35c528586cdf2d52d1a832103a0d057fda6a9b',
    },
    weightsHash: '0x3681ad1c880771b88f3e1e670843436496a2941cc23f349fd8acd9cbeb0749f8',
  },
} as const satisfies Record<string, ImageModelPreset>;

export type ImageModelPresetName = keyof typeof IMAGE_MODEL_PRESETS;
