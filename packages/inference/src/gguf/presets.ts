import type { Hex } from 'viem';
import type { GgufConfig } from './make-gguf.ts';

export type ModelPreset = {
  config: GgufConfig;
  parameterCount: number;
  /**
   * sha256 of the generated file, pinned: the devnet registers `computeModelId(name, weightsHash)`
   * on chain, so a generator change that alters the bytes must be a visible diff here.
   */
  weightsHash: Hex;
  /** sha256 of its tokenizer file (`extractTokenizerFile`), pinned too: the registry's tokenizer hash. */
  tokenizerHash: Hex;
};

/**
 * `tiny`: 92k parameters, F32, 0.38 MB: for tests.
 * `small`: 3.2M parameters, Q8_0, 3.4 MB: for the devnet.
 * `context`: 0.5M parameters, Q8_0, 0.55 MB: its outputs depend on the prompt (topic and
 * system-message channels, `GgufContextConfig`: dropping the system message moves a token's
 * log-probability by ~0.9 nats on average where `small` moves by ~0.03), so prompt tampering can
 * be measured.
 * All share the vocabulary (520 tokens) and the chat template; tokens/s in the package README.
 */
export const MODEL_PRESETS = {
  tiny: {
    config: {
      name: 'aipg-tiny-llama',
      embeddingLength: 48,
      blockCount: 2,
      headCount: 4,
      headCountKv: 2,
      feedForwardLength: 96,
      contextLength: 2048,
      fileType: 'f32',
      seed: 0xc0ffee,
      blockStd: 0.06,
    },
    parameterCount: 91_632,
    weightsHash: '0x20061f4494384e7cf93e10fa80638a634fbac0e425b44886adddb2a1a0b3428e',
    tokenizerHash: '0x9eb1acc799252942a435aed24b2d4bff6bb65acbad2e5833ac60a3706a588365',
  },
  small: {
    config: {
      name: 'aipg-small-llama',
      embeddingLength: 256,
      blockCount: 4,
      headCount: 8,
      headCountKv: 4,
      feedForwardLength: 704,
      contextLength: 4096,
      fileType: 'q8_0',
      seed: 0x5eed,
      blockStd: 0.01,
    },
    parameterCount: 3_217_664,
    weightsHash: '0x25b606cca2430b8c7aecba7a8061ec5f6114139ae676b01700fa1d8d7cdfcd73',
    tokenizerHash: '0x13c0279754d842ac7063ef1efe2acf0358cc9914521e3e7b797658fbe363bc42',
  },
  context: {
    config: {
      name: 'aipg-context-llama',
      embeddingLength: 128,
      blockCount: 2,
      headCount: 4,
      headCountKv: 2,
      feedForwardLength: 352,
      contextLength: 4096,
      fileType: 'q8_0',
      seed: 0xc0de,
      blockStd: 0.01,
      context: { topics: 8, gain: 10, systemGain: 2 },
    },
    parameterCount: 502_400,
    weightsHash: '0x7b8aebf4db7a52b14282f14e0bcaf19e4aa364b8effc99ba495589ca517b0dca',
    tokenizerHash: '0xca8227e8b2bf3238392b0d77134954e62f25c392135116b3b5afd94c5fc75326',
  },
} as const satisfies Record<string, ModelPreset>;

export type ModelPresetName = keyof typeof MODEL_PRESETS;
