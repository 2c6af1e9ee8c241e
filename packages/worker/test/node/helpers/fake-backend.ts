import { CANONICAL_SAMPLER, computeModelId, type SamplingParams } from '@aipg/core';
import type { Tokenizer } from '@aipg/inference';
import { type Hex, keccak256, toBytes } from 'viem';
import { BackendError, BackendErrorCode } from '../../../src/backends/errors.ts';
import type {
  BackendModel,
  GenerateInput,
  GenerateRequest,
  GenerateResult,
  InferenceBackend,
} from '../../../src/backends/types.ts';

/**
 * A small deterministic backend for the worker's tests. It follows the `InferenceBackend` contract
 * the way a real engine does: it runs the gateway's prompt ids (the test gateway tokenizes with the
 * chat template and ids below: UTF-8 bytes + 3, BOS = 1; ids ≥ `VOCAB_SIZE` are refused with
 * `INVALID_TOKEN` as the engine does), generates tokens one at a time with a delay, streams them
 * through `onToken` and honours abort between tokens.
 *
 * Directives in the last message steer a test: `[fail-before]` throws before any token,
 * `[fail-after:N]` throws after N tokens, `[hang]` generates nothing until aborted,
 * `[delay:MS]` overrides the per-token delay, `[len:N]` the natural output length, `[burst]` yields
 * every token and the end in one turn after the first delay,
 * `[prompt-mismatch]` refuses the prompt ids as an Ollama backend whose tokenization differs does.
 */
export type FakeBackendOptions = {
  name?: string;
  /** Default: keccak256 of the name (any 32 bytes do: the test registers it on chain). */
  weightsHash?: Hex;
  tokenDelayMs?: number;
  /** Tokens generated before the model "emits EOS" (finishReason `stop`) unless maxTokens cuts it. */
  naturalLength?: number;
  /** Ignore the abort signal (a misbehaving engine): the runner must still not deliver a result. */
  ignoreAbort?: boolean;
  /** The sampler advertised; default `CANONICAL_SAMPLER`. */
  sampler?: string;
};

export const BOS = 1;
export const VOCAB_SIZE = 512;
const WORDS = ['the', 'grid', 'node', 'token', 'proof', 'work', 'chain', 'model', 'hello', 'world'];

export type FakeBackend = InferenceBackend & {
  readonly loads: number;
  readonly closed: boolean;
  /** Generations in progress now / at most at once. */
  readonly running: number;
  readonly peakRunning: number;
  readonly started: number;
};

export function applyTemplate(input: GenerateInput): string {
  if ('prompt' in input) return input.prompt;
  return `${input.messages.map((m) => `<|${m.role}|>${m.content}\n`).join('')}<|assistant|>`;
}

export function tokenize(text: string): number[] {
  return [BOS, ...Array.from(new TextEncoder().encode(text), (b) => b + 3)];
}

/** The output ids a prompt produces (the same every run): the oracle for receipt checks. */
export function expectedOutput(
  promptIds: readonly number[],
  params: SamplingParams,
  naturalLength: number,
): { ids: number[]; text: string; finishReason: 'stop' | 'length' } {
  const seed = Number.parseInt(keccak256(toBytes(JSON.stringify([promptIds, params.seed]))).slice(2, 10), 16);
  const n = Math.min(params.maxTokens, naturalLength);
  const ids = Array.from({ length: n }, (_, i) => 300 + ((seed + i * 7) % WORDS.length));
  return {
    ids,
    text: detokenize(ids),
    finishReason: params.maxTokens < naturalLength ? 'length' : 'stop',
  };
}

/** The text of output ids (what a gateway renders for the user). */
export const detokenize = (ids: readonly number[]) => ids.map((id) => ` ${WORDS[id - 300]}`).join('');

const sleep = (ms: number, signal: AbortSignal, ignoreAbort: boolean) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }
    function onAbort() {
      if (ignoreAbort) return;
      clearTimeout(timer);
      reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });

export function createFakeBackend(options: FakeBackendOptions = {}): FakeBackend {
  const name = options.name ?? 'fake-model';
  const weightsHash = options.weightsHash ?? keccak256(toBytes(`weights of ${name}`));
  const model: BackendModel = { name, weightsHash, modelId: computeModelId(name, weightsHash) };
  const ignoreAbort = options.ignoreAbort ?? false;
  let loads = 0;
  let closed = false;
  let running = 0;
  let peakRunning = 0;
  let started = 0;

  async function generate({
    input,
    promptTokenIds: prompt,
    params,
    signal,
    onToken,
  }: GenerateRequest): Promise<GenerateResult> {
    if (closed) throw new Error('backend closed');
    if (loads === 0) throw new Error('backend not loaded');
    running += 1;
    started += 1;
    peakRunning = Math.max(peakRunning, running);
    const t0 = performance.now();
    try {
      const last = 'prompt' in input ? input.prompt : (input.messages.at(-1)?.content ?? '');
      const directive = (re: RegExp) => re.exec(last)?.[1];
      const delay = Number(directive(/\[delay:(\d+)\]/) ?? options.tokenDelayMs ?? 5);
      const natural = Number(directive(/\[len:(\d+)\]/) ?? options.naturalLength ?? 8);
      const failAfter = directive(/\[fail-after:(\d+)\]/);
      const promptTokenIds = [...prompt];
      const outside = promptTokenIds.find((id) => id >= VOCAB_SIZE);
      if (outside !== undefined)
        throw Object.assign(new Error('Token id outside the vocabulary'), {
          code: 'INVALID_TOKEN',
          details: `token ${outside}, vocabulary size ${VOCAB_SIZE}`,
        });
      if (last.includes('[prompt-mismatch]'))
        throw new BackendError("Ollama would not run the gateway's prompt ids", {
          code: BackendErrorCode.promptMismatch,
          details: 'first difference at position 3',
          retryable: true,
        });
      if (last.includes('[fail-before]')) {
        await sleep(delay, signal, ignoreAbort);
        throw new Error('CUDA error: out of memory');
      }
      if (last.includes('[hang]')) {
        await sleep(3_600_000, signal, ignoreAbort);
      }
      const out = expectedOutput(promptTokenIds, params, natural);
      let ttftMs = 0;
      // `[burst]`: the whole answer at once, every token and the end in one turn (a server's single read).
      const burst = last.includes('[burst]');
      for (let i = 0; i < out.ids.length; i++) {
        if (!burst || i === 0) await sleep(delay, signal, ignoreAbort);
        if (failAfter !== undefined && i === Number(failAfter)) throw new Error('llama_decode failed');
        if (i === 0) ttftMs = performance.now() - t0;
        onToken?.({ tokenIds: [out.ids[i] as number] });
      }
      return {
        promptTokenIds,
        outputTokenIds: out.ids,
        finishReason: out.finishReason,
        timings: { ttftMs, totalMs: performance.now() - t0 },
      };
    } finally {
      running -= 1;
    }
  }

  return {
    kind: 'llama-cpp',
    sampler: options.sampler ?? CANONICAL_SAMPLER,
    model,
    async load() {
      loads += 1;
    },
    generate,
    // What a confidential job is tokenized and rendered with inside the worker (its template and ids).
    tokenizer: () =>
      ({
        chatPromptTokenIds: (messages: { role: string; content: string }[]) =>
          tokenize(applyTemplate({ messages } as GenerateInput)),
        detokenize: (ids: readonly number[]) => detokenize(ids.filter((id) => id >= 300)),
        isEndToken: () => false,
      }) as unknown as Tokenizer,
    async close() {
      closed = true;
    },
    get loads() {
      return loads;
    },
    get closed() {
      return closed;
    },
    get running() {
      return running;
    },
    get peakRunning() {
      return peakRunning;
    },
    get started() {
      return started;
    },
  };
}
