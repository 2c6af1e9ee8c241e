import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SamplingParams } from '@aipg/core';
import { createLlamaEngine, ensureModel, type LlamaEngine, type Tokenizer } from '@aipg/inference';
import { expect } from 'vitest';
import type { GenerateInput, GenerateRequest, GenerateResult, TokenDelta } from '../../src/backends/types.ts';

/** The tiny generated model (written once per machine to the OS temp dir, hash-checked). */
export const tinyModel = () => ensureModel({ dir: join(tmpdir(), 'aipg-test-models'), preset: 'tiny' });

/** The real engine the fake servers run on: one thread, two sequences. */
export async function tinyEngine(): Promise<LlamaEngine> {
  const { path } = await tinyModel();
  return createLlamaEngine({ modelPath: path, threads: 1, contextSize: 512, maxConcurrency: 2 });
}

export const greedy = (maxTokens = 40, stop: string[] = []): SamplingParams => ({
  maxTokens,
  temperature: 0,
  topP: 1,
  seed: null,
  stop,
});

export const seeded = (seed: number, maxTokens = 60): SamplingParams => ({
  maxTokens,
  temperature: 1,
  topP: 1,
  seed,
  stop: [],
});

export const user = (content: string) => ({ messages: [{ role: 'user' as const, content }] });

/** Deltas must rebuild the output ids exactly, none of them empty. */
export function expectDeltasMatch(result: GenerateResult, deltas: TokenDelta[]) {
  expect(deltas.length).toBeGreaterThan(0);
  expect(deltas.every((d) => d.tokenIds.length > 0)).toBe(true);
  expect(deltas.flatMap((d) => d.tokenIds)).toEqual(result.outputTokenIds);
}

export const never = () => new AbortController().signal;

/** The gateway's tokenization of a job's input (BOS, the chat template, the model's tokenizer). */
export const gatewayIds = (
  t: Pick<Tokenizer, 'chatPromptTokenIds' | 'promptTokenIds'>,
  input: GenerateInput,
) => ('messages' in input ? t.chatPromptTokenIds(input.messages) : t.promptTokenIds(input.prompt));

/** A request as the job runner builds it: the input and the gateway's prompt ids for it. */
export function job(
  t: Pick<Tokenizer, 'chatPromptTokenIds' | 'promptTokenIds'>,
  input: GenerateInput,
  params: SamplingParams,
  rest: Partial<Pick<GenerateRequest, 'signal' | 'onToken' | 'promptTokenIds'>> = {},
): GenerateRequest {
  return { input, promptTokenIds: gatewayIds(t, input), params, signal: never(), ...rest };
}

/** The text a gateway renders from output ids: end tokens decode to nothing. */
export const render = (t: Pick<Tokenizer, 'detokenize' | 'isEndToken'>, ids: readonly number[]) =>
  t.detokenize(ids.filter((id) => !t.isEndToken(id)));
