/**
 * An in-process llama.cpp engine (node-llama-cpp low-level API) for one model: one context with
 * `maxConcurrency` sequences, jobs queue for a free sequence. Generation reads the model's raw
 * next-token distribution and picks tokens with the canonical sampler (sampler.ts), so greedy and
 * seeded jobs are reproducible and re-checkable by `score` (one teacher-forced pass).
 *
 * Conventions the receipts and the validator rely on:
 * - prompt tokens: `[BOS, ...tokenize(text, special tokens parsed)]`; for chat,
 *   text = `applyChatTemplate(messages)`.
 * - `outputTokenIds`: every generated token, in order, including the end token `</s>` of a `stop`
 *   finish and the tokens that spell a stop string. `text` is `detokenize(outputTokenIds)` cut
 *   before the first stop string (the end token decodes to nothing). So a `stop` finish always
 *   ends with evidence: the end token, or a stop string ending in the last token.
 * - `length`: exactly `maxTokens` tokens and no end token or stop string among them.
 */
import type { FinishReason, SamplingParams } from '@aipg/core';
import type { LlamaContext, LlamaContextSequence, LlamaModel } from 'node-llama-cpp';
import {
  createDistributionReader,
  greedyView,
  probabilityOf,
  type RawDistribution,
  rankOf,
  toDistribution,
  topTokens,
} from './distribution.ts';
import { ContextOverflowError, EngineClosedError, InferenceAbortedError, ModelFileError } from './errors.ts';
import { addLlamaLogSink, type LlamaLogSink, sharedLlama } from './llama.ts';
import { type ReplayCheck, replayCheck, type SamplerParams, samplerUniform, sampleToken } from './sampler.ts';
import { OutputText, type TokenDelta } from './text-stream.ts';
import { modelTokenizer, type Tokenizer } from './tokenizer.ts';

export type LlamaEngineOptions = {
  modelPath: string;
  /** CPU threads for evaluation. Required: node-llama-cpp's default oversubscribes small machines. */
  threads: number;
  /** Tokens per sequence (prompt + output). Default 2048. */
  contextSize?: number | undefined;
  /** Jobs evaluated at once (context sequences); more jobs wait for a free sequence. Default 1. */
  maxConcurrency?: number | undefined;
  /** Layers offloaded to a GPU: 'auto' or a count; default 0 (CPU only, no GPU backend loaded). */
  gpuLayers?: 'auto' | number | undefined;
  /** llama.cpp's own log lines (warnings and errors); dropped by default. */
  onLog?: LlamaLogSink | undefined;
  /**
   * Internal, for tests: false reads distributions through node-llama-cpp's public API only (the
   * results are the same; see distribution.ts). Default: the direct path when available.
   */
  directDistributions?: boolean | undefined;
};

export type GenerateOptions = {
  promptTokenIds: readonly number[];
  params: SamplingParams;
  signal?: AbortSignal | undefined;
  /** Text deltas (UTF-8 complete, stop strings held back) and the ids they came from, in order. */
  onToken?: ((delta: TokenDelta) => void) | undefined;
};

export type Generation = {
  outputTokenIds: number[];
  /** Probability of each output token under the model's raw (temperature 1) distribution. */
  outputProbabilities: number[];
  text: string;
  finishReason: FinishReason;
  /** The sampler seed used: `params.seed`, or a fresh random one for unseeded sampling; null when greedy. */
  seed: number | null;
  ttftMs: number;
  totalMs: number;
};

export type TopToken = { tokenId: number; probability: number };

export type PositionScore = {
  tokenId: number;
  probability: number;
  /** 0 = the most probable token (ties ordered by id, as the greedy sampler orders them). */
  rank: number;
  top: TopToken[];
  /** The canonical sampler replayed at this position (greedy, or seeded with a known seed). */
  replay?: ReplayCheck;
};

export type ScoreOptions = {
  promptTokenIds: readonly number[];
  outputTokenIds: readonly number[];
  /** How many of the most probable tokens to report per position. Default 5. */
  topK?: number | undefined;
  /** The job's sampling params: adds `replay` per position (needs `seed` unless temperature is 0). */
  params?: Pick<SamplingParams, 'temperature' | 'topP' | 'seed'> | undefined;
  signal?: AbortSignal | undefined;
};

export type ScoreResult = {
  /** One entry per output token: the distribution that predicted it. */
  positions: PositionScore[];
  /** The distribution after the last output token (is the end token likely? was the output cut?). */
  next: TopToken[];
};

/** A model loaded for inference: its tokenizer (chat template included) plus generation and scoring. */
export type LlamaEngine = Tokenizer & {
  readonly modelPath: string;
  readonly contextSize: number;
  readonly maxConcurrency: number;
  generate(options: GenerateOptions): Promise<Generation>;
  score(options: ScoreOptions): Promise<ScoreResult>;
  close(): Promise<void>;
  /** Internal: whether distributions are read straight from the native sampler (distribution.ts). */
  readonly directDistributions: boolean;
};

export async function createLlamaEngine(options: LlamaEngineOptions): Promise<LlamaEngine> {
  const { modelPath, threads } = options;
  const contextSize = options.contextSize ?? 2048;
  const maxConcurrency = options.maxConcurrency ?? 1;
  const gpuLayers = options.gpuLayers ?? 0;
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError('threads must be a positive integer');
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1)
    throw new RangeError('maxConcurrency must be a positive integer');
  const removeSink = options.onLog ? addLlamaLogSink(options.onLog) : () => {};

  let model: LlamaModel | undefined;
  let context: LlamaContext | undefined;
  let tokenizer: Tokenizer;
  try {
    const llama = await sharedLlama(gpuLayers === 0 ? false : 'auto');
    model = await llama.loadModel({ modelPath, gpuLayers }).catch((cause: unknown) => {
      throw new ModelFileError('Could not load the model', modelPath, cause);
    });
    tokenizer = modelTokenizer(model);
    // Flash attention off: on CPU it accumulates in F16 and makes a batched (validator) pass
    // differ from token-by-token generation by ~2e-3 in probability; without it they agree to
    // ~1e-7 (measured on both presets).
    context = await model.createContext({
      contextSize,
      sequences: maxConcurrency,
      threads,
      flashAttention: false,
    });
  } catch (error) {
    await context?.dispose();
    await model?.dispose();
    removeSink();
    throw error;
  }
  const sequences = Array.from({ length: maxConcurrency }, () => context.getSequence());
  const pool = new SequencePool(sequences);
  const reader = createDistributionReader(model, sequences, {
    vocabSize: tokenizer.vocabSize,
    direct: options.directDistributions,
  });
  const { detokenize, isEndToken, checkIds } = tokenizer;
  let closed = false;
  const running = new Set<Promise<unknown>>();
  const track = <T>(job: Promise<T>): Promise<T> => {
    running.add(job);
    job.then(
      () => running.delete(job),
      () => running.delete(job),
    );
    return job;
  };
  const throwIfAborted = (signal: AbortSignal | undefined) => {
    if (closed) throw new EngineClosedError();
    if (signal?.aborted) throw new InferenceAbortedError(signal.reason);
  };

  async function generate({
    promptTokenIds: prompt,
    params,
    signal,
    onToken,
  }: GenerateOptions): Promise<Generation> {
    const started = performance.now();
    if (prompt.length === 0) throw new RangeError('empty prompt');
    checkIds(prompt);
    if (prompt.length + params.maxTokens > contextSize)
      throw new ContextOverflowError(prompt.length, params.maxTokens, contextSize);
    const greedy = params.temperature === 0;
    const seed = greedy ? null : (params.seed ?? randomSeed());
    const sampler = { temperature: params.temperature, topP: params.topP };
    const out = new OutputText(detokenize, params.stop, onToken !== undefined || params.stop.length > 0);
    const probabilities: number[] = [];
    let finishReason: FinishReason = 'length';
    let ttftMs = 0;

    const seq = await pool.acquire(signal);
    try {
      throwIfAborted(signal);
      await seq.clearHistory();
      let input: number[] = [...prompt];
      while (out.ids.length < params.maxTokens) {
        let dist: RawDistribution = [];
        await reader.read(seq, input, input.length - 1, (_, d) => {
          dist = d;
        });
        throwIfAborted(signal);
        const position = out.ids.length;
        const token = pick(dist, sampler, seed === null ? 0 : samplerUniform(seed, position));
        const probability = probabilityOf(dist, token);
        probabilities.push(probability);
        if (position === 0) ttftMs = performance.now() - started;
        const end = isEndToken(token);
        const stopped = out.push(token, end, probability);
        if (end || stopped) {
          finishReason = 'stop';
          break;
        }
        const delta = onToken ? out.delta() : undefined;
        if (delta) onToken?.(delta);
        input = [token];
      }
    } finally {
      pool.release(seq);
    }
    const last = out.finalDelta();
    if (last && onToken) onToken(last);
    return {
      outputTokenIds: [...out.ids],
      outputProbabilities: probabilities,
      text: out.text(),
      finishReason,
      seed,
      ttftMs,
      totalMs: performance.now() - started,
    };
  }

  async function score({
    promptTokenIds: prompt,
    outputTokenIds: output,
    topK = 5,
    params,
    signal,
  }: ScoreOptions) {
    if (prompt.length === 0) throw new RangeError('empty prompt');
    checkIds(prompt);
    checkIds(output);
    if (prompt.length + output.length > contextSize)
      throw new ContextOverflowError(prompt.length, output.length, contextSize);
    const replaySeed = params && params.temperature > 0 ? params.seed : 0;
    const sampler = params ? { temperature: params.temperature, topP: params.topP } : undefined;
    const all = [...prompt, ...output];
    const positions: PositionScore[] = [];
    let next: TopToken[] = [];
    const seq = await pool.acquire(signal);
    try {
      throwIfAborted(signal);
      await seq.clearHistory();
      // all[i] predicts output[i - prompt.length + 1]: read the distributions from the last prompt
      // token on, each as it comes (one forward pass; distribution.ts).
      await reader.read(seq, all, prompt.length - 1, (i, dist) => {
        const predicts = i - prompt.length + 1;
        const top = topTokens(dist, topK);
        if (predicts === output.length) {
          next = top;
          return;
        }
        const tokenId = output[predicts]!;
        const probability = probabilityOf(dist, tokenId);
        const position: PositionScore = {
          tokenId,
          probability,
          rank: rankOf(dist, tokenId, probability),
          top,
        };
        if (sampler && replaySeed != null)
          position.replay = replay(
            dist,
            sampler,
            sampler.temperature === 0 ? 0 : samplerUniform(replaySeed, predicts),
            tokenId,
          );
        positions.push(position);
      });
      throwIfAborted(signal);
    } finally {
      pool.release(seq);
    }
    return { positions, next };
  }

  return {
    ...tokenizer,
    modelPath,
    contextSize,
    maxConcurrency,
    directDistributions: reader.direct,
    generate: (o) => (closed ? Promise.reject(new EngineClosedError()) : track(generate(o))),
    score: (o) => (closed ? Promise.reject(new EngineClosedError()) : track(score(o))),
    async close() {
      if (closed) return;
      closed = true;
      // Queued jobs are rejected; running ones stop at their next token.
      const stopping = pool.close(new EngineClosedError());
      await Promise.allSettled([...running]);
      await stopping;
      await pool.dispose();
      reader.dispose();
      await context.dispose();
      await model.dispose();
      removeSink();
    },
  };
}

/**
 * The canonical sampler's pick from a native distribution. Greedy reads only the leading run of
 * equal probabilities (`greedyView`: same pick, without copying the vocabulary); sampling reads it all.
 */
function pick(d: RawDistribution, params: SamplerParams, u: number): number {
  return sampleToken(params.temperature === 0 ? greedyView(d)! : toDistribution(d), params, u);
}

/** `replayCheck` on a native distribution (greedy: on the part of it the check reads, `greedyView`). */
function replay(d: RawDistribution, params: SamplerParams, u: number, claimed: number): ReplayCheck {
  const view = params.temperature === 0 ? greedyView(d, claimed) : undefined;
  return replayCheck(view ?? toDistribution(d), params, u, claimed);
}

function randomSeed(): number {
  const b = new Uint32Array(2);
  crypto.getRandomValues(b);
  return (b[0]! & 0x1fffff) * 2 ** 32 + b[1]!;
}

type Waiter = { resolve: (s: LlamaContextSequence) => void; reject: (e: unknown) => void };

/** Free sequences and the FIFO of jobs waiting for one; an aborted waiter leaves the queue. */
class SequencePool {
  private readonly free: LlamaContextSequence[];
  private readonly waiters: Waiter[] = [];
  private closedWith: Error | undefined;

  constructor(private readonly all: LlamaContextSequence[]) {
    this.free = [...all];
  }

  acquire(signal: AbortSignal | undefined): Promise<LlamaContextSequence> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (signal?.aborted) return Promise.reject(new InferenceAbortedError(signal.reason));
    const seq = this.free.pop();
    if (seq) return Promise.resolve(seq);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new InferenceAbortedError(signal?.reason));
      };
      const waiter: Waiter = {
        resolve: (s) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(seq: LlamaContextSequence): void {
    const next = this.waiters.shift();
    if (next) next.resolve(seq);
    else this.free.push(seq);
  }

  /** Rejects waiting jobs, then disposes the sequences (call once running jobs have ended). */
  async close(reason: Error): Promise<void> {
    this.closedWith = reason;
    for (const w of this.waiters.splice(0)) w.reject(reason);
  }

  async dispose(): Promise<void> {
    await Promise.all(this.all.map((s) => s.dispose()));
  }
}
