import { computeModelId } from '@aipg/core';
import type { GenerateRequest, GenerateResult, InferenceBackend } from '@aipg/worker';
import { type Hex, keccak256, toBytes } from 'viem';

/**
 * An instant backend for throughput figures: it answers every job at once with `outputTokens`
 * tokens, so the numbers measure the gateway, the hub and the worker runtime, not an engine.
 * Token ids are the prompt's UTF-8 bytes (+3, BOS 1), as a real tokenizer would give ids.
 */
export function createEchoBackend(name = 'bench-echo', outputTokens = 8): InferenceBackend {
  const weightsHash = keccak256(toBytes(name)) as Hex;
  return {
    kind: 'llama-cpp',
    model: { name, weightsHash, modelId: computeModelId(name, weightsHash) },
    async load() {},
    async close() {},
    async generate(req: GenerateRequest): Promise<GenerateResult> {
      const text =
        'prompt' in req.input ? req.input.prompt : req.input.messages.map((m) => m.content).join('\n');
      const promptTokenIds = [1, ...Array.from(new TextEncoder().encode(text), (b) => b + 3)];
      const n = Math.min(outputTokens, req.params.maxTokens);
      const outputTokenIds = Array.from({ length: n }, (_, i) => 100 + i);
      const out = 'x'.repeat(n);
      if (req.onToken) for (let i = 0; i < n; i++) req.onToken({ text: 'x', tokenIds: [100 + i] });
      return {
        text: out,
        promptTokenIds,
        outputTokenIds,
        finishReason: n < req.params.maxTokens ? 'stop' : 'length',
        timings: { ttftMs: 0, totalMs: 0 },
      };
    },
  };
}
