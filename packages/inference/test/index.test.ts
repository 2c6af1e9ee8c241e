import { expect, test } from 'vitest';
import * as inference from '../src/index.ts';

test('public exports (an API change is a visible diff)', () => {
  expect(Object.keys(inference).sort()).toMatchInlineSnapshot(`
    [
      "CHAT_TEMPLATE",
      "ContextOverflowError",
      "EngineClosedError",
      "InferenceAbortedError",
      "InvalidTokenError",
      "MODEL_PRESETS",
      "ModelFileError",
      "OutputText",
      "SAMPLER_VERSION",
      "TerminationFault",
      "applyChatTemplate",
      "createLlamaEngine",
      "createTokenizer",
      "ensureModel",
      "extractTokenizerFile",
      "makeGguf",
      "replayCheck",
      "requantizeBlocks",
      "sampleToken",
      "samplerUniform",
      "samplingSupport",
      "sha256File",
      "sha256Hex",
      "terminationFaults",
    ]
  `);
});
