import { CANONICAL_SAMPLER, computeModelId } from '@aipg/core';
import type { GenerateRequest, GenerateResult, InferenceBackend } from '@aipg/worker';
import { type Hex, keccak256, toBytes } from 'viem';

/** `▁grid` and `</s>` in the generated models' vocabulary (the tiny preset's tokenizer renders them). */
const GRID = 413;
const EOS = 2;

/**
 * An instant backend for throughput figures: it answers every job at once with `outputTokens`
 * tokens, so the numbers measure the gateway, the hub and the worker runtime, not an engine. It runs
 * the prompt ids the gateway sent, as every backend does, and answers " grid" repeated, ending with
 * the end token when it stops before `maxTokens`.
 */
export function createEchoBackend(name = 'bench-echo', outputTokens = 8): InferenceBackend {
  const weightsHash = keccak256(toBytes(name)) as Hex;
  return {
    kind: 'llama-cpp',
    sampler: CANONICAL_SAMPLER,
    model: { name, weightsHash, modelId: computeModelId(name, weightsHash) },
    async load() {},
    async close() {},
    async generate(req: GenerateRequest): Promise<GenerateResult> {
      const n = Math.min(outputTokens, req.params.maxTokens);
      const stops = n < req.params.maxTokens;
      const outputTokenIds = Array.from({ length: n }, (_, i) => (stops && i === n - 1 ? EOS : GRID));
      if (req.onToken) for (const id of outputTokenIds) req.onToken({ tokenIds: [id] });
      return {
        promptTokenIds: [...req.promptTokenIds],
        outputTokenIds,
        finishReason: stops ? 'stop' : 'length',
        timings: { ttftMs: 0, totalMs: 0 },
      };
    },
  };
}
